"""Instructions per event (callgrind; deterministic enough to show added work on a noisy
machine): one `flowd serve --roles api,engine` under `valgrind --tool=callgrind`, every
thread counted (librdkafka's and civetweb's included).

- API path: N sequential POST /api/v1/events on one keep-alive connection (S1's request,
  type bench.sink, which api.event_routes sends to a topic no engine reads), each
  answered 202 after Kafka's delivery report;
- engine path: N bench.one events (tests/bench/workflows/bench1.yaml, one durable
  transition each) produced to Kafka by the driver at once, applied by the engine.

- for scale, the API path's N requests to S1's baseline server (baseline_http.c), also
  under callgrind.

Each is counted between `callgrind_control -z` (zero) and `-d` (dump), and the same
process idling for as long is counted the same way and subtracted (timers, polls,
heartbeats): (instructions under load - instructions idle) / N. A few warm-up events
first, so one-off costs (prepared statements, caches, first metadata) are left out."""

import http.client
import re
import subprocess
import time
import uuid

import httpload as H
from engineload import free_port
from s3_latency import E2E_TYPE, SINK_TYPE, warm_producer

VALGRIND = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--dump-line=no"]
WARM = 20


class Callgrind:
    def __init__(self, stack, setup, n_api, n_engine):
        self.stack, self.setup = stack, setup
        self.n_api, self.n_engine = n_api, n_engine
        self.body = H.body_bytes()
        self.db = self.flowd = self.key = self.producer = None

    def prepare(self):
        self.setup.prepare()
        self.db = self.stack.create_db(self.setup.template)
        routes = f"{SINK_TYPE}={self.setup.topics['business_analytics']}"
        self.flowd = H.flowd_api(self.setup, self.db, "api,engine",
                                 f"cg-{uuid.uuid4().hex[:8]}", {"event_routes": routes})
        self.key = H.api_key(self.setup, self.flowd.config)
        out = self.setup.dir / "callgrind.out.%p"
        self.flowd.wrapper = (*VALGRIND, f"--callgrind-out-file={out}")
        self.flowd.start_ready(timeout=300)
        self.producer = warm_producer(self.stack.kafka_bootstrap,
                                      self.setup.topics["business_analytics"])
        return self

    def close(self):
        if self.flowd is not None:
            self.flowd.stop()
        if self.db is not None:
            self.stack.drop_db(self.db)

    # -- callgrind_control ------------------------------------------------------------
    @staticmethod
    def control(flag, pid):
        r = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind_control {flag} failed: {r.stdout}{r.stderr}")

    def dump(self, pid, stem):
        """Dumps the counters of pid; returns (instructions, the dump file)."""
        before = set(self.setup.dir.glob(f"{stem}.{pid}*"))
        self.control("-d", pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for path in set(self.setup.dir.glob(f"{stem}.{pid}*")) - before:
                m = re.search(r"^(?:summary|totals): (\d+)", path.read_text(), re.M)
                if m:
                    return int(m.group(1)), path
            time.sleep(0.2)
        raise RuntimeError("callgrind wrote no dump")

    def count(self, action, n, pid=None, stem="callgrind.out"):
        """(load - idle) / n instructions, plus where the load's went."""
        pid = pid or self.flowd.proc.pid
        self.control("-z", pid)
        t0 = time.monotonic()
        action(n)
        seconds = time.monotonic() - t0
        load, path = self.dump(pid, stem)
        self.control("-z", pid)
        time.sleep(seconds)
        idle, _ = self.dump(pid, stem)
        return {"events": n, "instructions_per_event": (load - idle) / n,
                "instructions_load": load, "instructions_idle": idle, "seconds": seconds,
                "top_functions": top_functions(path)}

    # -- the paths -----------------------------------------------------------------------
    def post_events(self, n, port=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.flowd.port, timeout=120)
        headers = headers or H.ce_headers(SINK_TYPE, self.key)
        try:
            for i in range(n):
                key = f"cg{uuid.uuid4().hex[:6]}-{i}"
                conn.request("POST", H.PATH, self.body,
                             {**headers, "ce-id": key, "ce-subject": key})
                r = conn.getresponse()
                r.read()
                if r.status != 202:
                    raise RuntimeError(f"POST {H.PATH} under callgrind: {r.status}")
        finally:
            conn.close()

    def baseline(self, build):
        """S1's baseline server under callgrind, the same requests: the scale of the API's
        figure (what civetweb itself costs per request)."""
        port = free_port()
        stem = "callgrind.baseline"
        cmd = [*VALGRIND, f"--callgrind-out-file={self.setup.dir / stem}.%p",
               str(build / "bench" / "baseline_http"), str(port), str(H.WORKERS)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        headers = H.ce_headers(SINK_TYPE, self.key)
        try:
            H.wait_ready_tcp(port, lambda: proc.poll() is None, timeout=120)
            self.post_events(WARM, port, headers)
            return self.count(lambda n: self.post_events(n, port, headers), self.n_api,
                              proc.pid, stem)
        finally:
            proc.terminate()
            proc.wait(timeout=60)

    def apply_events(self, n):
        with self.stack.connect(self.db) as conn:
            want = count_history(conn) + n
            tag = "cg" + uuid.uuid4().hex[:6]
            topic = self.setup.topics["flowd_events"]
            for i in range(n):
                key = f"{tag}-{i}".encode()
                headers = [("ce_specversion", b"1.0"), ("ce_id", key),
                           ("ce_source", b"flowd-bench"), ("ce_type", E2E_TYPE.encode()),
                           ("ce_subject", key), ("ce_tenant", H.BENCH_TENANT.encode()),
                           ("content-type", b"application/json")]
                self.producer.produce(topic, value=self.body, key=key, headers=headers)
            self.producer.flush(60)
            deadline = time.monotonic() + 300
            while count_history(conn) < want:
                if time.monotonic() > deadline or not self.flowd.alive():
                    raise RuntimeError(f"the engine under callgrind did not apply {n} "
                                       f"events\n{self.flowd.tail()}")
                time.sleep(0.1)

    def run(self, build):
        self.post_events(WARM)
        self.apply_events(WARM)
        return {"api": self.count(self.post_events, self.n_api),
                "engine": self.count(self.apply_events, self.n_engine),
                "baseline_http": self.baseline(build)}

    def describe(self):
        return {"tool": "valgrind --tool=callgrind, all threads", "api_events": self.n_api,
                "engine_events": self.n_engine, "warm_up_events": WARM,
                "method": "(instructions under load - instructions idling as long) / events"}


def count_history(conn):
    return int(conn.execute("SELECT count(*) FROM history").fetchone()[0])


def resolve(table, spec):
    """A compressed callgrind name: "(id) name" defines id, "(id)" refers to it."""
    m = re.match(r"\((\d+)\)\s*(.*)", spec)
    if not m:
        return spec
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), spec)


