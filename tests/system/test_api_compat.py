"""The origin documents' routes (issue 5, "Compatibility routes"), served by the same
handlers as /api/v1/conversations, and /health."""

import uuid

import pytest
import requests

from conv_harness import BASE, assert_problem, start_api

EXTRA = "api:\n  create_wait: 15s\n  sse_heartbeat: 500ms\n"
C = BASE + "/conversations"


@pytest.fixture(scope="module")
def api(tmp_path_factory, stack):
    a = start_api(stack, tmp_path_factory.mktemp("compat"), EXTRA)
    yield a
    a.flowd.stop()


def test_health_needs_no_key(api):
    r = requests.get(api.url + "/health", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "healthy" and body["timestamp"].endswith("Z")
    assert body["checks"]["postgres"]["status"] == "up"


def test_create_message_history(api):
    r = api.post(C + "/create", {"flow_type": "global", "user_id": "u-7"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["user_id"] == "u-7"
    r = api.post(f"{C}/{cid}/message?wait=10s", {"content": "I need a doctor"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "assistant"
    r = api.get(f"{C}/{cid}/history")
    assert r.status_code == 200
    roles = [m["role"] for m in r.json()["data"]]
    assert roles[:2] == ["assistant", "user"] and roles[-1] == "assistant"
    assert_problem(api.get(f"{C}/{cid}/history", key=api.other_key), 404)
    assert_problem(api.post(C + "/create", {"flow_type": "nope"}), 400)


def test_chat_creates_then_continues(api):
    r = api.post(C + "/chat/dedicated", {"message": "a table for two", "business_id": "b-1"},
                 timeout=30)
    assert r.status_code == 200, r.text
    first = r.json()
    cid = first["conversation_id"]
    assert first["role"] == "assistant" and first["content"]
    conv = api.get(f"{C}/{cid}").json()
    assert conv["flow_type"] == "dedicated" and conv["business_id"] == "b-1"
    r = api.post(C + "/chat/dedicated", {"message": "and a pizza", "conversation_id": cid},
                 timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["conversation_id"] == cid and r.json()["seq"] > first["seq"]
    r = api.post(C + "/chat/dedicated?wait=0s", {"message": "thanks", "conversation_id": cid})
    assert r.status_code == 202 and r.json()["conversation_id"] == cid
    # errors
    assert_problem(api.post(C + "/chat/global", {"message": "x", "conversation_id": cid}), 409)
    assert_problem(api.post(C + "/chat/private", {"message": "x"}), 404)
    p = assert_problem(api.post(C + "/chat/global", {"text": "x"}), 400)
    assert "" in [e["pointer"] for e in p["errors"]]
    p = assert_problem(api.post(C + "/chat/global", {"conversation_id": cid}), 400)
    assert "/message" in [e["pointer"] for e in p["errors"]]


def test_chat_without_a_message_starts_a_conversation(api):
    r = api.post(C + "/chat/global", {"user_id": "u-3"})
    assert r.status_code == 201, r.text
    assert r.json()["flow_type"] == "global" and r.json()["user_id"] == "u-3"
    assert r.headers["Location"] == f"{C}/{r.json()['id']}"
    assert_problem(api.post(C + "/chat/global", {"message": "x",
                                                 "conversation_id": str(uuid.uuid4())}), 404)


def test_active_workflows_and_cancel(api):
    cid = api.create()
    r = api.get(C + "/workflows/active?limit=200")
    assert r.status_code == 200, r.text
    row = next(w for w in r.json()["data"] if w["conversation_id"] == cid)
    assert row["workflow"] == "conversation" and row["status"] == "running"
    assert row["key"] == cid and row["state"] == "GREETING"
    # {id} may be the instance id too
    r = api.post(f"{C}/workflows/{row['id']}/cancel?wait=10s")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["key"] == cid  # the instance
    assert api.get(f"{C}/{cid}").json()["status"] == "ended"
    active = api.get(C + "/workflows/active?limit=200").json()["data"]
    assert cid not in [w["conversation_id"] for w in active]
    assert_problem(api.post(f"{C}/workflows/{cid}/cancel"), 409)
    assert_problem(api.post(f"{C}/workflows/{uuid.uuid4()}/cancel"), 404)


def test_conversations_health_stats_agents(api):
    api.create({"flow_type": "dashboard"})
    r = api.get(C + "/health")
    assert r.status_code == 200 and r.json()["service"] == "conversations"
    assert r.json()["streams"]["max"] >= 1
    r = api.get(C + "/stats")
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["total"] >= 1 and s["by_flow_type"]["dashboard"] >= 1
    assert s["by_status"]["active"] >= 1 and set(s["by_status"]) == {"active", "ended", "escalated"}
    assert set(s["messages"]) == {"total", "user", "assistant"}
    r = api.get(C + "/agents")
    assert r.status_code == 200 and len(r.json()["data"]) == 8
    assert_problem(api.get(C + "/stats", key=""), 401)
