"""S4 LLM fan-out: workflow-driven `call: llm` activities against a loopback fake provider
(tests/bench/fake_provider.c: OpenAI Chat Completions, 500 ms +- 20 % uniform, 5 % faults
split among 429 + Retry-After, 500, 503 and a 1.5 s hold that the 1 s per-attempt timeout
cuts off; fixed seed), and the gateway's overhead per non-streamed call.

The load: N `bench.llm` events start N instances of tests/bench/workflows/bench_llm.yaml,
each of which makes one `call: llm`. An engine (`roles: engine`) turns the events into N
pending activity rows once per harness run, in a seed database; every system run clones
it, so each starts from the same N due calls. The system: one `flowd serve` with `roles:
activities` only, `activities.concurrency` C (2,000), the provider's `timeout: 1s` and
`max_retries: 2`. Measured from the rows it completed (activities.updated_at, set by the
transaction that stored the outcome): completions per second between the 2C-th and the
(N - C)-th completion, where every slot is busy (the backlog still has due rows) and the
first waves have spread out. ratio = that / (C / mean latency), the rate C calls in flight
at the fake's mean latency would give with no faults and no overhead. Its peak RSS
(VmHWM), its thread count and its threads' names come from /proc.

Gateway overhead: `flowd serve --roles api` with the same provider pointed at a second
fake with no latency and no faults; the same non-streamed `POST /v1/chat/completions`
sent alternately through flowd and straight to the fake, one at a time on a keep-alive
connection each; overhead = median(through flowd) - median(direct)."""

import http.client
import json
import statistics
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Producer

import httpload as H
from engineload import produce_one
from stack_common import free_port

