"""/api/v1/workflows/{name}/instances and /api/v1/instances (api/routes_instances*.c):
create (201 after the engine's NOTIFY, idempotent), reads, history, signal and cancel with
?wait= returning as soon as the engine applied the event, tenant isolation, bad bodies, and
the request id and traceparent copied into the produced event."""

import re
import time
import uuid

import pytest

from api_wait_harness import BASE, api, assert_problem  # noqa: F401
from engine_harness import read_topic

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

FLOW = """workflow: {name}
version: 1
initial: waiting
context: {{ n: 0 }}
states:
  waiting:
    transitions:
      - event: add
        set: {{ n: "${{ ctx.n + event.data.by }}" }}
      - event: finish
        to: done
  done:
    final: true
"""


@pytest.fixture(scope="module")
def flow(api):
    name = "flow-" + uuid.uuid4().hex[:8]
    r = api.put_yaml(name, FLOW.format(name=name))
    assert r.status_code == 201, r.text
    return name


def create(api, flow, body=None, **kw):
    r = api.post(f"{BASE}/workflows/{flow}/instances", body if body is not None else {}, **kw)
    assert r.status_code == 201, r.text
    return r


def test_create_answers_201_with_the_instance(api, flow):
    key = "order-" + uuid.uuid4().hex[:8]
    r = create(api, flow, {"key": key, "input": {"a": 1}})
    inst = r.json()
    assert set(inst) == {"id", "workflow", "version", "key", "state", "status", "context",
                         "usage", "created_at", "updated_at"}
    assert inst["workflow"] == flow and inst["version"] == 1 and inst["key"] == key
    assert inst["state"] == "waiting" and inst["status"] == "running"
    assert inst["context"]["n"] == 0
    assert r.headers["Location"] == f"{BASE}/instances/{inst['id']}"
    assert api.get(r.headers["Location"]).json() == inst


def test_create_without_key_makes_one(api, flow):
    inst = create(api, flow).json()
    assert UUID7.match(inst["key"]), inst


def test_create_errors(api, flow):
    assert_problem(api.post(f"{BASE}/workflows/nope-{uuid.uuid4().hex[:6]}/instances", {}), 404)
    assert_problem(api.post(f"{BASE}/workflows/{flow}/instances", {}, key=api.other_key), 404)
    assert_problem(api.post(f"{BASE}/workflows/{flow}/instances", {"version": 9}), 404)
    body = assert_problem(api.post(f"{BASE}/workflows/{flow}/instances", {"key": 5}), 400)
    assert body["errors"][0]["pointer"] == "/key"
    body = assert_problem(api.post(f"{BASE}/workflows/{flow}/instances", {"kee": "x"}), 400)
    assert "kee" in body["errors"][0]["detail"]
    assert_problem(api.call("POST", f"{BASE}/workflows/{flow}/instances", data="{",
                            headers={"Content-Type": "application/json"}), 400)
    assert_problem(api.call("POST", f"{BASE}/workflows/{flow}/instances", data="key=x",
                            headers={"Content-Type": "text/plain"}), 415)
    assert_problem(api.post(f"{BASE}/workflows/{flow}/instances", {}, key=api.read_key), 403)


def test_create_while_running_for_the_key_is_409(api, flow):
    key = "dup-" + uuid.uuid4().hex[:8]
    first = create(api, flow, {"key": key}).json()
    r = api.post(f"{BASE}/workflows/{flow}/instances", {"key": key})
    assert_problem(r, 409)
    assert r.headers["Location"] == f"{BASE}/instances/{first['id']}"


def test_create_is_idempotent_with_a_key(api, flow):
    hdr = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"key": "idem-" + uuid.uuid4().hex[:8]}
    a = create(api, flow, body, headers=hdr)
    b = api.post(f"{BASE}/workflows/{flow}/instances", body, headers=hdr)
    assert b.status_code == 201 and b.headers.get("Idempotent-Replayed") == "true", b.headers
    assert b.json()["id"] == a.json()["id"]


def test_get_other_tenant_and_bad_ids_are_404(api, flow):
    inst = create(api, flow).json()
    assert_problem(api.get(f"{BASE}/instances/{inst['id']}", key=api.other_key), 404)
    assert_problem(api.get(f"{BASE}/instances/{inst['id']}/history", key=api.other_key), 404)
    assert_problem(api.post(f"{BASE}/instances/{inst['id']}/signal",
                            {"type": "add", "data": {"by": 1}}, key=api.other_key), 404)
    assert_problem(api.post(f"{BASE}/instances/{inst['id']}/cancel", key=api.other_key), 404)
    assert_problem(api.get(f"{BASE}/instances/not-a-uuid"), 404)
    assert_problem(api.get(f"{BASE}/instances/{uuid.uuid4()}"), 404)


