"""engine/timers against the real PostgreSQL, driven by build/tests/timers_probe (the poller
alone, as `flowd serve --roles=timers` runs it): due timers fire exactly once with their
outbox row, a timer 2 s ahead fires after about 2 s and not before (also across a kill -9
of the poller), two pollers never double-fire, `every` and cron schedules tick and move
next_at on, and an unreachable Postgres is logged once and survived."""

import json
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import ROOT, free_port, wait_for

PROBE = ROOT / "build" / "tests" / "timers_probe"
HEADER_KEYS = {"ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "ce_subject",
               "ce_tenant", "content-type"}


class Poller:
    """One timers_probe process; its JSON log lines (stderr) are kept for assertions."""

    def __init__(self, tmp_path, config):
        self.dir = tmp_path / f"poller-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self.config = self.dir / "flowd.yaml"
        self.config.write_text(config)
        self.stderr_path = self.dir / "stderr.log"
        self.proc = None

    def start(self):
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(PROBE), str(self.config), "0"], stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        first = json.loads(self.proc.stdout.readline() or '{"event": "exited"}')
        assert first["event"] == "started", (first, self.log_text())
        return self

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=15)
        rest = self.proc.stdout.read()
        self.stderr.close()
        return code, rest

    def log_events(self):
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]

    def log_text(self):
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def db(flowd_factory, stack):
    url = stack.create_database()
    r = flowd_factory(db_url=url).run("migrate")
    assert r.returncode == 0, r.stderr
    return url


@pytest.fixture
def pollers(tmp_path):
    made = []

    def make(db_url, batch_size=500, interval="100ms"):
        p = Poller(tmp_path, f"db:\n  url: \"{db_url}\"\n  connect_timeout: 1s\n"
                             f"timers:\n  interval: {interval}\n  batch_size: {batch_size}\n")
        made.append(p)
        return p

    yield make
    for p in made:
        if p.proc and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def sql(db, query, *params):
    with psycopg.connect(db) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def add_timers(db, count, due_in_s, key="k"):
    """Inserts `count` timers due `due_in_s` from the database's now; returns their ids."""
    ids = []
    with psycopg.connect(db) as conn:
        for i in range(count):
            iid = str(uuid.uuid4())
            tid = f"{iid}/1/s{i % 3}"
            conn.execute("INSERT INTO timers (id, tenant, instance_id, key, workflow, transition,"
                         " entry_seq, due_at) VALUES (%s, 'default', %s, %s, 'probe', 't', 1,"
                         " now() + %s * interval '1 second')",
                         (tid, iid, f"{key}-{i}", due_in_s))
            ids.append(tid)
    return ids


def outbox(db, prefix):
    return sql(db, "SELECT id, tenant, aggregatetype, aggregateid, type, payload, headers, "
               "created_at FROM outbox WHERE id LIKE %s ORDER BY seq", prefix + "%")


def fired(db, ids):
    return sql(db, "SELECT count(*) FROM timers WHERE id = ANY(%s) AND fired_at IS NOT NULL",
               ids)[0][0]


def test_timers_due_timers_fire_once_with_their_outbox_row(db, pollers):
    ids = add_timers(db, 3, -5)
    sql(db, "UPDATE timers SET tenant = 'acme' WHERE id = %s", ids[0])
    p = pollers(db).start()
    wait_for(lambda: fired(db, ids) == 3, 10, what="3 fired timers")
    time.sleep(0.5)  # more passes: nothing fires twice
    code, rest = p.stop()
    assert code == 0 and '"stopped"' in rest, p.log_text()
    rows = outbox(db, "timer:")
    assert sorted(r[0] for r in rows) == sorted(f"timer:{i}" for i in ids)
    keys = dict(sql(db, "SELECT id, key FROM timers"))
    for oid, tenant, topic, subject, etype, payload, headers, _ in rows:
        tid = oid[len("timer:"):]
        assert (topic, subject, etype) == ("flowd.internal", keys[tid], "flowd.timer.fired")
        assert tenant == ("acme" if tid == ids[0] else "default")
        assert payload == {"timer": tid}
        assert set(headers) == HEADER_KEYS
        assert headers["ce_id"] == oid and headers["ce_type"] == "flowd.timer.fired"
        assert headers["ce_source"] == "flowd" and headers["ce_specversion"] == "1.0"
        assert headers["ce_subject"] == keys[tid] and headers["ce_tenant"] == tenant
        assert headers["content-type"] == "application/json"
        assert datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00"))


