"""Conversations over the REST API (issue 5): create, read, list, messages with ?wait= and
long-poll, switch-agent, end, recover, export, agents -- against the real engine running
the shipped conversation workflow with the local LLM provider."""

import time
import uuid

import pytest

from conv_harness import BASE, assert_problem, start_api

EXTRA = "api:\n  create_wait: 15s\n  sse_heartbeat: 500ms\n  max_streams: 16\n"


@pytest.fixture(scope="module")
def api(tmp_path_factory, stack):
    a = start_api(stack, tmp_path_factory.mktemp("conv"), EXTRA)
    yield a
    a.flowd.stop()


def conv_path(cid, tail=""):
    return f"{BASE}/conversations/{cid}{tail}"


# ---- create, read, list -------------------------------------------------------------------

def test_create_answers_201_with_location_and_the_conversation(api):
    body = {"flow_type": "dedicated", "business_id": "biz-1", "user_id": "u-1",
            "agent": "restaurant_food", "metadata": {"channel": "web"}}
    r = api.post(BASE + "/conversations", body)
    assert r.status_code == 201, r.text
    c = r.json()
    assert r.headers["Location"] == f"{BASE}/conversations/{c['id']}"
    assert c["flow_type"] == "dedicated" and c["business_id"] == "biz-1"
    assert c["user_id"] == "u-1" and c["agent"] == "restaurant_food"
    assert c["metadata"] == {"channel": "web"}
    assert c["stage"] == "GREETING" and c["status"] == "active"
    assert set(c["usage"]) >= {"tokens_in", "tokens_out", "cost"}
    assert c["created_at"].endswith("Z") and c["updated_at"].endswith("Z")
    g = api.get(conv_path(c["id"]))
    assert g.status_code == 200 and g.json()["id"] == c["id"]
    # the greeting is the transcript's first message
    first = api.messages(c["id"])[0]
    assert first["seq"] == 1 and first["role"] == "assistant"
    assert first["id"] == f"{c['id']}:1" and first["agent"] == "restaurant_food"


@pytest.mark.parametrize("body,pointer", [
    ({}, "/flow_type"),
    ({"flow_type": "private"}, "/flow_type"),
    ({"flow_type": "global", "agent": "no_such_agent"}, "/agent"),
    ({"flow_type": "global", "metadata": [1]}, "/metadata"),
    ({"flow_type": "global", "user_id": 7}, "/user_id"),
    ({"flow_type": "global", "colour": "red"}, ""),
])
def test_create_validation_errors_name_the_member(api, body, pointer):
    p = assert_problem(api.post(BASE + "/conversations", body), 400)
    assert pointer in [e["pointer"] for e in p["errors"]], p


def test_create_refuses_a_body_that_is_not_json(api):
    r = api.call("POST", BASE + "/conversations", data="flow_type=global",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415)


def test_create_with_idempotency_key_replays(api):
    k = {"Idempotency-Key": "conv-" + uuid.uuid4().hex}
    a = api.post(BASE + "/conversations", {"flow_type": "global"}, headers=k)
    b = api.post(BASE + "/conversations", {"flow_type": "global"}, headers=k)
    assert a.status_code in (201, 202) and b.status_code == a.status_code
    assert b.json()["id"] == a.json()["id"]
    assert b.headers.get("Idempotent-Replayed") == "true"


def test_another_tenant_sees_404(api):
    cid = api.create()
    for path in ("", "/messages", "/export", "/events"):
        assert_problem(api.get(conv_path(cid, path), key=api.other_key), 404)
    assert_problem(api.post(conv_path(cid, "/messages"), {"content": "hi"},
                            key=api.other_key), 404)
    assert_problem(api.get(conv_path(str(uuid.uuid4()))), 404)
    assert_problem(api.get(conv_path("not-an-id")), 404)
    listed = api.get(BASE + "/conversations?limit=200", key=api.other_key).json()["data"]
    assert cid not in [c["id"] for c in listed]


