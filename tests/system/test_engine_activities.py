"""Activities: an http call against a local server answering 500, 500, then 200, with
retry {attempts: 3, backoff: fixed, delay: 100ms}: three requests carrying the same
Idempotency-Key, one stored result, and the workflow continues (`done:`)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import wait_for
from engine_harness import make_env, producer  # noqa: F401


class Recorder(BaseHTTPRequestHandler):
    answers = []  # set per server
    seen = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append({"at": time.monotonic(), "path": self.path,
                                 "key": self.headers.get("Idempotency-Key"),
                                 "body": body.decode(errors="replace")})
        status = self.server.answers[min(len(self.server.seen), len(self.server.answers)) - 1]
        out = json.dumps({"ok": status == 200, "attempt": len(self.server.seen)}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    srv.seen = []
    srv.answers = [500, 500, 200]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_engine_http_activity_retries_with_one_idempotency_key(make_env, producer, server):
    env = make_env(["http_call"])
    env.start()
    key = f"hc-{env.tag}"
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    producer.event(env.topics["flowd_events"], "http_call.start", key, {"url": url},
                   id_=f"{key}:start")
    producer.flush()
    try:
        wait_for(lambda: env.q("SELECT state, status FROM instances WHERE workflow = "
                               "'http_call'") == [("done", "completed")], 30,
                 what="the workflow to continue to done")
    except AssertionError as e:
        raise AssertionError(f"{e}\nrequests: {server.seen}\ninstances: "
                             f"{env.instances('http_call')}\nactivities: "
                             f"{env.q('SELECT * FROM activities')}\n{env.logs()}") from None
    time.sleep(1.0)  # no late fourth attempt
    iid, _, _, _, _, ctx, _ = env.instances("http_call")[0]

    seen = server.seen
    assert len(seen) == 3, seen
    assert all(s["path"] == "/hook" for s in seen)
    assert json.loads(seen[0]["body"]) == {"hello": key}
    keys = {s["key"] for s in seen}
    assert len(keys) == 1 and None not in keys, seen
    gaps = [b["at"] - a["at"] for a, b in zip(seen, seen[1:])]
    assert all(g >= 0.09 for g in gaps), gaps  # fixed 100 ms backoff

    acts = env.q("SELECT id, status, attempt, idempotency_key, result, action_ref, entry_seq "
                 "FROM activities WHERE instance_id = %s", iid)
    assert len(acts) == 1, acts
    aid, status, attempt, ikey, result, action_ref, entry_seq = acts[0]
    assert (status, attempt, action_ref, entry_seq) == ("completed", 3, 1, 1), acts
    assert ikey == f"{iid}:1:1" and keys == {ikey}, (ikey, keys)
    assert result["status"] == 200 and result["body"] == {"ok": True, "attempt": 3}, result
    assert ctx["response"] == result, ctx
    assert env.q1("SELECT count(*) FROM outbox WHERE type = 'flowd.activity.completed' "
                  "AND id = %s", f"activity:{aid}") == 1
    assert env.q1("SELECT count(*) FROM outbox WHERE type = 'flowd.activity.failed'") == 0
    hist = env.history(iid)
    assert [h[2:5] for h in hist] == [("http_call.start", None, "calling"),
                                      ("flowd.activity.completed", "calling", "done")], hist
