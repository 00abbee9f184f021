"""S5 recovery: the engine drains a backlog, is killed with SIGKILL part-way, and is started
again at once with the same consumer group and engine.instance_id (static membership, so
the broker hands its partitions straight back). Measured per run:

- time to first commit: from the restart (process spawn) to the first NOTIFY flowd_changes
  sent by a new backend; the engine sends it in the batch's transaction, so it arrives
  at that commit. Backends of the killed process are told apart by their PID (a backend
  may still commit the pipeline the dead process had sent in full);
- drain rate after the restart / steady-state rate before the kill (the baseline, from the
  same run), both from history rows as in S2;
- events redelivered: rows committed before the restart minus the offsets the killed
  process had committed to Kafka (librdkafka auto-commits stored offsets every second,
  core/kafka_props.c), all of which the restarted engine reads again and skips through
  the inbox.

Both rates are of backlog drains in full batches; the baseline is the drain's first 40 %,
the measured rate its last 60 % (docs/benchmarks.md, S5, says why that split is kept)."""

import time
import uuid
from datetime import datetime, timezone

from confluent_kafka import Consumer, TopicPartition

from engineload import STEPS, commit_rate, exact_history, wait_history


def committed_offsets(bootstrap, group, topic):
    """Sum of the group's committed offsets on topic (OffsetFetch; joins no group)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = c.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return sum(tp.offset for tp in tps if tp.offset >= 0)
    finally:
        c.close()


def backend_pids(conn):
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()").fetchall()
    return {r[0] for r in rows}


class S5:
    def __init__(self, stack, setup, instances, kill_fraction=0.4):
        self.stack = stack
        self.setup = setup
        self.instances = instances
        self.kill_fraction = kill_fraction

    def prepare(self):
        self.setup.prepare()
        self.setup.produce(self.instances)
        return self

    def events(self):
        return self.instances * STEPS

    def wait_fraction(self, conn, engine):
        """Waits for kill_fraction of the backlog, counting history rows every 0.1 s (the
        statistics are up to a second late, which a small backlog can drain in)."""
        want = int(self.events() * self.kill_fraction)
        deadline = time.monotonic() + 120 + self.events() / 500
        while exact_history(conn) < want:
            if not engine.alive():
                raise RuntimeError(f"the engine exited early:\n{engine.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the engine did not reach {want} transitions\n"
                                   f"{engine.tail()}")
            time.sleep(0.1)

    def first_commit(self, listen, old_pids, engine):
        """Restarts the engine; returns (seconds to the first commit, restart time)."""
        restart_at = datetime.now(timezone.utc)
        t0 = time.monotonic()
        engine.start()
        try:
            for note in listen.notifies(timeout=60):
                if note.pid not in old_pids:
                    return time.monotonic() - t0, restart_at
        finally:
            listen.execute("UNLISTEN *")
        raise RuntimeError(f"no commit within 60 s of the restart\n{engine.tail()}")

    def run(self):
        stack, db = self.stack, self.stack.create_db(self.setup.template)
        run = uuid.uuid4().hex[:8]
        group = f"s5-{run}"
        engine = self.setup.engine(db, group, f"s5-{run}")
        try:
            with stack.connect(db) as conn, stack.connect(db) as listen:
                engine.start()
                self.wait_fraction(conn, engine)
                # the killed process's backends, while they all still exist: one of them
                # may yet commit the pipeline it had received in full
                old = backend_pids(conn) - {listen.info.backend_pid}
                engine.kill9()
                listen.execute("LISTEN flowd_changes")
                kafka_committed = committed_offsets(stack.kafka_bootstrap, group,
                                                    self.setup.topics["flowd_events"])
                ttfc, restart_at = self.first_commit(listen, old, engine)
                wait_history(conn, self.events(), 120 + self.events() / 500, engine)
                engine.kill9()  # everything is committed: no need to wait for Kafka
                return self.result(conn, ttfc, restart_at, kafka_committed)
        finally:
            engine.kill9()
            stack.drop_db(db)

    def result(self, conn, ttfc, restart_at, kafka_committed):
        before, rows_before, _, xb = commit_rate(conn, "created_at < %s", (restart_at,))
        after, rows_after, _, xa = commit_rate(conn, "created_at >= %s", (restart_at,))
        return {"system": {"time_to_first_commit_s": ttfc, "drain_rate_after_restart": after,
                           "transitions_after_restart": rows_after, "transactions": xa},
                "baseline": {"steady_state_rate": before, "transitions_before_kill": rows_before,
                             "transactions": xb},
                "events_redelivered": max(0, rows_before - kafka_committed),
                "ratio": after / before}

    def describe(self):
        return {"events": self.events(), "instances": self.instances, "steps": STEPS,
                "kill_at_fraction": self.kill_fraction, "restart": "immediately, same "
                "engine.group and engine.instance_id (static membership)",
                "baseline": "the steady-state drain rate before the kill, same run"}