def test_list_filters_and_paginates(api):
    ids = [api.create({"flow_type": "dashboard", "agent": "automotive"}) for _ in range(3)]
    r = api.get(BASE + "/conversations?flow_type=dashboard&agent=automotive&limit=2")
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["data"]) == 2 and page["has_more"] and page["next_cursor"]
    seen = [c["id"] for c in page["data"]]
    r = api.get(BASE + f"/conversations?flow_type=dashboard&agent=automotive&limit=2"
                f"&cursor={page['next_cursor']}")
    seen += [c["id"] for c in r.json()["data"]]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert seen[:3] == sorted(ids, reverse=True)  # newest first
    assert all(c["status"] == "active" for c in page["data"])
    r = api.get(BASE + "/conversations?status=ended&flow_type=dashboard&agent=automotive")
    assert r.json()["data"] == []
    assert_problem(api.get(BASE + "/conversations?status=sleeping"), 400)
    assert_problem(api.get(BASE + "/conversations?flow_type=x"), 400)


# ---- messages ---------------------------------------------------------------------------

def test_message_with_wait_answers_200_with_the_assistant_reply(api):
    cid = api.create()
    t0 = time.monotonic()
    r = api.post(conv_path(cid, "/messages?wait=10s"), {"content": "Can I order a pizza?"},
                 timeout=30)
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["role"] == "assistant" and reply["content"], reply
    assert reply["message_id"] and reply["event_id"] and reply["conversation_id"] == cid
    assert time.monotonic() - t0 < 10.5
    msgs = api.messages(cid)
    user = [m for m in msgs if m["role"] == "user"]
    assert user and user[0]["content"] == "Can I order a pizza?"
    # the transcript keeps the id the API answered: ?wait= pairs the reply by it
    assert user[0]["message_id"] == reply["message_id"], user
    assert reply["seq"] > user[0]["seq"]
    # the local provider's keyword table routes a pizza to the restaurant agent
    conv = api.get(conv_path(cid)).json()
    assert conv["agent"] == "restaurant_food" and conv["stage"] == "COMPLETION"
    assert conv["usage"]["tokens_in"] > 0


def test_message_without_wait_is_accepted(api):
    cid = api.create()
    r = api.post(conv_path(cid, "/messages"), {"content": "hello"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) >= {"event_id", "message_id"}
    assert r.headers["Location"] == conv_path(cid, "/messages?after=1")


@pytest.mark.parametrize("body,pointer", [
    ({}, "/content"), ({"content": ""}, "/content"), ({"content": 3}, "/content"),
    ({"content": "x", "role": "system"}, ""),
])
def test_message_validation(api, body, pointer):
    cid = api.create()
    p = assert_problem(api.post(conv_path(cid, "/messages"), body), 400)
    assert pointer in [e["pointer"] for e in p["errors"]]


def test_message_wrong_content_type_is_415(api):
    cid = api.create()
    r = api.call("POST", conv_path(cid, "/messages"), data="hello",
                 headers={"Content-Type": "text/plain"})
    assert_problem(r, 415)


def test_long_poll_returns_early_when_the_reply_arrives(api):
    cid = api.create()
    last = api.messages(cid)[-1]["seq"]
    assert api.post(conv_path(cid, "/messages"), {"content": "I need a haircut"}).status_code == 202
    got = []
    t0 = time.monotonic()
    while not any(m["role"] == "assistant" for m in got):
        r = api.get(conv_path(cid, f"/messages?after={last}&wait=30s"), timeout=40)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data, "a long-poll answered empty before its bound"
        got += data
        last = data[-1]["seq"]
    elapsed = time.monotonic() - t0
    assert elapsed < 15, f"long-poll took {elapsed:.1f}s of its 30s bound"
    assert [m["role"] for m in got][0] == "user"
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)