def test_list_filters_and_pagination(api, flow):
    key = "list-" + uuid.uuid4().hex[:8]
    ids = []
    for i in range(3):
        inst = create(api, flow, {"key": f"{key}-{i}"}).json()
        ids.append(inst["id"])
        r = api.post(f"{BASE}/instances/{inst['id']}/signal?wait=10s", {"type": "finish"})
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
    items = api.all_pages(f"{BASE}/instances?workflow={flow}&status=completed", limit=2)
    got = [i["id"] for i in items if i["key"].startswith(key)]
    assert got == list(reversed(ids)), (got, ids)  # newest first
    assert all(i["status"] == "completed" and i["state"] == "done" for i in items)
    one = api.get(f"{BASE}/instances?key={key}-1").json()["data"]
    assert [i["id"] for i in one] == [ids[1]]
    assert api.get(f"{BASE}/instances?key={key}-1&state=waiting").json()["data"] == []
    assert api.get(f"{BASE}/instances?key={key}-1", key=api.other_key).json()["data"] == []
    assert_problem(api.get(f"{BASE}/instances?status=sleeping"), 400)
    assert_problem(api.get(f"{BASE}/instances?limit=201"), 400)


def test_signal_wait_returns_as_soon_as_the_engine_applied_it(api, flow):
    inst = create(api, flow).json()
    t0 = time.monotonic()
    r = api.post(f"{BASE}/instances/{inst['id']}/signal?wait=20s",
                 {"type": "add", "data": {"by": 5}})
    took = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert r.json()["context"]["n"] == 5 and r.json()["id"] == inst["id"]
    assert took < 5, f"the wait took {took:.2f}s of 20s: the NOTIFY did not wake it"

    # without ?wait=: 202 with the event id, applied soon after
    r = api.post(f"{BASE}/instances/{inst['id']}/signal", {"type": "add", "data": {"by": 2}})
    assert r.status_code == 202, r.text
    assert UUID7.match(r.json()["event_id"])
    assert r.headers["Location"] == f"{BASE}/instances/{inst['id']}"
    deadline = time.monotonic() + 20
    while api.get(f"{BASE}/instances/{inst['id']}").json()["context"]["n"] != 7:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_signal_bad_bodies(api, flow):
    inst = create(api, flow).json()
    path = f"{BASE}/instances/{inst['id']}/signal"
    body = assert_problem(api.post(path, {"data": {}}), 400)
    assert body["errors"][0]["pointer"] == "/type"
    assert_problem(api.post(path, {"type": "flowd.instance.cancel"}), 400)
    assert_problem(api.post(path, {"type": "add", "extra": 1}), 400)
    assert_problem(api.post(path + "?wait=soon", {"type": "add"}), 400)
    assert_problem(api.post(path, {"type": "add"}, key=api.read_key), 403)


def test_history_is_paginated_by_seq(api, flow):
    inst = create(api, flow).json()
    for by in (1, 2, 3):
        r = api.post(f"{BASE}/instances/{inst['id']}/signal?wait=10s",
                     {"type": "add", "data": {"by": by}})
        assert r.status_code == 200, r.text
    items = api.all_pages(f"{BASE}/instances/{inst['id']}/history", limit=2)
    seqs = [h["seq"] for h in items]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) >= 4, items
    assert [h["event_type"] for h in items][-3:] == ["add", "add", "add"]
    assert {"seq", "event_id", "event_type", "from_state", "to_state", "effects",
            "created_at"} <= set(items[0])


def test_cancel_with_wait_then_again_is_409(api, flow):
    inst = create(api, flow).json()
    t0 = time.monotonic()
    r = api.post(f"{BASE}/instances/{inst['id']}/cancel?wait=20s", {"reason": "test"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert time.monotonic() - t0 < 5
    assert_problem(api.post(f"{BASE}/instances/{inst['id']}/cancel"), 409)
    assert_problem(api.post(f"{BASE}/instances/{inst['id']}/signal", {"type": "add"}), 409)
    inst2 = create(api, flow).json()
    r = api.call("POST", f"{BASE}/instances/{inst2['id']}/cancel")  # no body at all
    assert r.status_code == 202, r.text
    assert_problem(api.post(f"{BASE}/instances/{inst2['id']}/cancel", {"why": 1}), 400)


def test_request_id_and_traceparent_reach_the_event(api, flow):
    rid = "inst-test-" + uuid.uuid4().hex
    tp = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    key = "trace-" + uuid.uuid4().hex[:8]
    create(api, flow, {"key": key}, headers={"X-Request-Id": rid, "traceparent": tp})
    recs = read_topic(api.env.stack.kafka_bootstrap, api.env.topics["flowd_events"],
                      until=lambda rs: any(x["key"] == key for x in rs), timeout=20)
    rec = [x for x in recs if x["key"] == key][0]
    h = rec["headers"]
    assert h["ce_type"] == "flowd.instance.start" and h["ce_subject"] == key
    assert h["ce_tenant"] == api.tenant_a and h["ce_source"] == "flowd/api"
    assert h["ce_requestid"] == rid and h["ce_traceparent"] == tp
