"""engine/activities against the real PostgreSQL and a local HTTP server, driven by
build/tests/activities_probe (the worker alone, for a few seconds): retries with one
idempotency key, one stored result, the outbox row of the result event, final failures,
timeouts, the local LLM provider, flowd.purge, and re-claiming a row a crash left
'running'."""

import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
import yaml

from conftest import ROOT

PROBE = ROOT / "build" / "tests" / "activities_probe"


class Server:
    """A local HTTP server answering each path from a script of (status, body, delay)
    steps; the last step repeats. Every request is recorded."""

    def __init__(self):
        self.scripts = {}
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.requests.append({"method": self.command, "path": self.path,
                                           "headers": dict(self.headers), "body": body})
                    seen = sum(1 for r in outer.requests if r["path"] == self.path)
                    script = outer.scripts.get(self.path, [(404, {}, 0)])
                    status, reply, delay = script[min(seen, len(script)) - 1]
                time.sleep(delay)
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def hits(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()


@pytest.fixture
def db(flowd_factory, stack):
    url = stack.create_database()
    r = flowd_factory(db_url=url).run("migrate")
    assert r.returncode == 0, r.stderr
    return url


def run_worker(db, seconds, *flags):
    r = subprocess.run([str(PROBE), db, str(seconds), "activities.interval=50ms", *flags],
                       capture_output=True, text=True, timeout=seconds + 30)
    out = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert r.returncode == 0, (out, r.stderr)
    return out, r.stderr


def sql(db, query, *params):
    with psycopg.connect(db, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def add_activity(db, call, args, retry=None, timeout_ms=0, tenant="default", key="k1",
                 status="pending", attempt=0, updated="now()"):
    iid = str(uuid.uuid4())
    aid = f"{iid}/3/1"
    retry = retry or {"attempts": 1, "backoff": "fixed", "delay_ms": 0, "max_delay_ms": 0}
    sql(db, "INSERT INTO activities (id, tenant, instance_id, key, entry_seq, action_ref, call, "
        "args, retry, timeout_ms, idempotency_key, status, attempt, updated_at) VALUES "
        f"(%s, %s, %s, %s, 3, 1, %s, %s, %s, %s, %s, %s, %s, {updated})",
        aid, tenant, iid, key, call, json.dumps(args), json.dumps(retry), timeout_ms,
        f"{iid}:1:3", status, attempt)
    return aid, f"{iid}:1:3"


def activity(db, aid):
    (row,) = sql(db, "SELECT status, attempt, result, error FROM activities WHERE id = %s", aid)
    return row


def outbox(db, aid):
    return sql(db, "SELECT id, tenant, aggregatetype, aggregateid, type, payload, headers "
               "FROM outbox WHERE id = %s", "activity:" + aid)


def test_activities_http_retries_with_one_key_then_stores_once(db, server):
    server.scripts["/flaky"] = [(500, {"e": 1}, 0), (500, {"e": 2}, 0), (200, {"ok": True}, 0)]
    aid, key = add_activity(db, "http", {"method": "POST", "url": server.url + "/flaky",
                                         "headers": {"X-Trace": "t1"}, "body": {"n": 1}},
                            retry={"attempts": 3, "backoff": "fixed", "delay_ms": 100,
                                   "max_delay_ms": 0})
    out, _ = run_worker(db, 3)
    hits = server.hits("/flaky")
    assert len(hits) == 3
    assert {h["headers"]["Idempotency-Key"] for h in hits} == {key}
    assert all(json.loads(h["body"]) == {"n": 1} for h in hits)
    assert hits[0]["headers"]["Content-Type"] == "application/json"
    assert hits[0]["headers"]["X-Trace"] == "t1"
    status, attempt, result, error = activity(db, aid)
    assert (status, attempt) == ("completed", 3)
    assert result == {"status": 200, "headers": {"content-type": "application/json"},
                      "body": {"ok": True}}
    rows = outbox(db, aid)
    assert len(rows) == 1
    oid, tenant, topic, subject, typ, payload, headers = rows[0]
    assert (oid, tenant, topic, subject, typ) == (
        "activity:" + aid, "default", "flowd.internal", "k1", "flowd.activity.completed")
    assert payload == {"activity": aid, "result": result}
    assert headers["ce_id"] == "activity:" + aid
    assert headers["ce_type"] == "flowd.activity.completed"
    assert headers["ce_subject"] == "k1" and headers["ce_tenant"] == "default"
    assert headers["ce_source"] == "flowd" and headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/json" and headers["ce_time"]
    assert out[-1]["event"] == "stopped" and out[-1]["ms"] < 3000


def test_activities_http_400_fails_at_once(db, server):
    server.scripts["/bad"] = [(400, {"error": "no"}, 0)]
    aid, _ = add_activity(db, "http", {"method": "GET", "url": server.url + "/bad"},
                          retry={"attempts": 3, "backoff": "fixed", "delay_ms": 50,
                                 "max_delay_ms": 0})
    run_worker(db, 2)
    assert len(server.hits("/bad")) == 1
    status, attempt, result, error = activity(db, aid)
    assert (status, attempt, result) == ("failed", 1, None)
    assert error["type"] == "http.status"
    (row,) = outbox(db, aid)
    assert row[4] == "flowd.activity.failed"
    assert row[5] == {"activity": aid, "error": "http.status", "message": "HTTP status 400"}


def test_activities_http_timeout_after_attempts(db, server):
    server.scripts["/slow"] = [(200, {}, 2)]
    aid, _ = add_activity(db, "http", {"method": "GET", "url": server.url + "/slow"},
                          retry={"attempts": 2, "backoff": "fixed", "delay_ms": 50,
                                 "max_delay_ms": 0}, timeout_ms=300)
    run_worker(db, 3)
    assert len(server.hits("/slow")) == 2
    status, attempt, _, error = activity(db, aid)
    assert (status, attempt, error["type"]) == ("failed", 2, "http.timeout")
    (row,) = outbox(db, aid)
    assert row[5]["error"] == "http.timeout"


def test_activities_connect_failure_is_http_connect(db, server):
    aid, _ = add_activity(db, "http", {"method": "GET", "url": "http://127.0.0.1:9/"})
    run_worker(db, 2)
    status, _, _, error = activity(db, aid)
    assert (status, error["type"]) == ("failed", "http.connect")


def test_activities_llm_local_completes_with_usage(db):
    args = {"agent": "beauty_salon", "prompt": "I want a haircut tomorrow"}
    aid, _ = add_activity(db, "llm", args, key="conv-1")
    run_worker(db, 2)
    status, attempt, result, _ = activity(db, aid)
    assert (status, attempt) == ("completed", 1)
    assert result.startswith("[beauty_salon] ")
    (row,) = outbox(db, aid)
    assert row[3] == "conv-1"
    usage = row[5]["usage"]
    # the words of the prompt and of the agent's system prompt, which goes first
    profile = yaml.safe_load((ROOT / "workflows" / "agents" / "beauty_salon.yaml").read_text())
    assert usage["tokens_in"] == 5 + len(profile["system_prompt"].split()), usage
    assert usage["tokens_out"] == len(result.split())
    assert usage["provider"] == "local" and usage["cost"] == 0
    assert row[5]["result"] == result


def test_activities_llm_local_json(db):
    aid, _ = add_activity(db, "llm", {"json": True, "messages": [
        {"role": "system", "content": "classify"}, {"role": "user", "content": "a pizza please"}]})
    run_worker(db, 2)
    status, _, result, _ = activity(db, aid)
    assert status == "completed"
    assert result["intent"] == "place_order" and result["agent"] == "restaurant_food"


def seed_old_rows(db):
    old = "now() - interval '10 days'"
    done, running = str(uuid.uuid4()), str(uuid.uuid4())
    # as the store writes them: finished_at is set once, when the instance finishes
    for iid, st, finished in ((done, "completed", old), (running, "running", "NULL")):
        sql(db, "INSERT INTO instances (id, tenant, workflow, version, key, state, status, "
            f"machine, updated_at, finished_at) VALUES (%s, 'default', 'w', 1, %s, 's', %s, "
            f"'{{}}', {old}, {finished})", iid, "key-" + st, st)
        sql(db, "INSERT INTO history (instance_id, seq, tenant, event_type) VALUES "
            "(%s, 1, 'default', 'e')", iid)
    sql(db, f"INSERT INTO inbox (tenant, source, id, processed_at) VALUES "
        f"('default', 's', 'old', {old}), ('default', 's', 'new', now())")
    sql(db, "INSERT INTO outbox (id, tenant, aggregatetype, aggregateid, type, published_at, "
        f"created_at) VALUES ('o1', 'default', 't', 'k', 'x', {old}, {old}), "
        f"('o2', 'default', 't', 'k', 'x', NULL, {old})")
    sql(db, "INSERT INTO dead_letters (tenant, topic, reason, created_at) VALUES "
        f"('default', 't', 'r', {old}), ('default', 't', 'r', now())")
    for conv in ("idle-conv", "key-running"):  # the second one has a running instance
        sql(db, "INSERT INTO messages (tenant, conversation, seq, role, content, created_at) "
            f"VALUES ('default', %s, 1, 'user', 'hi', {old})", conv)
    return done, running


def test_activities_purge_deletes_old_rows_and_counts(db):
    done, running = seed_old_rows(db)
    aid, _ = add_activity(db, "flowd.purge", {
        "conversations_idle_for": "7d", "instances_finished_for": "7d",
        "inbox_older_than": "7d", "outbox_published_older_than": "7d",
        "dead_letters_older_than": "7d"}, tenant="system", key="cleanup")
    run_worker(db, 2)
    status, _, result, error = activity(db, aid)
    assert status == "completed", error
    assert result == {"conversations": 1, "instances": 1, "inbox": 1, "outbox": 1,
                      "dead_letters": 1}
    assert [r[0] for r in sql(db, "SELECT id::text FROM instances")] == [running]
    assert [r[0] for r in sql(db, "SELECT instance_id::text FROM history")] == [running]
    assert sql(db, "SELECT id FROM inbox") == [("new",)]
    assert sql(db, "SELECT id FROM outbox WHERE id IN ('o1', 'o2')") == [("o2",)]
    assert sql(db, "SELECT count(*) FROM dead_letters") == [(1,)]
    assert sql(db, "SELECT conversation FROM messages") == [("key-running",)]


def test_activities_purge_of_a_tenant_keeps_other_tenants(db):
    sql(db, "INSERT INTO tenants (id, name) VALUES ('other', 'other') ON CONFLICT DO NOTHING")
    sql(db, "INSERT INTO inbox (tenant, source, id, processed_at) VALUES "
        "('default', 's', 'a', now() - interval '2 days'), "
        "('other', 's', 'b', now() - interval '2 days')")
    aid, _ = add_activity(db, "flowd.purge", {"inbox_older_than": "1d"}, tenant="other")
    run_worker(db, 2)
    assert activity(db, aid)[2]["inbox"] == 1
    assert sql(db, "SELECT tenant FROM inbox") == [("default",)]


def test_activities_purge_rejects_bad_durations(db):
    aid, _ = add_activity(db, "flowd.purge", {"inbox_older_than": "soon"})
    run_worker(db, 2)
    status, _, _, error = activity(db, aid)
    assert (status, error["type"]) == ("failed", "purge.invalid")


def test_activities_reclaims_a_row_a_crash_left_running(db):
    aid, _ = add_activity(db, "llm", {"prompt": "hello"}, status="running", attempt=1,
                          updated="now() - interval '1 hour'")
    fresh, _ = add_activity(db, "llm", {"prompt": "hello"}, status="running", attempt=1)
    run_worker(db, 2)
    assert activity(db, aid)[:2] == ("completed", 2)
    assert activity(db, fresh)[:2] == ("running", 1)  # maybe still in flight elsewhere
    assert len(outbox(db, aid)) == 1


def test_activities_finished_rows_are_never_rerun(db, server):
    server.scripts["/once"] = [(200, {}, 0)]
    aid, _ = add_activity(db, "http", {"method": "GET", "url": server.url + "/once"})
    run_worker(db, 1)
    run_worker(db, 1)
    assert len(server.hits("/once")) == 1
    assert len(outbox(db, aid)) == 1


def test_activities_stop_leaves_in_flight_calls_running(db, server):
    server.scripts["/hang"] = [(200, {}, 10)]
    aid, _ = add_activity(db, "http", {"method": "GET", "url": server.url + "/hang"},
                          timeout_ms=20000)
    out, _ = run_worker(db, 1)
    assert out[-1]["event"] == "stopped" and out[-1]["ms"] < 4000
    assert activity(db, aid)[:2] == ("running", 1)
    assert outbox(db, aid) == []
