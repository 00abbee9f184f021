"""engine/store against the real PostgreSQL, driven by build/tests/store_probe: one
transaction per batch, inbox dedupe, row-version rollback of the whole batch, NOTIFY on
commit only, dead letters with their outbox row, definitions, and a throughput figure."""

import json
import subprocess
import threading

import psycopg
import pytest

from conftest import ROOT

PROBE = ROOT / "build" / "tests" / "store_probe"
TABLES = ["instances", "history", "inbox", "outbox", "timers", "activities", "messages",
          "dead_letters"]


def probe(db, *args, timeout=120):
    r = subprocess.run([str(PROBE), db, *args], capture_output=True, text=True,
                       timeout=timeout)
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return r.returncode, lines


@pytest.fixture
def db(flowd_factory, stack):
    url = stack.create_database()
    r = flowd_factory(db_url=url).run("migrate")
    assert r.returncode == 0, r.stderr
    return url


def rows(db, sql, *params):
    with psycopg.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def counts(db):
    with psycopg.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_store_migration_002_is_applied(db):
    names = [r[0] for r in rows(db, "SELECT name FROM schema_migrations ORDER BY version")]
    assert names[:2] == ["001_init", "002_engine"]


def test_store_start_batch_writes_every_row(db):
    code, out = probe(db, "start", "k1", "e1")
    assert code == 0, out
    iid = out[0]["instance_id"]
    inst = rows(db, "SELECT tenant, workflow, key, state, status, row_version, machine->>'seq' "
                "FROM instances WHERE id = %s", iid)
    assert inst == [("default", "probe", "k1", "waiting", "running", 1, "1")]
    assert rows(db, "SELECT seq, event_id, event_type, from_state, to_state FROM history "
                "WHERE instance_id = %s", iid) == [(1, "e1", "probe.start", None, "waiting")]
    assert rows(db, "SELECT tenant, source, id FROM inbox") == [("default", "store-probe", "e1")]
    box = rows(db, "SELECT aggregatetype, aggregateid, type, payload, headers FROM outbox "
               "ORDER BY seq")
    assert [(b[0], b[1], b[2]) for b in box] == [
        ("workflow.events", "k1", "flowd.instance.started"),
        ("flowd.events", "k1", "probe.started")]
    assert box[1][3] == {"n": 1}
    for b in box:
        h = b[4]
        assert h["ce_tenant"] == "default" and h["ce_subject"] == "k1"
        assert h["ce_type"] == b[2] and h["ce_specversion"] == "1.0" and h["ce_id"]
    timers = rows(db, "SELECT id, instance_id::text, entry_seq, fired_at FROM timers")
    assert timers == [(f"{iid}/1/s1", iid, 1, None)]
    acts = rows(db, "SELECT id, call, status, idempotency_key, \"into\" FROM activities")
    assert acts == [(f"{iid}/1/2", "http", "pending", f"{iid}:2:1", "result")]
    assert rows(db, "SELECT conversation, seq, role, content FROM messages") == [
        ("k1", 1, "assistant", "hello")]


def test_store_step_updates_row_version_and_cancels_timers(db):
    code, out = probe(db, "start", "k1", "e1")
    iid = out[0]["instance_id"]
    code, out = probe(db, "step", "k1", "go1", "probe.go")
    assert code == 0 and out[0]["event"] == "committed", out
    assert rows(db, "SELECT state, status, row_version FROM instances WHERE id = %s", iid) == [
        ("done", "completed", 2)]
    assert rows(db, "SELECT count(*) FROM timers") == [(0,)]
    types = [r[0] for r in rows(db, "SELECT type FROM outbox ORDER BY seq")]
    assert types[-2:] == ["flowd.instance.transitioned", "flowd.instance.completed"]


def test_store_replayed_event_is_reported_as_seen(db):
    assert probe(db, "start", "k1", "e1")[0] == 0
    before = counts(db)
    code, out = probe(db, "step", "k1", "e1", "probe.start")
    assert code == 0 and out == [{"event": "seen", "id": "e1"}]
    # a second trigger for a key with a running instance of the workflow is refused whole
    code, out = probe(db, "start", "k1", "e2")
    assert code == 1 and out[0]["rc"] == "FL_ECONFLICT", out
    assert counts(db) == before


