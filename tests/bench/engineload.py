"""The engine under load: a backlog of bench5 events pre-produced to Kafka (a topic set of
its own), databases cloned from a migrated template, and `flowd serve --roles engine`
processes that drain the backlog while the harness reads the outcome from PostgreSQL.

The backlog is produced once per scenario and drained many times: every run gets a fresh
consumer group (so it starts from the earliest offset) and a fresh database (so the inbox
is empty), which is cheaper than producing again and gives every run the same input."""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import yaml
from confluent_kafka import Producer

from benchstack import WORKFLOWS
from stack_common import TOPICS, free_port  # on sys.path once benchstack is imported

SOURCE = "flowd-bench"
WORKFLOW = "bench5"
STEPS = 5
START_TYPE = "bench.start"
NEXT_TYPE = "bench.next"

class Setup:
    """A topic set (one prefix) and a migrated template database for one scenario."""

    def __init__(self, stack, flowd, workdir, name):
        self.stack = stack
        self.flowd = flowd
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = f"bench{self.tag}{name}."
        self.topics = {k: self.prefix + v for k, v in TOPICS.items()}
        self.dir = Path(workdir) / f"{name}-{self.tag}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.template = stack.create_db()
        self.produced = 0
        self.instances = 0

    def config(self, db, group, instance_id, extra=None):
        cfg = {
            "http": {"listen": "127.0.0.1", "port": free_port()},
            "db": {"url": self.stack.db_url(db)},
            "kafka": {"bootstrap.servers": self.stack.kafka_bootstrap},
            "topics": dict(self.topics),
            "engine": {"group": group, "instance_id": instance_id,
                       "workflows_dir": str(WORKFLOWS)},
            "roles": "engine",
            "log": {"level": os.environ.get("FLOWD_BENCH_LOG_LEVEL", "info")},
        }
        cfg.update(extra or {})
        path = self.dir / f"flowd-{db}-{instance_id}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def flowd_cmd(self, config, *args):
        r = subprocess.run([str(self.flowd), "--config", str(config), *args],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"flowd {' '.join(args)} failed:\n{r.stderr[-2000:]}")
        return r.stdout

    def prepare(self):
        """Migrates the template and creates the prefixed topics."""
        cfg = self.config(self.template, "setup", "setup")
        self.flowd_cmd(cfg, "migrate")
        self.flowd_cmd(cfg, "topics", "ensure", "--wait", "60s")
        return self

    def batch_size(self):
        """engine.batch_size as the engine will use it (the baseline must match)."""
        cfg = self.config(self.template, "setup", "setup")
        return int(yaml.safe_load(self.flowd_cmd(cfg, "config", "dump"))["engine"]["batch_size"])

    def produce(self, instances):
        """instances x STEPS events on the flowd_events topic, key by key: a key's start and
        its four moves are consecutive, so a batch of the engine holds whole instances,
        as a transaction of the pgbench baseline does."""
        p = Producer({"bootstrap.servers": self.stack.kafka_bootstrap,
                      "enable.idempotence": True, "acks": "all",
                      "partitioner": "murmur2_random", "linger.ms": 20,
                      "queue.buffering.max.messages": 1000000,
                      "queue.buffering.max.kbytes": 1048576})
        topic = self.topics["flowd_events"]
        errors = []

        def report(err, _msg):
            if err is not None:
                errors.append(str(err))
        for i in range(instances):
            key = f"k{self.tag}-{i:07d}"
            for step in range(STEPS):
                headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()),
                           ("ce_source", SOURCE.encode()),
                           ("ce_type", (START_TYPE if step == 0 else NEXT_TYPE).encode()),
                           ("ce_subject", key.encode()),
                           ("content-type", b"application/json")]
                value = b'{"i":%d,"step":%d}' % (i, step)
                produce_one(p, topic, key.encode(), value, headers, report)
        left = p.flush(300)
        if left or errors:
            raise RuntimeError(f"producing the backlog failed: {left} left, {errors[:3]}")
        self.produced += instances * STEPS
        self.instances += instances

    def engine(self, db, group, instance_id):
        return Engine(self.flowd, self.config(db, group, instance_id))

    def cleanup(self):
        self.stack.drop_db(self.template)


def produce_one(p, topic, key, value, headers, report):
    while True:
        try:
            p.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
            break
        except BufferError:
            p.poll(0.05)
    p.poll(0)


class Engine:
    """One `flowd serve --roles engine`; its log is kept beside its config."""

    def __init__(self, flowd, config):
        self.flowd = flowd
        self.config = Path(config)
        self.log = self.config.with_suffix(".log")
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            log.write(f"---- start at {time.time():.3f}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([str(self.flowd), "--config", str(self.config),
                                          "serve"], stdout=subprocess.DEVNULL, stderr=log)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=30)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def tail(self, n=30):
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-n:])


# ---- reading the outcome -----------------------------------------------------------------

def history_inserted(conn):
    """history rows inserted, from the statistics collector: cheap to poll (no scan), and
    at most about a second behind (a busy backend flushes its counters once a second)."""
    row = conn.execute("SELECT COALESCE(sum(n_tup_ins), 0) FROM pg_stat_user_tables "
                       "WHERE relname = 'history'").fetchone()
    return int(row[0])


def wait_history(conn, want, timeout, engine=None, stall=60.0):
    """Waits until `want` history rows exist (then counts them exactly). Fails on the
    timeout, when the engine died, or when nothing moved for `stall` seconds."""
    deadline = time.monotonic() + timeout
    last, moved = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = history_inserted(conn)
        if n != last:
            last, moved = n, time.monotonic()
        if n >= want and exact_history(conn) >= want:
            return
        if engine is not None and not engine.alive():
            raise RuntimeError(f"the engine exited early:\n{engine.tail()}")
        if time.monotonic() - moved > stall:
            break
        time.sleep(0.2)
    tail = engine.tail() if engine is not None else ""
    raise RuntimeError(f"{exact_history(conn)} of {want} transitions committed in time\n{tail}")


def exact_history(conn):
    return int(conn.execute("SELECT count(*) FROM history").fetchone()[0])


def commit_rate(conn, where="true", params=(), skip=1):
    """Committed transitions per second of the history rows matching `where`, from their
    transactions' start times (history.created_at = now()). One writer runs its
    transactions back to back, so the span from the start of transaction skip + 1 to the
    start of the last holds exactly the rows of the transactions in between. The first
    `skip` are left out (prepares, cold caches, and PostgreSQL's custom plans for a
    prepared statement's first five runs), and so is the last. Needs skip + 2 of them.
    Returns (rate, rows, seconds, transactions)."""
    sql = (f"WITH h AS (SELECT created_at AS t FROM history WHERE {where}), "
           "s AS (SELECT DISTINCT t FROM h), "
           "b AS (SELECT (SELECT t FROM s ORDER BY t OFFSET %s LIMIT 1) AS t0, "
           "(SELECT max(t) FROM s) AS t1, (SELECT count(*) FROM s) AS xacts) "
           "SELECT count(*) FILTER (WHERE h.t >= b.t0 AND h.t < b.t1), "
           "extract(epoch FROM b.t1 - b.t0)::float8, count(*), b.xacts "
           "FROM h, b GROUP BY b.t0, b.t1, b.xacts")
    row = conn.execute(sql, (*params, skip)).fetchone()
    if not row or not row[1] or not row[0]:
        raise RuntimeError(f"too few transactions to measure a rate: {row}")
    between, seconds, rows, xacts = row
    return between / seconds, int(rows), float(seconds), int(xacts)
