"""engine/relay against the real PostgreSQL and Kafka, driven by build/tests/relay_probe
(the relay alone, as `flowd serve --roles relay` runs it): every outbox row reaches its
topic in CloudEvents binary mode, in order per key, and is marked published; a kill -9
in the middle loses nothing and keeps each key's order of first deliveries; two relays
at once never interleave a key; and a throughput figure (rows published per second)."""

import json
import signal
import subprocess
import time
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer

from conftest import ROOT, wait_for

PROBE = ROOT / "build" / "tests" / "relay_probe"
KEYS = ["conv-a", "conv-b", "conv-c"]
TOPIC_FIELDS = ["conversation_events", "flowd_events", "appointment_events", "order_events",
                "internal", "ai_responses", "workflow_events", "business_analytics",
                "system_monitoring", "dead_letter"]
DEFAULT_NAMES = ["conversation.events", "flowd.events", "appointment.events", "order.events",
                 "flowd.internal", "ai.responses", "workflow.events", "business.analytics",
                 "system.monitoring", "dead.letter.queue"]


class RelayEnv:
    """A scratch database, its own topics (prefix t_<uuid>.) and a config for the probe."""

    def __init__(self, stack, flowd_factory, tmp_path, batch_size=500):
        self.stack = stack
        self.db = stack.create_database()
        self.prefix = "t_" + uuid.uuid4().hex[:12]
        topics = "".join(f"  {f}: {self.prefix}.{n}\n" for f, n in zip(TOPIC_FIELDS,
                                                                       DEFAULT_NAMES))
        extra = (f"topics:\n{topics}  partitions: 3\n"
                 f"relay:\n  batch_size: {batch_size}\n  interval: 50ms\n"
                 f"kafka_client:\n  produce_timeout: 5s\n")
        self.flowd = flowd_factory(db_url=self.db, extra=extra)
        r = self.flowd.run("migrate")
        assert r.returncode == 0, r.stderr
        r = self.flowd.run("topics", "ensure", "--wait", "30s", timeout=120)
        assert r.returncode == 0, r.stderr
        self.topic = f"{self.prefix}.flowd.internal"
        self.tmp = tmp_path
        self.procs = []

    def insert(self, per_key, keys=KEYS, start=0, null_every=0):
        """per_key rows for each key, interleaved (a, b, c, a, b, c, ...)."""
        rows = []
        for n in range(start, start + per_key):
            for k in keys:
                eid = f"{k}:{n}"
                payload = None if null_every and n % null_every == 0 else json.dumps({"n": n})
                headers = {"ce_id": eid, "ce_source": "relay-test", "ce_type": "relay.test",
                           "ce_specversion": "1.0", "ce_time": "2026-01-05T10:00:00.000Z",
                           "ce_subject": k, "ce_tenant": "acme",
                           "content-type": "application/json"}
                rows.append((eid, "acme", self.topic, k, "relay.test", payload,
                             json.dumps(headers)))
        with psycopg.connect(self.db) as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, payload, "
                    "headers) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)", rows)
        return len(rows)

    def unpublished(self):
        with psycopg.connect(self.db) as conn:
            return conn.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]

    def start(self):
        log = open(self.tmp / f"relay{len(self.procs)}.log", "wb")
        p = subprocess.Popen([str(PROBE), str(self.flowd.config_path)],
                             stdout=subprocess.PIPE, stderr=log, text=True)
        line = p.stdout.readline()
        assert json.loads(line)["event"] == "started", line
        self.procs.append((p, log))
        return p

    def stop(self, p, sig=signal.SIGTERM):
        p.send_signal(sig)
        code = p.wait(timeout=30)
        return code

    def cleanup(self):
        for p, log in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()

    def consume(self, expected, timeout=60):
        """Every record of the test topic (at least `expected` of them)."""
        c = Consumer({"bootstrap.servers": self.stack.kafka_bootstrap,
                      "group.id": "relay-test-" + uuid.uuid4().hex, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest"})
        c.subscribe([self.topic])
        out = []
        deadline = time.monotonic() + timeout
        idle_since = None
        try:
            while time.monotonic() < deadline:
                msgs = c.consume(num_messages=1000, timeout=0.5)
                for m in msgs:
                    assert m.error() is None, m.error()
                    out.append(m)
                if len(out) >= expected:
                    # keep reading a little longer: duplicates may follow
                    if not msgs:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 2:
                            break
                    else:
                        idle_since = None
        finally:
            c.close()
        return out


@pytest.fixture
def relay_env(stack, flowd_factory, tmp_path):
    envs = []

    def make(**kw):
        e = RelayEnv(stack, flowd_factory, tmp_path, **kw)
        envs.append(e)
        return e

    yield make
    for e in envs:
        e.cleanup()


def headers_of(m):
    return {k: (v.decode() if v is not None else None) for k, v in (m.headers() or [])}


def first_occurrences(msgs):
    """Per key, the ce_ids in the order of their first delivery, and the duplicate count."""
    seen = set()
    order = {}
    dups = 0
    for m in msgs:
        eid = headers_of(m)["ce_id"]
        if eid in seen:
            dups += 1
            continue
        seen.add(eid)
        order.setdefault(m.key().decode(), []).append(eid)
    return order, dups


def expected_order(per_key, keys=KEYS):
    return {k: [f"{k}:{n}" for n in range(per_key)] for k in keys}


def test_relay_publishes_every_row_in_order_per_key(relay_env):
    env = relay_env(batch_size=64)
    total = env.insert(100, null_every=10)  # 300 rows, 3 keys interleaved
    p = env.start()
    wait_for(lambda: env.unpublished() == 0, 60, what="every outbox row to be published")
    assert env.stop(p) == 0
    msgs = env.consume(total)
    assert len(msgs) == total  # no duplicates without a crash
    order, dups = first_occurrences(msgs)
    assert dups == 0
    assert order == expected_order(100)
    for m in msgs:
        h = headers_of(m)
        n = int(h["ce_id"].split(":")[1])
        assert h["ce_specversion"] == "1.0" and h["ce_type"] == "relay.test"
        assert h["ce_tenant"] == "acme" and h["ce_source"] == "relay-test"
        assert h["ce_subject"] == m.key().decode()
        if n % 10 == 0:  # null payload: empty value, no content-type
            assert m.value() == b"" and "content-type" not in h
        else:
            assert json.loads(m.value()) == {"n": n}
            assert h["content-type"] == "application/json"
    # one key, one partition
    for k in KEYS:
        assert len({m.partition() for m in msgs if m.key().decode() == k}) == 1
    with psycopg.connect(env.db) as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
                            ).fetchone()[0] == total


def test_relay_kill9_loses_nothing_and_keeps_order(relay_env):
    env = relay_env(batch_size=100)
    per_key = 4000
    total = env.insert(per_key)  # 12,000 rows
    p = env.start()
    wait_for(lambda: env.unpublished() < total - 1000, 60, interval=0.01,
             what="the relay to publish some rows")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    left = env.unpublished()
    assert 0 < left < total, left
    p = env.start()
    wait_for(lambda: env.unpublished() == 0, 120, what="the restarted relay to finish")
    assert env.stop(p) == 0
    msgs = env.consume(total, timeout=120)
    order, dups = first_occurrences(msgs)
    assert order == expected_order(per_key)  # nothing lost, first deliveries in order
    print(f"\nrelay kill -9: {total} rows, {dups} duplicates re-published after the kill")
    assert dups <= 2 * 100  # at most the pass in flight (and its reports) is re-published


def test_relay_two_processes_never_interleave_a_key(relay_env):
    env = relay_env(batch_size=50)
    per_key = 1000
    total = env.insert(per_key)
    a = env.start()
    b = env.start()
    wait_for(lambda: env.unpublished() == 0, 120, what="the relays to finish")
    assert env.stop(a) == 0 and env.stop(b) == 0
    msgs = env.consume(total)
    order, dups = first_occurrences(msgs)
    assert dups == 0 and len(msgs) == total
    assert order == expected_order(per_key)


def test_relay_throughput(relay_env):
    env = relay_env(batch_size=500)
    keys = [f"k{i}" for i in range(50)]
    total = env.insert(400, keys=keys)  # 20,000 rows on 50 keys
    start = time.monotonic()
    p = env.start()
    wait_for(lambda: env.unpublished() == 0, 120, interval=0.05,
             what="every outbox row to be published")
    elapsed = time.monotonic() - start
    assert env.stop(p) == 0
    rate = total / elapsed
    print(f"\nrelay throughput: {total} rows in {elapsed:.2f} s = {rate:.0f} rows/s")
    assert rate > 2000


def test_relay_failed_rows_hold_back_only_their_key(relay_env):
    env = relay_env(batch_size=500)
    good = env.insert(50)  # 150 rows on the test topic
    topic, env.topic = env.topic, f"{env.prefix}.no.such.topic"
    env.insert(3, keys=["stuck"])  # a topic nobody created: delivery fails
    env.topic = topic
    env.insert(10, keys=KEYS, start=50)  # after the stuck rows, other keys go on
    p = env.start()
    wait_for(lambda: env.unpublished() == 3, 30, what="every row but the stuck ones")
    time.sleep(1.5)  # another pass or two: the stuck rows stay, nothing else changes
    assert env.unpublished() == 3
    assert env.stop(p) == 0
    with psycopg.connect(env.db) as conn:
        stuck = conn.execute("SELECT aggregateid FROM outbox WHERE published_at IS NULL"
                             ).fetchall()
    assert stuck == [("stuck",)] * 3
    log = (env.tmp / "relay0.log").read_text()
    failed = [json.loads(line) for line in log.splitlines() if '"relay.failed"' in line]
    assert failed and failed[0]["level"] == "warn"
    assert f"{env.prefix}.no.such.topic" in failed[0]["topic"]
    msgs = env.consume(good + 30)
    order, dups = first_occurrences(msgs)
    assert dups == 0 and order == expected_order(60)