def test_timers_a_timer_two_seconds_ahead_fires_after_about_two_seconds(db, pollers):
    ids = add_timers(db, 1, 2)
    pollers(db).start()
    time.sleep(1.2)
    assert fired(db, ids) == 0, "fired early"
    wait_for(lambda: fired(db, ids) == 1, 10, interval=0.05, what="the timer to fire")
    (due, at), = sql(db, "SELECT due_at, fired_at FROM timers")
    assert timedelta(0) <= at - due < timedelta(seconds=1)
    assert len(outbox(db, "timer:")) == 1


def test_timers_fire_once_across_a_poller_kill(db, pollers):
    ids = add_timers(db, 1, 2)
    p = pollers(db).start()
    time.sleep(0.5)
    p.proc.kill()  # kill -9 before it is due
    p.proc.wait()
    assert fired(db, ids) == 0
    pollers(db).start()
    wait_for(lambda: fired(db, ids) == 1, 10, interval=0.05, what="the timer to fire")
    time.sleep(0.5)
    (due, at), = sql(db, "SELECT due_at, fired_at FROM timers")
    assert timedelta(0) <= at - due < timedelta(seconds=1)
    assert len(outbox(db, "timer:")) == 1


def fired_by(poller):
    """How many timers this poller fired, from its debug lines."""
    return sum(e["timers"] for e in poller.log_events() if e["event"] == "timers.fired")


def test_timers_two_pollers_share_the_work_and_never_double_fire(db, pollers):
    # both poll before the rows exist, and small batches make them meet on the same rows
    a = pollers(db, batch_size=2, interval="10ms").start()
    b = pollers(db, batch_size=2, interval="10ms").start()
    ids = add_timers(db, 200, -1)
    wait_for(lambda: fired(db, ids) == 200, 30, what="200 fired timers")
    time.sleep(0.5)
    assert a.stop()[0] == 0 and b.stop()[0] == 0
    rows = sql(db, "SELECT id, count(*) FROM outbox GROUP BY id")
    assert len(rows) == 200 and all(n == 1 for _, n in rows)
    assert {r[0] for r in rows} == {f"timer:{i}" for i in ids}
    assert fired_by(a) + fired_by(b) == 200
    assert fired_by(a) > 0 and fired_by(b) > 0


def test_timers_a_full_batch_is_followed_at_once_by_the_next(db, pollers):
    ids = add_timers(db, 50, -1)
    p = pollers(db, batch_size=5, interval="10s").start()
    # ten batches, yet well within one interval
    wait_for(lambda: fired(db, ids) == 50, 5, what="50 fired timers")
    p.stop()
    assert len(outbox(db, "timer:")) == 50


def add_schedule(db, workflow, cron=None, every_ms=None, next_in_s=0.0, tenant="default"):
    sql(db, "INSERT INTO schedules (tenant, workflow, cron, every_ms, next_at) "
        "VALUES (%s, %s, %s, %s, date_trunc('milliseconds', now() + %s * interval '1 second'))",
        tenant, workflow, cron, every_ms, next_in_s)


def test_timers_every_schedule_ticks_every_two_seconds(db, pollers):
    add_schedule(db, "report", every_ms=2000)
    (start,), = sql(db, "SELECT next_at FROM schedules")
    pollers(db).start()
    wait_for(lambda: len(outbox(db, "schedule:")) >= 3, 10, what="three ticks")
    ticks = outbox(db, "schedule:")
    ids = [t[0] for t in ticks]
    assert len(set(ids)) == len(ids)
    dues = [int(i.rsplit("/", 1)[1]) for i in ids]
    start_ms = int(start.timestamp() * 1000)
    assert dues[:3] == [start_ms, start_ms + 2000, start_ms + 4000]
    gaps = [(b[7] - a[7]).total_seconds() for a, b in zip(ticks, ticks[1:])]
    assert all(1.5 < g < 2.6 for g in gaps[:2]), gaps
    oid, tenant, topic, subject, etype, payload, headers, _ = ticks[0]
    assert oid == f"schedule:default/report/{start_ms}"
    assert (tenant, topic, subject, etype) == ("default", "flowd.internal", "report",
                                               "flowd.schedule.tick")
    assert payload["workflow"] == "report"
    assert datetime.fromisoformat(payload["due_at"].replace("Z", "+00:00")) == start
    assert set(headers) == HEADER_KEYS and headers["ce_subject"] == "report"
    assert headers["ce_type"] == "flowd.schedule.tick" and headers["ce_id"] == oid


