"""/api/v1/dead-letters (api/routes_dead_letters.c): the caller's dead letters listed
(paginated, filtered), read (payload as text or base64), replayed (the same record produced
again to its topic: the engine dead-letters it again, and an independent consumer sees the
same key, headers and value) and deleted; another tenant sees none of them."""

import base64
import time
import uuid

from api_wait_harness import BASE, api, assert_problem  # noqa: F401
from engine_harness import SOURCE, read_topic


def poison(api, mark, value=None):
    """A record whose data is declared JSON but is not: dead letter invalid_data_json. It
    carries no ce_tenant, so it belongs to the default tenant (tenant A)."""
    topic = api.env.topics["flowd_events"]
    key = f"dl-{mark}"
    api.producer.raw(topic, value if value is not None else ('{"m": "%s", bad' % mark).encode(),
                     [("ce_specversion", b"1.0"), ("ce_id", f"{key}:1".encode()),
                      ("ce_source", SOURCE.encode()), ("ce_type", b"dl.test"),
                      ("ce_subject", key.encode()), ("content-type", b"application/json")],
                     key=key)
    api.producer.flush()
    return key


def wait_dead(api, key, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = [d for d in api.all_pages(f"{BASE}/dead-letters", limit=50) if d["key"] == key]
        if len(items) >= count:
            return items
        time.sleep(0.2)
    raise AssertionError(f"no dead letter for {key}\n{api.env.logs()}")


def test_list_get_filters_pagination_and_isolation(api):
    mark = uuid.uuid4().hex[:8]
    keys = [poison(api, f"{mark}-{i}") for i in range(3)]
    for k in keys:
        wait_dead(api, k)
    items = api.all_pages(f"{BASE}/dead-letters?reason=invalid_data_json", limit=2)
    mine = [d for d in items if d["key"] in keys]
    # newest first (records of one engine batch share created_at: their order is by id)
    assert sorted(d["key"] for d in mine) == sorted(keys)
    stamps = [d["created_at"] for d in items]
    assert stamps == sorted(stamps, reverse=True)
    ids = [d["id"] for d in items]
    assert len(ids) == len(set(ids))
    d = mine[0]
    assert d["topic"] == api.env.topics["flowd_events"] and d["reason"] == "invalid_data_json"
    assert isinstance(d["partition"], int) and isinstance(d["offset"], int)
    assert d["replayed_at"] is None and d["created_at"].endswith("Z")
    assert "payload" not in d
    assert api.get(f"{BASE}/dead-letters?reason=no_such_reason").json()["data"] == []
    topic = api.env.topics["flowd_events"]
    assert len(api.get(f"{BASE}/dead-letters?topic={topic}&limit=200").json()["data"]) >= 3

    one = api.get(f"{BASE}/dead-letters/{d['id']}").json()
    assert one["payload"].startswith('{"m": ') and one["payload_base64"] is None
    assert one["headers"]["ce_type"] == "dl.test" and one["detail"]

    assert api.get(f"{BASE}/dead-letters", key=api.other_key).json()["data"] == []
    assert_problem(api.get(f"{BASE}/dead-letters/{d['id']}", key=api.other_key), 404)
    assert_problem(api.post(f"{BASE}/dead-letters/{d['id']}/replay", key=api.other_key), 404)
    assert_problem(api.call("DELETE", f"{BASE}/dead-letters/{d['id']}", key=api.other_key), 404)
    assert_problem(api.get(f"{BASE}/dead-letters/{uuid.uuid4()}"), 404)
    assert_problem(api.get(f"{BASE}/dead-letters/nope"), 404)
    assert_problem(api.get(f"{BASE}/dead-letters?cursor=zz"), 400)


def test_binary_payload_is_base64(api):
    raw = b"\xff\xfe\x00binary"
    key = poison(api, uuid.uuid4().hex[:8], value=raw)
    d = wait_dead(api, key)[0]
    one = api.get(f"{BASE}/dead-letters/{d['id']}").json()
    assert one["payload"] is None
    assert base64.b64decode(one["payload_base64"]) == raw


def test_replay_produces_the_same_record_again_and_may_repeat(api):
    key = poison(api, uuid.uuid4().hex[:8])
    d = wait_dead(api, key)[0]
    original = api.get(f"{BASE}/dead-letters/{d['id']}").json()
    r = api.post(f"{BASE}/dead-letters/{d['id']}/replay")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["id"] == d["id"] and body["replayed_again"] is False
    assert body["reason"] == "invalid_data_json" and body["topic"] == original["topic"]
    assert body["replayed_at"] and body["previously_replayed_at"] is None
    # the engine consumes the replayed record and, still invalid, dead-letters it again
    again = wait_dead(api, key, count=2)
    assert len(again) == 2
    recs = read_topic(api.env.stack.kafka_bootstrap, original["topic"],
                      until=lambda rs: sum(x["key"] == key for x in rs) >= 2, timeout=20)
    mine = [x for x in recs if x["key"] == key]
    assert len(mine) == 2 and mine[0]["value"] == mine[1]["value"]
    assert mine[1]["headers"] == mine[0]["headers"]
    assert api.get(f"{BASE}/dead-letters/{d['id']}").json()["replayed_at"] == body["replayed_at"]

    r = api.post(f"{BASE}/dead-letters/{d['id']}/replay")
    assert r.status_code == 202 and r.json()["replayed_again"] is True, r.text
    assert r.json()["previously_replayed_at"] == body["replayed_at"]
    assert_problem(api.post(f"{BASE}/dead-letters/{d['id']}/replay", key=api.read_key), 403)


def test_delete_is_204_then_404(api):
    key = poison(api, uuid.uuid4().hex[:8])
    d = wait_dead(api, key)[0]
    assert_problem(api.call("DELETE", f"{BASE}/dead-letters/{d['id']}", key=api.read_key), 403)
    r = api.call("DELETE", f"{BASE}/dead-letters/{d['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_problem(api.get(f"{BASE}/dead-letters/{d['id']}"), 404)
    assert_problem(api.call("DELETE", f"{BASE}/dead-letters/{d['id']}"), 404)
