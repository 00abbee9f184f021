"""Shared helpers of the engine system tests (tests/system/test_engine_*.py).

Each test gets an EngineEnv: a scratch database (migrated), its own topic prefix (all ten
topics.* settings, so tests never see each other's events), its own consumer group and a
workflows directory holding exactly the definitions it needs. flowd runs as real `serve`
processes (EngineProc) that the tests kill -9 and restart. Events are produced by an
independent confluent_kafka client (Producer) that counts what it delivered itself;
outcomes are read back from PostgreSQL (psycopg) and from Kafka (read_topic)."""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from confluent_kafka import Consumer, KafkaError, Producer as KProducer, TopicPartition

from conftest import FLOWD, ROOT, free_port, port_open, wait_for
from stack_common import TOPICS

TEST_WORKFLOWS = Path(__file__).resolve().parent / "workflows"
SHIPPED_WORKFLOWS = ROOT / "workflows"
SOURCE = "flowd-system-test"

ENGINE_INPUTS = ["conversation_events", "flowd_events", "appointment_events", "order_events",
                 "internal"]


def now_utc():
    return datetime.now(timezone.utc)


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.microsecond // 1000:03d}Z"


# ---- PostgreSQL -------------------------------------------------------------------------

def q(db_url, sql, *params):
    """All rows of one query; raises psycopg.OperationalError while PostgreSQL is down."""
    with psycopg.connect(db_url, connect_timeout=3, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def q1(db_url, sql, *params):
    rows = q(db_url, sql, *params)
    return rows[0][0] if rows else None


def q_or_none(db_url, sql, *params):
    """Like q, but None while the database cannot be reached (for wait loops)."""
    try:
        return q(db_url, sql, *params)
    except psycopg.OperationalError:
        return None


# ---- flowd processes --------------------------------------------------------------------

class EngineProc:
    """One `flowd serve` with its own config; its stderr log is kept across restarts."""

    def __init__(self, env, name, port, config_text):
        self.env = env
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.dir = env.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "flowd.yaml"
        self.config_path.write_text(config_text)
        self.log_path = self.dir / "stderr.log"
        self.proc = None
        self.starts = 0
        self.kills = 0

    def run(self, *args, timeout=90):
        return subprocess.run([str(FLOWD), "--config", str(self.config_path), *args],
                              cwd=self.dir, capture_output=True, text=True, timeout=timeout)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            log.write(f"---- start {self.starts + 1} at {rfc3339(now_utc())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(FLOWD), "--config", str(self.config_path), "serve"], cwd=self.dir,
                stdout=subprocess.DEVNULL, stderr=log)
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        if self.proc:
            self.proc.wait(timeout=30)

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL past the timeout; returns the exit status."""
        if not self.proc:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after SIGTERM timeout"

    def readyz(self):
        try:
            r = requests.get(self.url + "/readyz", timeout=3)
            return r.status_code, r.json()
        except (requests.RequestException, ValueError):
            return None, None

    def wait_ready(self, timeout=60):
        def ready():
            assert self.alive(), f"{self.name} exited early:\n{self.log_tail()}"
            status, body = self.readyz()
            if status != 200:
                return False
            engine = (body.get("checks") or {}).get("engine")
            return engine is None or engine.get("status") == "up"
        try:
            wait_for(ready, timeout, interval=0.1, what=f"{self.name} /readyz 200")
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast /readyz: {self.readyz()}\n"
                                 f"log tail:\n{self.log_tail()}") from None

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])


class EngineEnv:
    """A scratch database, a topic prefix, a group and a workflows dir for one test."""

    def __init__(self, stack, tmp_path, workflows, settings=None, kafka_extra=None):
        self.stack = stack
        self.tag = uuid.uuid4().hex[:10]
        self.prefix = f"t{self.tag}."
        self.topics = {k: self.prefix + v for k, v in TOPICS.items()}
        self.group = f"flowd-engine-{self.tag}"
        self.dir = Path(tmp_path) / "engine"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.workflows_dir = self.dir / "workflows"
        self.workflows_dir.mkdir()
        for w in workflows:
            self.add_workflow(w)
        self.settings = settings or {}
        self.kafka_extra = kafka_extra or {}
        self.db_url = stack.create_database()
        self.procs = []
        self._admin = None

    def add_workflow(self, name_or_path, text=None, filename=None):
        """Copies tests/system/workflows/<name>.yaml (or workflows/<name>.yaml, or a path)
        into the env's workflows dir, or writes `text` there."""
        if text is not None:
            (self.workflows_dir / filename).write_text(text)
            return self.workflows_dir / filename
        p = Path(name_or_path)
        if not p.is_absolute():
            for d in (TEST_WORKFLOWS, SHIPPED_WORKFLOWS):
                if (d / f"{name_or_path}.yaml").exists():
                    p = d / f"{name_or_path}.yaml"
                    break
        dest = self.workflows_dir / p.name
        shutil.copy(p, dest)
        return dest

    def config(self, port, instance_id, settings=None, roles=None):
        s = {**self.settings, **(settings or {})}
        engine = {"group": self.group, "instance_id": instance_id,
                  "workflows_dir": str(self.workflows_dir)}
        engine.update(s.get("engine", {}))
        cfg = {
            "http": {"listen": "127.0.0.1", "port": port},
            "db": {"url": self.db_url, "connect_timeout": "2s"},
            "kafka": {"bootstrap.servers": self.stack.kafka_bootstrap, **self.kafka_extra},
            "health": {"interval": "250ms"},
            "shutdown_timeout": "10s",
            "topics": dict(self.topics),
            "engine": engine,
            "relay": {"interval": "20ms", **s.get("relay", {})},
            "timers": {"interval": "100ms", **s.get("timers", {})},
            "activities": {"interval": "50ms", **s.get("activities", {})},
        }
        if roles:
            cfg["roles"] = roles
        return yaml.safe_dump(cfg, sort_keys=False)

    def proc(self, instance_id=None, settings=None, roles=None):
        """A new (not yet started) flowd serve of this env."""
        name = f"flowd{len(self.procs)}"
        port = free_port()
        p = EngineProc(self, name, port, self.config(port, instance_id or f"{self.tag}-{name}",
                                                     settings, roles))
        self.procs.append(p)
        return p

    def prepare(self):
        """Migrates the scratch database and creates the prefixed topics."""
        p = self.proc(instance_id=f"{self.tag}-admin")
        self.procs.remove(p)
        r = p.run("migrate")
        assert r.returncode == 0, f"migrate failed:\n{r.stdout}\n{r.stderr}"
        r = p.run("topics", "ensure", "--wait", "30s")
        assert r.returncode == 0, f"topics ensure failed:\n{r.stdout}\n{r.stderr}"
        return self

    def start(self, **kw):
        p = self.proc(**kw).start()
        p.wait_ready()
        roles = kw.get("roles")
        if roles is None or "engine" in roles:
            checks = (p.readyz()[1] or {}).get("checks") or {}
            assert "engine" in checks, (
                "flowd serve does not run the engine (no \"engine\" check in /readyz: "
                f"{checks}); build a flowd whose serve wires consumers/engine")
        return p

    def cleanup(self):
        for p in self.procs:
            if p.alive():
                p.kill9()

    def logs(self, n=40):
        return "\n".join(f"== {p.name} (starts {p.starts}, kills {p.kills})\n{p.log_tail(n)}"
                         for p in self.procs)

    # -- reads ---------------------------------------------------------------------------
    def q(self, sql, *params):
        return q(self.db_url, sql, *params)

    def q1(self, sql, *params):
        return q1(self.db_url, sql, *params)

    def instances(self, workflow):
        return self.q("SELECT id::text, key, tenant, state, status, context, version "
                      "FROM instances WHERE workflow = %s ORDER BY key", workflow)

    def history(self, instance_id):
        return self.q("SELECT seq, event_id, event_type, from_state, to_state, created_at "
                      "FROM history WHERE instance_id = %s ORDER BY seq", instance_id)

    def engine_lag(self):
        """Sum over the engine input topics' partitions of high watermark - committed."""
        return consumer_lag(self.stack.kafka_bootstrap, self.group,
                            [self.topics[t] for t in ENGINE_INPUTS])


# ---- producing -------------------------------------------------------------------------

class Producer:
    """An independent idempotent producer (murmur2_random like flowd, so a key lands on
    the same partition number as flowd's own events) counting the records delivered."""

    def __init__(self, bootstrap, **conf):
        self.p = KProducer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                            "acks": "all", "partitioner": "murmur2_random",
                            "linger.ms": 5, "message.timeout.ms": 300000, **conf})
        self.delivered = 0
        self.errors = []
        self.lock = threading.Lock()

    def _report(self, err, msg):
        with self.lock:
            if err is None:
                self.delivered += 1
            else:
                self.errors.append(str(err))

    def raw(self, topic, value, headers, key=None):
        while True:
            try:
                self.p.produce(topic, value=value, key=key, headers=headers,
                               on_delivery=self._report)
                break
            except BufferError:
                self.p.poll(0.05)
        self.p.poll(0)

    def event(self, topic, type_, subject, data=None, id_=None, tenant=None, source=SOURCE,
              key="subject", omit=(), extra_headers=()):
        """A binary-mode CloudEvent; returns its id. `omit` drops named headers."""
        id_ = id_ or uuid.uuid4().hex
        headers = [("ce_specversion", "1.0"), ("ce_id", id_), ("ce_source", source),
                   ("ce_type", type_)]
        if subject is not None:
            headers.append(("ce_subject", subject))
        if tenant is not None:
            headers.append(("ce_tenant", tenant))
        headers.append(("content-type", "application/json"))
        headers = [(k, v.encode()) for k, v in headers if k not in omit]
        headers += [(k, v if isinstance(v, bytes) else v.encode()) for k, v in extra_headers]
        value = None if data is None else json.dumps(data).encode()
        self.raw(topic, value, headers, key=subject if key == "subject" else key)
        return id_

    def flush(self, timeout=120):
        left = self.p.flush(timeout)
        assert left == 0, f"{left} records not delivered within {timeout}s"
        assert not self.errors, f"delivery errors: {self.errors[:5]}"
        return self.delivered