def test_store_stale_row_version_rolls_back_the_whole_batch(db):
    assert probe(db, "start", "k1", "e1")[0] == 0
    before = counts(db)
    code, out = probe(db, "stale", "k1")
    assert code == 1 and out[0]["rc"] == "FL_ECONFLICT", out
    assert "stale row version" in out[0]["error"]
    assert counts(db) == before
    assert rows(db, "SELECT count(*) FROM instances WHERE key = 'k1-other'") == [(0,)]
    assert rows(db, "SELECT row_version FROM instances WHERE key = 'k1'") == [(1,)]


def listen(db, seconds):
    """Collects flowd_changes notifications for `seconds` on a LISTENing connection; each
    item is (payload, whether the instance row was visible to a fresh connection)."""
    got = []
    ready = threading.Event()

    def run():
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("LISTEN flowd_changes")
            ready.set()
            for n in conn.notifies(timeout=seconds):
                p = json.loads(n.payload)
                seen = rows(db, "SELECT count(*) FROM instances WHERE id = %s",
                            p["instance_id"])[0][0]
                got.append((p, seen == 1))

    t = threading.Thread(target=run)
    t.start()
    ready.wait(10)
    return t, got


def test_store_notify_arrives_after_commit_only(db):
    t, got = listen(db, 3)
    code, out = probe(db, "start", "k1", "e1")
    assert code == 0
    code, bad = probe(db, "stale", "k1")  # rolled back: must notify nothing
    assert code == 1
    t.join()
    assert len(got) == 1, got
    payload, visible = got[0]
    assert visible
    assert payload == {"tenant": "default", "instance_id": out[0]["instance_id"],
                       "workflow": "probe", "key": "k1", "seq": 1}


def test_store_dead_letter_and_its_outbox_row_together(db):
    code, out = probe(db, "dead")
    assert code == 0, out
    dl = rows(db, "SELECT id::text, tenant, topic, partition, kafka_offset, key, payload, "
              "reason FROM dead_letters")
    assert len(dl) == 1
    dl_id = dl[0][0]
    assert dl[0][1:] == ("default", "flowd.events", 3, 42, "dl-key", b"{\x00\xffx",
                         "invalid_json")
    box = rows(db, "SELECT id, aggregatetype, aggregateid, type, payload, headers FROM outbox")
    assert len(box) == 1
    assert box[0][:4] == (f"dead:{dl_id}", "dead.letter.queue", "dl-key", "flowd.dead_letter")
    assert box[0][4]["reason"] == "invalid_json" and box[0][4]["payload_base64"] == "ewD/eA=="
    assert box[0][5]["ce_tenant"] == "default"


def test_store_definitions_are_idempotent_and_conflict_on_change(db):
    code, out = probe(db, "defs")
    assert code == 0, out
    saves = [(o["tenant"], o["checksum"], o["rc"]) for o in out if o["event"] == "saved"]
    assert saves == [("default", "c1", "FL_OK"), ("default", "c1", "FL_OK"),
                     ("default", "c2", "FL_ECONFLICT"), ("system", "s1", "FL_OK")]
    listed = [(o["tenant"], o["shipped"]) for o in out if o["event"] == "definition"]
    assert listed == [("default", False), ("system", True)]
    assert rows(db, "SELECT checksum FROM definitions WHERE tenant = 'default'") == [("c1",)]


def test_store_throughput_by_batch_size(db):
    rates = {}
    for batch, total in [(1, 500), (10, 2000), (100, 5000)]:
        code, out = probe(db, "bench", str(batch), str(total), timeout=300)
        assert code == 0, out
        rates[batch] = round(out[0]["steps_per_s"])
    print(f"store throughput (steps/s by batch size): {rates}")
    assert rows(db, "SELECT count(*) FROM instances")[0][0] == 7500
    assert min(rates.values()) > 50