EVENT_TYPE = "bench.llm"
WORKFLOW = "bench_llm"
PROVIDER = "bench"
MODEL = "fake-bench"
LATENCY_MS = 500
JITTER = 0.2
FAULT = 0.05
SEED = 1
HOLD_MS = 1500
RETRY_DELAY_MS = 100
# the activity worker's threads, by their pthread names: the worker (engine/activities.c),
# its curl-multi client (core/http.c), its claim and store threads (activities_pump.c)
LLM_THREADS = ("fl-activities", "fl-http", "fl-act-claim", "fl-act-store")
BODY = {"model": PROVIDER, "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16}


class Fake:
    """tests/bench/fake_provider.c on a free port."""

    def __init__(self, build, threads, latency_ms=LATENCY_MS, jitter=JITTER, fault=FAULT,
                 hold_ms=HOLD_MS):
        self.port = free_port()
        self.args = [str(Path(build) / "bench" / "fake_provider"), str(self.port), str(threads),
                     str(latency_ms), str(jitter), str(fault), str(SEED), str(hold_ms)]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            self.close()
            raise RuntimeError(f"fake_provider did not start: {line}")

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def fault_ceiling():
    """The ratio a perfect worker would reach with these faults: the mean time of a logical
    call is T = (1 - f) L + f/4 (RA + T) + f/2 (D + T) + f/4 (timeout + D + T), with L the
    mean latency, RA the 429's Retry-After (1 s), D the first backoff (retry_delay) and
    faults answered at once; so T = ((1 - f) L + f/4 RA + f/2 D + f/4 (1 s + D)) / (1 - f),
    and the ceiling is L / T."""
    f, lat, ra, d, timeout = FAULT, LATENCY_MS / 1000, 1.0, RETRY_DELAY_MS / 1000, 1.0
    t = ((1 - f) * lat + f / 4 * ra + f / 2 * d + f / 4 * (timeout + d)) / (1 - f)
    return lat / t


def llm_config(base_url):
    return {"chain": [PROVIDER], "providers": {PROVIDER: {
        "kind": "openai", "base_url": base_url, "model": MODEL, "timeout": "1s",
        "max_retries": 2, "retry_delay": f"{RETRY_DELAY_MS}ms",
        # no breaker: it counts consecutive failed attempts, and with 2,000 calls started
        # together the held ones time out together (25 of the first 2,000 at 1.0 s), which
        # opened even a 20-failure breaker for 30 s in the first trial run
        "breaker_failures": 0}}}


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            out[name] = int(value.split()[0])
    return out


def thread_names(pid):
    names = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        names[name] = names.get(name, 0) + 1
    return names


def rate_between(times, lo, hi):
    """Completions per second from the lo-th to the hi-th completion (0-based, sorted)."""
    span = (times[hi] - times[lo]).total_seconds()
    return (hi - lo) / span if span > 0 else 0.0


class S4:
    def __init__(self, stack, setup, build, calls, concurrency, gateway_calls):
        self.stack = stack
        self.setup = setup
        self.build = Path(build)
        self.calls = calls
        self.concurrency = concurrency
        self.gateway_calls = gateway_calls
        self.seed_db = None
        self.fake = None

    # -- the backlog --------------------------------------------------------------------
    def prepare(self):
        self.setup.prepare()
        self.produce()
        self.seed_db = self.stack.create_db(self.setup.template)
        engine = self.setup.engine(self.seed_db, f"s4-seed-{self.setup.tag}", "s4-seed")
        engine.start()
        try:
            self.wait_rows(engine)
        finally:
            engine.stop()
        self.fake = Fake(self.build, self.concurrency + 200)
        return self

    def produce(self):
        p = Producer({"bootstrap.servers": self.stack.kafka_bootstrap, "linger.ms": 20,
                      "enable.idempotence": True, "acks": "all"})
        topic = self.setup.topics["flowd_events"]
        for i in range(self.calls):
            key = f"llm{self.setup.tag}-{i:07d}"
            headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()),
                       ("ce_source", b"flowd-bench"), ("ce_type", EVENT_TYPE.encode()),
                       ("ce_subject", key.encode()), ("content-type", b"application/json")]
            produce_one(p, topic, key.encode(), b'{"prompt":"Say hello, %d."}' % i, headers,
                        None)
        if p.flush(120):
            raise RuntimeError("producing the S4 events failed")

    def wait_rows(self, engine):
        deadline = time.monotonic() + 120 + self.calls / 200
        with self.stack.connect(self.seed_db) as conn:
            while time.monotonic() < deadline:
                n = conn.execute("SELECT count(*) FROM activities").fetchone()[0]
                if n >= self.calls:
                    return
                if not engine.alive():
                    raise RuntimeError(f"the seeding engine exited:\n{engine.tail()}")
                time.sleep(0.2)
        raise RuntimeError(f"only {n} of {self.calls} activities were created\n{engine.tail()}")

    def close(self):
        if self.fake is not None:
            self.fake.close()
        if self.seed_db is not None:
            self.stack.drop_db(self.seed_db)

    # -- the system run -------------------------------------------------------------------
    def worker(self, db):
        run = f"s4-{uuid.uuid4().hex[:8]}"
        cfg = {"http": {"listen": "127.0.0.1", "port": free_port()}, "roles": "activities",
               "activities": {"concurrency": self.concurrency},
               "llm": llm_config(self.fake.base_url)}
        return H.FlowdServer(self.setup.flowd, self.setup.config(db, run, run, cfg))

    def watch(self, flowd, conn):
        """Samples the process until every call is finished; returns the peak figures."""
        deadline = time.monotonic() + 120 + self.calls / 100
        peak = {"VmRSS": 0, "VmHWM": 0, "Threads": 0}
        names, next_count = {}, 0.0
        while time.monotonic() < deadline:
            if not flowd.alive():
                raise RuntimeError(f"the activity worker exited:\n{flowd.tail()}")
            st = proc_status(flowd.proc.pid)
            if st["Threads"] >= peak["Threads"]:
                names = thread_names(flowd.proc.pid)
            peak = {k: max(peak[k], st[k]) for k in peak}
            if time.monotonic() >= next_count:
                next_count = time.monotonic() + 0.5
                done = conn.execute("SELECT count(*) FROM activities WHERE status IN "
                                    "('completed', 'failed')").fetchone()[0]
                if done >= self.calls:
                    peak.update(proc_status(flowd.proc.pid))  # VmHWM is the peak itself
                    return peak, names
            time.sleep(0.1)
        raise RuntimeError(f"the calls did not finish in time\n{flowd.tail()}")

    def system_run(self):
        db = self.stack.create_db(self.seed_db)
        flowd = self.worker(db)
        before = self.fake.stats()
        try:
            with self.stack.connect(db) as conn:
                flowd.start()
                peak, names = self.watch(flowd, conn)
                flowd.stop()
                result = self.result(conn, peak, names)
        finally:
            flowd.kill9()
            self.stack.drop_db(db)
        after = self.fake.stats()
        result["provider"] = {k: after[k] - before[k] for k in after if k != "in_progress"}
        result["retries_total"] = result["provider"]["requests"] - self.calls
        return result

    def result(self, conn, peak, names):
        times = [r[0] for r in conn.execute(
            "SELECT updated_at FROM activities WHERE status = 'completed' ORDER BY updated_at")]
        failed = conn.execute("SELECT count(*) FROM activities WHERE status = 'failed'"
                              ).fetchone()[0]
        activity_retries, chain_attempts = conn.execute(
            "SELECT (SELECT COALESCE(sum(attempt - 1), 0) FROM activities), "
            "(SELECT COALESCE(sum((payload->'usage'->>'attempts')::int), 0) FROM outbox "
            "WHERE type = 'flowd.activity.completed')").fetchone()
        c = self.concurrency
        lo, hi = 2 * c, len(times) - 1 - c
        if hi - lo < c:
            raise RuntimeError(f"too few completions ({len(times)}) to measure a steady state")
        theoretical = c / (LATENCY_MS / 1000)
        rate = rate_between(times, lo, hi)
        return {"calls_per_s": rate, "calls": self.calls, "completed": len(times),
                "failed": int(failed),
                "whole_run_calls_per_s": rate_between(times, 0, len(times) - 1),
                "theoretical_per_s": theoretical, "ratio": rate / theoretical,
                "fault_ceiling_ratio": fault_ceiling(),
                "activity_retries": int(activity_retries),
                "chain_attempts_of_completed": int(chain_attempts),
                "rss_peak_mb": peak["VmHWM"] / 1024, "threads_peak": peak["Threads"],
                "llm_threads": sum(names.get(t, 0) for t in LLM_THREADS),
                "thread_names": names}

    # -- the gateway ----------------------------------------------------------------------
    def gateway(self):
        fake0 = Fake(self.build, 16, latency_ms=0, jitter=0, fault=0)
        db = self.stack.create_db(self.setup.template)
        run = f"s4g-{uuid.uuid4().hex[:8]}"
        cfg = {"http": {"listen": "127.0.0.1", "port": free_port()}, "api": {"rate_limit": 0},
               "roles": "api", "llm": llm_config(fake0.base_url)}
        flowd = H.FlowdServer(self.setup.flowd, self.setup.config(db, run, run, cfg))
        try:
            key = H.api_key(self.setup, flowd.config)
            flowd.start_ready()
            return self.gateway_measure(flowd.port, fake0.port, key)
        finally:
            flowd.stop()
            fake0.close()
            self.stack.drop_db(db)

    def gateway_measure(self, flowd_port, fake_port, key):
        body = json.dumps(BODY).encode()
        via = Client(flowd_port, {"Authorization": f"Bearer {key}"}, body)
        direct = Client(fake_port, {}, body)
        try:
            for _ in range(min(50, self.gateway_calls)):  # warm: connections, caches, plans
                via.call()
                direct.call()
            a, b = [], []
            for _ in range(self.gateway_calls):
                a.append(via.call())
                b.append(direct.call())
        finally:
            via.close()
            direct.close()
        q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
        ms = 1000.0
        return {"calls": self.gateway_calls,
                "via_flowd_p50_ms": statistics.median(a) * ms, "direct_p50_ms":
                statistics.median(b) * ms, "via_flowd_p99_ms": q(a, 0.99) * ms,
                "direct_p99_ms": q(b, 0.99) * ms,
                "overhead_ms": (statistics.median(a) - statistics.median(b)) * ms}

    # -- the pairs ----------------------------------------------------------------------
    def pair(self):
        system = self.system_run()
        gw = self.gateway()
        return {"system": system, "baseline": {"theoretical_per_s": system["theoretical_per_s"],
                                               "concurrency": self.concurrency,
                                               "mean_latency_ms": LATENCY_MS},
                "gateway": gw, "ratio": system["ratio"]}

    def describe(self):
        return {"calls": self.calls, "concurrency": self.concurrency, "workflow": WORKFLOW,
                "provider": f"tests/bench/fake_provider.c: OpenAI Chat Completions, "
                            f"{LATENCY_MS} ms +- {JITTER:.0%} uniform, {FAULT:.0%} faults "
                            f"(429 + Retry-After: 1, 500, 503 at once; a {HOLD_MS} ms hold), "
                            f"seed {SEED}",
                "flowd": f"roles activities, activities.concurrency {self.concurrency}, "
                         "provider timeout 1s, max_retries 2, retry_delay 100ms, "
                         "breaker_failures 0 (off); the action's retry {attempts: 3}",
                "measured": "completions/s between the 2C-th and the (N-C)-th completion "
                            "(activities.updated_at)",
                "baseline": "C / mean latency (the theoretical rate)",
                "fault_ceiling_ratio": round(fault_ceiling(), 4),
                "gateway": f"{self.gateway_calls} non-streamed POST /v1/chat/completions "
                           "each way, alternating, one at a time, keep-alive; fake with 0 ms "
                           "latency and no faults",
                "targets": {"ratio": ">= 0.9", "rss_peak_mb": "< 150",
                            "llm_threads": "<= 4", "gateway_overhead_ms": "< 1"}}


class Client:
    """One keep-alive connection; call() returns the seconds of one request."""

    def __init__(self, port, headers, body):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json", **headers}
        self.body = body

    def call(self):
        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/chat/completions", self.body, self.headers)
        r = self.conn.getresponse()
        data = r.read()
        dt = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"gateway bench: HTTP {r.status}: {data[:300]!r}")
        return dt

    def close(self):
        self.conn.close()