# ---- consuming -------------------------------------------------------------------------

def read_topic(bootstrap, topic, until=None, timeout=30):
    """Every record of `topic` from the beginning, as dicts, until until(records) is true
    (or, without `until`, until the topic is drained) or the timeout passes."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    idle = 0
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                idle += 1
                if until is None and idle >= 6 and out:
                    break
                if until is not None and until(out):
                    break
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                continue
            idle = 0
            out.append({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                        "key": m.key().decode() if m.key() is not None else None,
                        "value": m.value(),
                        "headers": {k: (v.decode(errors="replace") if v is not None else None)
                                    for k, v in (m.headers() or [])}})
            if until is not None and until(out):
                break
    finally:
        c.close()
    return out


def consumer_lag(bootstrap, group, topics):
    """high watermark - committed offset, summed over every partition of `topics`, for
    consumer group `group` (read without joining the group). None if Kafka is unreachable."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = []
        for t in topics:
            md = c.list_topics(t, timeout=5)
            tps += [TopicPartition(t, p) for p in md.topics[t].partitions]
        committed = c.committed(tps, timeout=10)
        lag = 0
        for tp in committed:
            low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                timeout=5)
            pos = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - pos)
        return lag
    except Exception:  # noqa: BLE001 -- a wait loop retries
        return None
    finally:
        c.close()


