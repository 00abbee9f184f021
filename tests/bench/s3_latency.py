"""S3 end-to-end latency: HTTP accept -> Kafka -> engine -> committed transition, open loop
at a constant rate, for the one-step workflow tests/bench/workflows/bench1.yaml.

One `flowd serve --roles api,engine` process serves the whole scenario. Every event is
timed by the driver on one clock (CLOCK_MONOTONIC): loadgen.c schedules request n at
start + n / rate, and a thread here LISTENs on flowd_changes and timestamps each NOTIFY
as it arrives (the engine sends it inside the transaction, so it is delivered at the
commit); the NOTIFY's `key` is the event's subject, `<tag>-<n>`. No wall clocks of two
processes are compared.

The baseline is the sum of the component p99s, each measured alone in the same pair at
the same rate against the same process:
- HTTP accept: the same requests with type `bench.sink`, which api.event_routes sends to
  a topic the engine does not consume (202 after Kafka's delivery report, as always);
- engine: bench.one events produced straight to Kafka by the driver, timed from each
  one's delivery report to its NOTIFY (the producer serves reports at least every
  millisecond, so a report is timed within about a millisecond). Its settings are flowd's
  producer's (core/kafka_props.c: linger.ms 1, idempotent, acks all), so the broker and
  the engine see events arrive as they do from the API: one by one, not in bursts that
  would fill the engine's batches for it."""

import json
import threading
import time
import uuid

from confluent_kafka import Producer

import httpload as H

E2E_TYPE = "bench.one"
SINK_TYPE = "bench.sink"


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 1)) - 1))
    return s[k]


def latency_summary(lat_ms, expected):
    if not lat_ms:
        raise RuntimeError(f"no event of {expected} was committed in time")
    return {"events": expected, "measured": len(lat_ms), "missing": expected - len(lat_ms),
            "p50_ms": percentile(lat_ms, 0.5), "p90_ms": percentile(lat_ms, 0.9),
            "p99_ms": percentile(lat_ms, 0.99), "max_ms": max(lat_ms)}