def costs_of(path):
    """Per (object, function): instructions of its own code (`self`) and with its callees
    (`incl`, which counts a recursive call again). A cost line right after `calls=` is
    that call's inclusive cost: it goes to `incl` only."""
    tables = {"ob": {}, "fn": {}}
    own, incl = {}, {}
    ob = fn = None
    after_call = False
    for line in path.read_text().splitlines():
        head, _, rest = line.partition("=")
        if head in ("ob", "cob", "fn", "cfn"):
            name = resolve(tables[head[-2:]], rest)
            ob, fn = (name, fn) if head == "ob" else (ob, name) if head == "fn" else (ob, fn)
        elif head == "calls":
            after_call = True
        elif (line[:1].isdigit() or line[:1] in "+-*") and len(line.split()) > 1:
            cost = int(line.split()[1])
            incl[(ob, fn)] = incl.get((ob, fn), 0) + cost
            if not after_call:
                own[(ob, fn)] = own.get((ob, fn), 0) + cost
            after_call = False
    return own, incl


def short(ob):
    return (ob or "?").rsplit("/", 1)[-1]


def top_functions(path, n=15):
    """Where the instructions went: the n functions with the most of their own, flowd's n
    functions with the most including their callees (these name the work: Debian's
    jansson and librdkafka have no symbols for their internal functions), and each
    shared object's share."""
    own, incl = costs_of(path)
    total = sum(own.values()) or 1
    by_object = {}
    for (ob, _fn), c in own.items():
        by_object[short(ob)] = by_object.get(short(ob), 0) + c
    top = sorted(own.items(), key=lambda kv: -kv[1])[:n]
    ours = sorted(((k, c) for k, c in incl.items() if short(k[0]) == "flowd"),
                  key=lambda kv: -kv[1])[:n]
    return {"functions": [{"function": fn, "object": short(ob), "share": c / total}
                          for (ob, fn), c in top],
            "flowd_inclusive": [{"function": fn, "share": c / total} for (_ob, fn), c in ours],
            "objects": {k: v / total for k, v in sorted(by_object.items(),
                                                         key=lambda kv: -kv[1])[:10]}}