# ---- the counter load (exactly-once tests) ----------------------------------------------

class CounterLoad:
    """counter.yaml's load: `keys` instances, each sent count.start then `ticks` ticks,
    round by round over about `seconds`; a fraction `dup_rate` of the ticks is sent a
    second time with the SAME ce_id (some at once, some rounds later)."""

    def __init__(self, env, producer, keys=200, ticks=50, dup_rate=0.05, seconds=30.0,
                 seed=None):
        self.env = env
        self.producer = producer
        self.topic = env.topics["flowd_events"]
        self.keys = [f"ctr-{env.tag}-{i:04d}" for i in range(keys)]
        self.ticks = ticks
        self.dup_rate = dup_rate
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.ids = set()
        self.duplicates = 0
        self.done = threading.Event()
        self.progress = 0.0

    def run(self):
        for k in self.keys:
            self.ids.add(self.producer.event(self.topic, "count.start", k, {"key": k},
                                             id_=f"{k}:start"))
        self.producer.flush()
        later = []
        pause = self.seconds / self.ticks
        for r in range(self.ticks):
            t0 = time.monotonic()
            for k in self.keys:
                i = f"{k}:tick:{r}"
                self.ids.add(self.producer.event(self.topic, "count.tick", k, {"r": r}, id_=i))
                if self.rng.random() < self.dup_rate:
                    if self.rng.random() < 0.5:
                        self.producer.event(self.topic, "count.tick", k, {"r": r}, id_=i)
                        self.duplicates += 1
                    else:
                        later.append((k, r, i))
            # re-send some ticks of earlier rounds: redeliveries well after the original
            keep = []
            for k, rr, i in later:
                if rr <= r - 2:
                    self.producer.event(self.topic, "count.tick", k, {"r": rr}, id_=i)
                    self.duplicates += 1
                else:
                    keep.append((k, rr, i))
            later = keep
            self.producer.p.poll(0)
            self.progress = (r + 1) / self.ticks
            time.sleep(max(0.0, pause - (time.monotonic() - t0)))
        for k, rr, i in later:
            self.producer.event(self.topic, "count.tick", k, {"r": rr}, id_=i)
            self.duplicates += 1
        self.producer.flush(timeout=300)
        self.done.set()

    def finished_count(self):
        rows = q_or_none(self.env.db_url,
                         "SELECT count(*) FROM instances WHERE workflow = 'counter' "
                         "AND (context->>'n')::int = %s", self.ticks)
        return rows[0][0] if rows else None

    def wait_all_counted(self, timeout):
        def all_done():
            n = self.finished_count()
            return n == len(self.keys) or False
        try:
            wait_for(all_done, timeout, interval=1.0, what="every counter to reach "
                     f"{self.ticks}")
        except AssertionError:
            rows = q_or_none(self.env.db_url,
                             "SELECT (context->>'n')::int AS n, count(*) FROM instances "
                             "WHERE workflow = 'counter' GROUP BY 1 ORDER BY 1")
            raise AssertionError(
                f"counters did not all reach {self.ticks} within {timeout}s: "
                f"n -> instances: {rows}; lag {self.env.engine_lag()}\n{self.env.logs()}")

    def assert_exact(self):
        """Every counter exactly `ticks`, one instance per key, a gap-free history with no
        event applied twice, and one inbox row per distinct event id."""
        env = self.env
        rows = env.q("SELECT key, (context->>'n')::int, status, state FROM instances "
                     "WHERE workflow = 'counter'")
        assert len(rows) == len(self.keys), f"{len(rows)} instances for {len(self.keys)} keys"
        assert sorted(r[0] for r in rows) == sorted(self.keys)
        bad = [r for r in rows if r[1] != self.ticks or r[2] != "running" or r[3] != "counting"]
        assert not bad, f"{len(bad)} counters not exactly {self.ticks}: {bad[:10]}"
        hist = env.q("SELECT i.key, count(*), count(DISTINCT h.event_id), min(h.seq), "
                     "max(h.seq) FROM history h JOIN instances i ON i.id = h.instance_id "
                     "WHERE i.workflow = 'counter' GROUP BY i.key")
        want = self.ticks + 1
        bad = [h for h in hist if tuple(h[1:]) != (want, want, 1, want)]
        assert len(hist) == len(self.keys) and not bad, \
            f"history not (count, distinct ids, min seq, max seq) = {(want,) * 2 + (1, want)}: " \
            f"{bad[:10]}"
        inbox = env.q1("SELECT count(*) FROM inbox WHERE source = %s", SOURCE)
        assert inbox == len(self.ids), f"inbox rows {inbox} != distinct event ids {len(self.ids)}"