class Listener:
    """LISTEN flowd_changes on its own connection; arrival times by key, in a thread."""

    def __init__(self, stack, db):
        self.conn = stack.connect(db)
        self.conn.execute("LISTEN flowd_changes")
        self.arrived = {}
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopping:
            for note in self.conn.notifies(timeout=0.2):
                now = time.monotonic()
                key = json.loads(note.payload).get("key")
                self.arrived.setdefault(key, now)

    def wait_keys(self, keys, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(k in self.arrived for k in keys):
            time.sleep(0.05)

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.conn.close()


class S3:
    def __init__(self, stack, setup, build, seconds, rate):
        self.stack, self.setup, self.build = stack, setup, build
        self.seconds = seconds
        self.rate = rate
        self.body = setup.dir / "body.json"
        self.db = self.flowd = self.listener = self.key = self.producer = None

    def prepare(self):
        self.setup.prepare()
        self.body.write_bytes(H.body_bytes())
        self.db = self.stack.create_db(self.setup.template)
        routes = f"{SINK_TYPE}={self.setup.topics['business_analytics']}"
        self.flowd = H.flowd_api(self.setup, self.db, "api,engine",
                                 f"s3-{uuid.uuid4().hex[:8]}", {"event_routes": routes})
        self.key = H.api_key(self.setup, self.flowd.config)
        self.flowd.start_ready()
        self.listener = Listener(self.stack, self.db)
        self.producer = warm_producer(self.stack.kafka_bootstrap,
                                      self.setup.topics["business_analytics"])
        self.warm_up()
        return self

    def close(self):
        if self.listener is not None:
            self.listener.close()
        if self.flowd is not None:
            self.flowd.stop()
        if self.db is not None:
            self.stack.drop_db(self.db)

    def warm_up(self):
        """A second at a tenth of the rate: connections, prepared statements, caches."""
        self.http_run(E2E_TYPE, max(50.0, self.rate / 10), 1.0)

    def http_run(self, ce_type, rate, seconds):
        tag = "h" + uuid.uuid4().hex[:8]
        run = H.loadgen(self.build, self.flowd.port, rate, seconds, self.body,
                        H.ce_headers(ce_type, self.key), tag=tag)
        bad = {s: n for s, n in run["status"].items() if s != "202"}
        if bad or run["errors"] or run["unfinished"]:
            raise RuntimeError(f"open loop against flowd: statuses {run['status']}, "
                               f"{run['errors']} errors, {run['unfinished']} unfinished\n"
                               f"{self.flowd.tail(20)}")
        keys = [f"{tag}-{n}" for n in range(run["done"])]
        if ce_type == E2E_TYPE:
            self.listener.wait_keys(keys, 30)
        return tag, run, keys

    # -- the system ---------------------------------------------------------------------
    def e2e_run(self):
        tag, run, keys = self.http_run(E2E_TYPE, self.rate, self.seconds)
        start, rate = run["start_mono"], run["rate"]
        lat = [(self.listener.arrived[k] - (start + n / rate)) * 1000
               for n, k in enumerate(keys) if k in self.listener.arrived]
        return latency_summary(lat, len(keys))

    # -- the baselines ------------------------------------------------------------------
    def http_alone(self):
        _tag, run, _keys = self.http_run(SINK_TYPE, self.rate, self.seconds)
        return {k: run[k] for k in ("done", "p50_ms", "p90_ms", "p99_ms", "max_ms")}

    def engine_alone(self):
        """bench.one events produced at the rate straight to Kafka; delivery -> NOTIFY."""
        tag = "k" + uuid.uuid4().hex[:8]
        delivered = produce_paced(self.producer, self.setup.topics["flowd_events"], tag,
                                  self.rate, self.seconds, self.body.read_bytes())
        self.listener.wait_keys(list(delivered), 30)
        lat = [(self.listener.arrived[k] - t) * 1000 for k, t in delivered.items()
               if k in self.listener.arrived]
        return latency_summary(lat, len(delivered))

    def pair(self):
        system = self.e2e_run()
        http = self.http_alone()
        engine = self.engine_alone()
        base = http["p99_ms"] + engine["p99_ms"]
        return {"system": system, "baseline": {"http_accept": http, "engine": engine,
                                               "p99_sum_ms": base},
                "ratio": system["p99_ms"] / base}

    def describe(self):
        return {"workflow": "bench1 (one durable transition per event)",
                "rate_per_s": self.rate, "seconds_per_run": self.seconds,
                "flowd": "one process, roles api,engine, api.rate_limit 0, default engine "
                         "and Kafka settings",
                "request": f"as S1 (POST {H.PATH}, {H.BODY_BYTES} B, binary mode, key auth,"
                           f" {H.CONNECTIONS} connections), ce-type {E2E_TYPE}",
                "measured": "from the intended send time (open loop) to the arrival of "
                            "the transition's NOTIFY flowd_changes at the driver",
                "baseline": "p99 of HTTP accept alone (ce-type bench.sink, routed to a "
                            "topic no engine reads) + p99 of the engine alone (events "
                            "produced to Kafka by the driver, delivery report -> NOTIFY), "
                            "same rate, same process, same pair",
                "targets": {"ratio": "<= 2.0 (goal 1.5)", "p50_ms": "<= 2",
                            "p99_ms": "<= 10"}}


def warm_producer(bootstrap, topic):
    """The engine-alone runs' producer, connected and with its idempotent producer id
    before any timed event (a first produce waits for both)."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "partitioner": "murmur2_random", "linger.ms": 1})
    for n in range(20):
        p.produce(topic, value=b"{}", key=b"warm-%d" % n)
    if p.flush(30):
        raise RuntimeError("the engine-alone producer could not reach Kafka")
    return p


def wait_until(p, due):
    """Serves delivery reports until `due`. poll() takes whole milliseconds (a shorter
    timeout would be 0, a busy loop that took most of a CPU from the engine on 2 CPUs),
    so the last fraction of a millisecond is slept."""
    while True:
        left = due - time.monotonic()
        if left <= 0:
            return
        if left >= 0.001:
            p.poll(0.001)
        else:
            time.sleep(left)


def produce_paced(p, topic, tag, rate, seconds, body):
    """Produces rate x seconds bench.one events (the HTTP runs' body, the headers the API
    would write) at a constant rate; returns each key's
    delivery time (monotonic). Polls at least every millisecond for delivery reports."""
    delivered = {}

    def report(err, msg):
        if err is None:
            delivered[msg.key().decode()] = time.monotonic()
    t0 = time.monotonic() + 0.05
    for n in range(int(rate * seconds)):
        wait_until(p, t0 + n / rate)
        key = f"{tag}-{n}"
        headers = [("ce_specversion", b"1.0"), ("ce_id", key.encode()),
                   ("ce_source", b"flowd-bench"), ("ce_type", E2E_TYPE.encode()),
                   ("ce_subject", key.encode()), ("ce_tenant", H.BENCH_TENANT.encode()),
                   ("content-type", b"application/json")]
        p.produce(topic, value=body, key=key.encode(), headers=headers,
                  on_delivery=report)
        p.poll(0)
    p.flush(30)
    return delivered
