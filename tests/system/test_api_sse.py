"""Server-Sent Events of a conversation (issue 5): events after a message, exact resume
with Last-Event-ID, heartbeats, the streamed reply of POST .../messages, and the
api.max_streams cap."""

import queue
import threading
import time

import pytest
import requests

from conv_harness import BASE, SSE, assert_problem, open_sse, start_api

EXTRA = "api:\n  create_wait: 15s\n  sse_heartbeat: 300ms\n  max_streams: 16\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory, stack):
    a = start_api(stack, tmp_path_factory.mktemp("sse"), EXTRA)
    yield a
    a.flowd.stop()


class Reader:
    """Reads an SSE response on a thread, so tests can wait with a timeout."""

    def __init__(self, resp):
        self.resp = resp
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            for ev in SSE(self.resp):
                self.q.put(ev)
        except (requests.RequestException, ValueError, AttributeError):
            pass
        self.q.put(None)

    def events_until(self, pred, timeout=20):
        """Events (not comments) up to and including the first that satisfies pred."""
        out, deadline = [], time.monotonic() + timeout
        while True:
            ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            assert ev is not None, f"stream ended; got {out}"
            if "event" not in ev:
                continue
            out.append(ev)
            if pred(ev):
                return out

    def quiet_for(self, seconds):
        """Events (not comments) that arrive within `seconds`."""
        out, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if ev is not None and "event" in ev:
                out.append(ev)
        return out

    def close(self):
        self.resp.close()


def events_path(cid):
    return f"{BASE}/conversations/{cid}/events"


def assistant_done(ev):
    return ev["event"] == "message.completed" and ev["data"]["role"] == "assistant"


def test_events_then_exact_resume_with_last_event_id(api):
    cid = api.create()
    resp = open_sse(api, events_path(cid))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Accel-Buffering"] == "no" and resp.headers["X-Request-Id"]
    assert "Content-Length" not in resp.headers
    rd = Reader(resp)
    assert api.post(f"{BASE}/conversations/{cid}/messages", {"content": "order food"}).status_code == 202
    first = rd.events_until(assistant_done)
    first += rd.quiet_for(1.5)  # the stage change that follows the reply
    rd.close()
    names = [e["event"] for e in first]
    assert "stage.changed" in names and "message.delta" in names, names
    assert names.index("message.delta") < names.index("message.completed")
    stages = [e["data"]["to"] for e in first if e["event"] == "stage.changed"]
    assert stages[0] == "INTENT_DETECTION" and stages[-1] == "COMPLETION", stages
    ids = [e["id"] for e in first]
    assert all(ids) and len(set(ids)) == len(ids)

    # resume after every position: exactly the events after it, no duplicate, none lost
    for cut in (0, len(first) // 2, len(first) - 2):
        resp = open_sse(api, events_path(cid), headers={"Last-Event-ID": first[cut]["id"]})
        rd = Reader(resp)
        rest = first[cut + 1:]
        got = rd.events_until(lambda e, n=rest[-1]["id"]: e["id"] == n) if rest else []
        got += rd.quiet_for(1.0)
        rd.close()
        assert [(e["id"], e["event"], e["data"]) for e in got] == \
            [(e["id"], e["event"], e["data"]) for e in rest]

    # 0-0 replays the conversation from the greeting on
    rd = Reader(open_sse(api, events_path(cid), headers={"Last-Event-ID": "0-0"}))
    replay = rd.events_until(lambda e: e["id"] == first[-1]["id"])
    rd.close()
    assert replay[0]["event"] == "message.delta" and "Hello" in replay[0]["data"]["content"]
    assert [e["id"] for e in replay][-len(first):] == ids


def test_heartbeats_while_idle(api):
    cid = api.create()
    resp = open_sse(api, events_path(cid))
    seen, t0 = [], time.monotonic()
    for ev in SSE(resp):
        seen.append(ev)
        if sum(1 for e in seen if e.get("comment") == "heartbeat") >= 2:
            break
        assert time.monotonic() - t0 < 5, seen
    resp.close()
    assert time.monotonic() - t0 < 3
    assert seen[0] == {"retry": "3000"}, seen


def test_bad_last_event_id_is_400(api):
    cid = api.create()
    r = requests.get(api.url + events_path(cid), timeout=10,
                     headers={"Authorization": f"Bearer {api.key}", "Last-Event-ID": "x-1"})
    assert_problem(r, 400)


def test_stream_ends_after_the_conversation_ends(api):
    cid = api.create()
    rd = Reader(open_sse(api, events_path(cid)))
    assert api.post(f"{BASE}/conversations/{cid}/end").status_code in (200, 202)
    evs = rd.events_until(lambda e: e["event"] == "stage.changed" and e["data"]["to"] == "ENDED")
    assert evs[-1]["data"]["to"] == "ENDED"
    deadline = time.monotonic() + 5
    while True:  # then the server closes the stream
        ev = rd.q.get(timeout=max(0.01, deadline - time.monotonic()))
        if ev is None:
            break


def test_post_message_streams_the_reply(api):
    cid = api.create()
    r = requests.post(api.url + f"{BASE}/conversations/{cid}/messages", json={"content": "hi"},
                      headers={"Authorization": f"Bearer {api.key}",
                               "Accept": "text/event-stream"}, stream=True, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream"
    evs = [e for e in SSE(r) if "event" in e]
    assert [e["event"] for e in evs] == ["message.delta", "message.completed"], evs
    done = evs[1]["data"]
    assert done["role"] == "assistant" and done["content"] == evs[0]["data"]["content"]
    assert done["message_id"] and done["event_id"]


def test_streams_are_capped_by_max_streams(tmp_path_factory, stack):
    capped = start_api(stack, tmp_path_factory.mktemp("cap"),
                       "api:\n  create_wait: 15s\n  max_streams: 1\n  sse_heartbeat: 300ms\n")
    try:
        cid = capped.create()
        held = open_sse(capped, events_path(cid))
        assert held.status_code == 200
        r = requests.get(capped.url + events_path(cid), timeout=10,
                         headers={"Authorization": f"Bearer {capped.key}"})
        assert_problem(r, 503)
        assert r.headers["Retry-After"]
        last = capped.messages(cid)[-1]["seq"]
        assert_problem(capped.get(f"{BASE}/conversations/{cid}/messages?after={last}&wait=5s"),
                       503)
        # a read that does not wait takes no stream
        assert capped.get(f"{BASE}/conversations/{cid}/messages").status_code == 200
        held.close()
        deadline = time.monotonic() + 5  # the slot comes back once the server notices
        while True:
            r = requests.get(capped.url + events_path(cid), timeout=10, stream=True,
                             headers={"Authorization": f"Bearer {capped.key}"})
            if r.status_code == 200:
                r.close()
                break
            r.close()
            assert time.monotonic() < deadline, "the stream slot was never released"
            time.sleep(0.3)
    finally:
        capped.flowd.stop()