class Disruptor(threading.Thread):
    """Runs fn(i) every `every` (min, max) seconds until stop is set and at least `times`
    disruptions happened; exceptions are kept for the test to re-raise."""

    def __init__(self, fn, times, every, stop, seed=None):
        super().__init__(daemon=True)
        self.fn, self.times, self.every, self.stop = fn, times, every, stop
        self.count = 0
        self.error = None
        self.rng = random.Random(seed)

    def run(self):
        try:
            while not (self.stop.is_set() and self.count >= self.times):
                time.sleep(self.rng.uniform(*self.every))
                self.fn(self.count)
                self.count += 1
        except BaseException as e:  # noqa: BLE001 -- re-raised by the test
            self.error = e


# ---- the stack's servers ---------------------------------------------------------------

def pg_postmaster_pid(stack):
    loc = (stack.var / "pg" / "location").read_text().strip()
    pidfile = Path(loc) / "data" / "postmaster.pid"
    return int(pidfile.read_text().splitlines()[0]) if pidfile.exists() else None


def pg_stop_immediate(stack, timeout=60):
    """pg_ctl stop -m immediate: SIGQUIT to the postmaster (no checkpoint; the next start
    runs crash recovery). pg.sh has no immediate mode, so the signal is sent directly."""
    pid = pg_postmaster_pid(stack)
    assert pid, "no postmaster.pid"
    os.kill(pid, signal.SIGQUIT)

    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    wait_for(gone, timeout, what=f"postmaster {pid} to exit")
    wait_for(lambda: not port_open(stack.pg_port), timeout, what="postgres port closed")


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def ms_between(a, b):
    return (b - a) / timedelta(milliseconds=1)


# ---- fixtures (imported by the test modules) ---------------------------------------------


@pytest.fixture
def make_env(stack, tmp_path):
    """make_env(workflows, settings=..., kafka_extra=...) -> a prepared EngineEnv; every
    flowd it started is killed at teardown."""
    made = []

    def make(workflows, **kw):
        env = EngineEnv(stack, tmp_path / f"env{len(made)}", workflows, **kw)
        made.append(env)
        return env.prepare()

    yield make
    for env in made:
        env.cleanup()


@pytest.fixture
def producer(stack):
    p = Producer(stack.kafka_bootstrap)
    yield p
    p.p.flush(5)