def test_timers_every_schedule_fires_once_for_a_backlog(db, pollers):
    add_schedule(db, "catchup", every_ms=2000, next_in_s=-11)
    (start,), = sql(db, "SELECT next_at FROM schedules")
    p = pollers(db, interval="1s").start()
    wait_for(lambda: outbox(db, "schedule:"), 10, what="a tick")
    p.stop()
    ticks = outbox(db, "schedule:")
    assert len(ticks) == 1
    (next_at,), = sql(db, "SELECT next_at FROM schedules")
    created = ticks[0][7]
    # the next multiple of the period strictly after the pass's now
    assert (next_at - start).total_seconds() % 2 == 0
    assert created < next_at <= created + timedelta(seconds=2)


def next_five_minutes(t):
    """The first */5 minute strictly after t."""
    t = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return t + timedelta(minutes=(-t.minute) % 5)


def test_timers_cron_schedule_moves_to_the_next_match(db, pollers):
    add_schedule(db, "nightly", cron="*/5 * * * *", next_in_s=-60)
    p = pollers(db).start()
    wait_for(lambda: outbox(db, "schedule:"), 10, what="a tick")
    time.sleep(0.5)
    p.stop()
    ticks = outbox(db, "schedule:")
    assert len(ticks) == 1
    (next_at,), = sql(db, "SELECT next_at FROM schedules")
    # outbox.created_at is now() of the poller's transaction, the time it computed from
    assert next_at == next_five_minutes(ticks[0][7])


def test_timers_a_cron_that_never_matches_again_parks_its_schedule(db, pollers):
    add_schedule(db, "never", cron="0 0 30 2 *", next_in_s=-1)
    p = pollers(db).start()
    wait_for(lambda: outbox(db, "schedule:"), 10, what="the due tick")
    time.sleep(0.5)
    p.stop()
    assert len(outbox(db, "schedule:")) == 1
    assert sql(db, "SELECT next_at = 'infinity' FROM schedules") == [(True,)]
    parked = [e for e in p.log_events() if e["event"] == "timers.schedule_parked"]
    assert len(parked) == 1 and parked[0]["workflow"] == "never"


def test_timers_unreachable_postgres_is_logged_once_and_survived(pollers):
    url = f"postgresql://flowd:x@127.0.0.1:{free_port()}/flowd"
    p = pollers(url, interval="10ms").start()
    time.sleep(2)
    assert p.proc.poll() is None
    code, rest = p.stop()
    assert code == 0 and '"stopped"' in rest
    down = [e for e in p.log_events() if e["event"] == "timers.unavailable"]
    assert len(down) == 1 and down[0]["rc"] == "FL_EUNAVAIL", p.log_text()


def test_timers_a_timer_due_while_postgres_is_down_fires_once_it_is_back(db, pollers, stack):
    ids = add_timers(db, 1, 1)
    p = pollers(db).start()
    stack.script("pg.sh", "stop")
    try:
        time.sleep(3)  # the timer falls due during the outage
        assert p.proc.poll() is None, p.log_text()
    finally:
        stack.script("pg.sh", "start")
    wait_for(lambda: fired(db, ids) == 1, 30, what="the late timer to fire")
    time.sleep(0.5)
    assert p.stop()[0] == 0
    assert len(outbox(db, "timer:")) == 1
    events = [e["event"] for e in p.log_events()]
    assert events.count("timers.unavailable") == 1, p.log_text()
    assert events.count("timers.recovered") == 1
