"""S1 ingest: POST /api/v1/events accepted per second (1 KB body, binary-mode CloudEvent,
key auth, 202 after Kafka's delivery report, 64 keep-alive connections) against the
trivial civetweb handler of tests/bench/baseline_http.c with the same body, connections
and civetweb options. Both maxima come from wrk (closed loop); each pair then runs
tests/bench/loadgen.c open loop at 70 % of that pair's flowd maximum for the p99.

flowd runs with `roles: api` only (nothing consumes the events; the engine would only
compete for the CPUs), `api.rate_limit: 0`, default Kafka producer settings.

Each pair also records the CPU time flowd and the Kafka broker spent per accepted request
during flowd's closed-loop run (/proc/<pid>/stat), and flowd's context switches per
accepted request (every thread's, /proc/<pid>/task/*/status): on a shared 2-CPU machine
the throughput is what the CPUs allow, and these say whose CPU it was and how much of it
went to waking threads."""

import os
import uuid
from pathlib import Path

import httpload as H

CE_TYPE = "bench.ingest"  # matches no routing rule: topics.flowd_events; no workflow
# the open-loop run's first half second (64 new connections, each one's first request)
# runs at the same rate but is left out of the percentiles: a steady state is measured
SETTLE_S = 0.5


def cpu_seconds(pid):
    """User + system CPU seconds a process (all its threads) has used, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of a process, or None."""
    total = 0
    try:
        for status in Path(f"/proc/{pid}/task").glob("*/status"):
            for line in status.read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split(":")[1])
    except (OSError, ValueError):
        return None
    return total


class S1:
    def __init__(self, stack, setup, build, seconds, latency_seconds, warm_seconds,
                 latency_share=0.7):
        self.stack = stack
        self.warm_seconds = warm_seconds
        self.setup = setup
        self.build = build
        self.seconds = seconds
        self.latency_seconds = latency_seconds
        self.share = latency_share
        self.body = setup.dir / "body.json"
        self.db = None
        self.flowd = None
        self.key = None
        self.headers = {}

    def prepare(self):
        self.setup.prepare()
        self.body.write_bytes(H.body_bytes())
        self.db = self.stack.create_db(self.setup.template)
        self.flowd = H.flowd_api(self.setup, self.db, "api", f"s1-{uuid.uuid4().hex[:8]}")
        self.key = H.api_key(self.setup, self.flowd.config)
        self.flowd.start_ready()
        self.headers = H.ce_headers(CE_TYPE, self.key)
        return self

    def close(self):
        if self.flowd is not None:
            self.flowd.stop()
        if self.db is not None:
            self.stack.drop_db(self.db)

    def wrk_run(self, port):
        tag = uuid.uuid4().hex[:8]
        script = H.write_wrk_script(self.setup.dir / f"wrk-{tag}.lua", tag)
        return H.wrk(port, self.seconds, script, self.body, self.headers)

    def warm_up(self, baseline):
        """flowd for warm_seconds, the baseline for one second, so neither side's first
        run pays for cold caches. flowd's side is long because of the broker: a fresh
        JVM spent 65-100 us of CPU per event in its first runs and 15-20 us after about a
        minute of load (its JIT), and every run here starts a fresh broker."""
        keep = self.seconds
        try:
            self.seconds = self.warm_seconds
            self.wrk_run(self.flowd.port)
            self.seconds = 1
            self.wrk_run(baseline.port)
        finally:
            self.seconds = keep

    def kafka_pid(self):
        try:
            return int((self.stack.var / "kafka" / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def pair(self, baseline):
        pids = {"flowd": self.flowd.proc.pid, "kafka": self.kafka_pid()}
        before = {k: cpu_seconds(p) for k, p in pids.items() if p}
        switches = context_switches(pids["flowd"])
        system = self.wrk_run(self.flowd.port)
        after = {k: cpu_seconds(p) for k, p in pids.items() if p}
        switches_after = context_switches(pids["flowd"])
        self.check(system, "wrk against flowd")
        accepted = max(system["requests"] - system["non_2xx"], 1)
        system["cpu_us_per_accepted"] = {
            k: (after[k] - before[k]) * 1e6 / accepted for k in before
            if before[k] is not None and after.get(k) is not None}
        if switches is not None and switches_after is not None:
            system["flowd_context_switches_per_accepted"] = (switches_after - switches) / accepted
        base = self.wrk_run(baseline.port)
        rate = self.share * system["accepted_per_s"]
        lat = H.loadgen(self.build, self.flowd.port, rate, self.latency_seconds, self.body,
                        self.headers, tag="l" + uuid.uuid4().hex[:8], settle=SETTLE_S)
        self.check_open(lat)
        return {"system": system, "baseline": base, "ratio":
                system["accepted_per_s"] / base["accepted_per_s"], "latency_at_70pct": lat}

    def check(self, run, what):
        if run["non_2xx"] or run["socket_errors"]:
            raise RuntimeError(f"{what}: {run['non_2xx']} non-2xx responses, "
                               f"{run['socket_errors']} socket errors\n{self.flowd.tail(20)}")

    def check_open(self, lat):
        bad = {s: n for s, n in lat["status"].items() if s != "202"}
        if bad or lat["errors"] or lat["unfinished"]:
            raise RuntimeError(f"open-loop run against flowd: statuses {lat['status']}, "
                               f"{lat['errors']} errors, {lat['unfinished']} unfinished\n"
                               f"{self.flowd.tail(20)}")

    def describe(self):
        return {"request": f"POST {H.PATH}, {H.BODY_BYTES} B JSON body, CloudEvents binary "
                           "mode (ce-* headers; unique ce-id and ce-subject per request), "
                           "Authorization: Bearer <write key of tenant bench>",
                "connections": H.CONNECTIONS, "civetweb_workers": H.WORKERS,
                "flowd": "roles api, api.rate_limit 0, http.threads 32 + api.max_streams 32",
                "baseline": "tests/bench/baseline_http.c: 202 + small JSON, same civetweb "
                            "options and thread count",
                "closed_loop": f"wrk -t 2 -c {H.CONNECTIONS}, {self.seconds} s per run, after "
                               f"{self.warm_seconds} s of warming flowd and the broker",
                "open_loop": f"tests/bench/loadgen.c at {self.share:.0%} of the pair's flowd "
                             f"maximum, {self.latency_seconds} s after {SETTLE_S} s of "
                             "settling at the same rate, latency from the intended send time",
                "targets": {"ratio": ">= 0.35 (goal 0.5)", "p99_ms_at_70pct": "<= 5"}}