def test_long_poll_with_nothing_new_waits_for_its_bound(api):
    cid = api.create()
    last = api.messages(cid)[-1]["seq"]
    t0 = time.monotonic()
    r = api.get(conv_path(cid, f"/messages?after={last}&wait=1s"))
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and r.json() == {"data": [], "next_cursor": None,
                                                 "has_more": False}
    assert 0.9 <= elapsed < 5, elapsed
    assert_problem(api.get(conv_path(cid, "/messages?after=-1")), 400)
    assert_problem(api.get(conv_path(cid, "/messages?wait=forever")), 400)


# ---- commands -----------------------------------------------------------------------------

def test_switch_agent_with_wait_answers_the_updated_conversation(api):
    cid = api.create()
    r = api.post(conv_path(cid, "/switch-agent?wait=10s"), {"agent": "beauty_salon"})
    assert r.status_code == 200, r.text
    assert r.json()["agent"] == "beauty_salon"
    r = api.post(conv_path(cid, "/switch-agent"), {"agent": "automotive"})
    assert r.status_code == 202 and r.json()["event_id"]
    p = assert_problem(api.post(conv_path(cid, "/switch-agent"), {"agent": "pirate"}), 400)
    assert p["errors"][0]["pointer"] == "/agent"


def test_recover_escalate_to_human_marks_the_conversation_escalated(api):
    cid = api.create()
    r = api.post(conv_path(cid, "/recover?wait=10s"), {"strategy": "escalate_to_human"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "escalated" and r.json()["stage"] == "COMPLETION"
    assert any("person" in m["content"] for m in api.messages(cid))
    listed = api.get(BASE + "/conversations?status=escalated&limit=200").json()["data"]
    assert cid in [c["id"] for c in listed]
    p = assert_problem(api.post(conv_path(cid, "/recover"), {"strategy": "pray"}), 400)
    assert p["errors"][0]["pointer"] == "/strategy"


def test_recover_create_new_conversation_opens_a_successor(api):
    cid = api.create({"flow_type": "dedicated", "business_id": "b-9"})
    r = api.post(conv_path(cid, "/recover"), {"strategy": "create_new_conversation"})
    assert r.status_code == 202, r.text
    new = r.json()["new_conversation_id"]
    assert new != cid
    n = api.get(conv_path(new)).json()
    assert n["flow_type"] == "dedicated" and n["business_id"] == "b-9"


def test_end_then_messages_are_refused(api):
    cid = api.create()
    r = api.post(conv_path(cid, "/end?wait=10s"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended" and r.json()["stage"] == "ENDED"
    assert api.post(conv_path(cid, "/end")).status_code == 200  # nothing left to end
    assert_problem(api.post(conv_path(cid, "/messages"), {"content": "still there?"}), 409)
    assert_problem(api.post(conv_path(cid, "/switch-agent"), {"agent": "automotive"}), 409)


def test_export_has_the_conversation_transcript_and_stages(api):
    cid = api.create()
    assert api.post(conv_path(cid, "/messages?wait=10s"), {"content": "book a table"},
                    timeout=30).status_code == 200
    r = api.get(conv_path(cid, "/export"))
    assert r.status_code == 200, r.text
    e = r.json()
    assert e["conversation"]["id"] == cid
    assert [m["seq"] for m in e["messages"]] == list(range(1, len(e["messages"]) + 1))
    assert {m["role"] for m in e["messages"]} == {"user", "assistant"}
    assert e["stages"][0]["to"] and e["exported_at"].endswith("Z")


def test_agents_lists_the_eight_profiles(api):
    r = api.get(BASE + "/agents")
    assert r.status_code == 200, r.text
    ids = {a["id"] for a in r.json()["data"]}
    assert ids == {"restaurant_food", "beauty_salon", "automotive", "health_medical",
                   "business_analytics", "voice_enhancement", "local_services",
                   "general_purpose"}
    assert all(a["description"] for a in r.json()["data"])
    assert_problem(api.get(BASE + "/agents", key=""), 401)
