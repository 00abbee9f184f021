"""/api/v1/memory (api/routes_memory.c, engine/directory_search.c): per-user facts stored
and searched with PostgreSQL full-text search, ranked; the same fact stored twice is one
row; strict validation; tenant and user isolation."""

import uuid

from api_wait_harness import BASE, api, assert_problem  # noqa: F401

M = f"{BASE}/memory"
FACT_KEYS = {"id", "user_id", "fact", "source", "created_at"}


def add(api, user, fact, source=None, key=None, status=201):
    body = {"user_id": user, "fact": fact}
    if source:
        body["source"] = source
    r = api.post(M, body, key=key)
    assert r.status_code == status, r.text
    return r.json()


def test_store_and_search_ranked(api):
    user = "u-" + uuid.uuid4().hex[:8]
    f1 = add(api, user, "Is allergic to peanuts and tree nuts", "conversation")
    assert set(f1) == FACT_KEYS and f1["user_id"] == user and f1["source"] == "conversation"
    f2 = add(api, user, "Prefers vegetarian dishes, no peanuts in the sauce please; "
                        "peanuts make them ill")
    f3 = add(api, user, "Drives a 2015 Toyota Corolla")
    add(api, "someone-else", "Allergic to peanuts as well")

    r = api.get(f"{M}/search?user_id={user}&q=peanuts")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "next_cursor", "has_more"}
    data = body["data"]
    # f2 says peanuts twice: it ranks first; the other user's fact is not there
    assert [d["id"] for d in data] == [f2["id"], f1["id"]]
    assert all(d["user_id"] == user and d["rank"] > 0 for d in data)
    assert data[0]["rank"] >= data[1]["rank"]

    got = api.get(f"{M}/search?user_id={user}&q=toyota car OR corolla").json()["data"]
    assert [d["id"] for d in got] == [f3["id"]]
    assert api.get(f"{M}/search?user_id={user}&q=submarine").json()["data"] == []
    # without q: the newest facts, at most limit
    got = api.get(f"{M}/search?user_id={user}&limit=2").json()["data"]
    assert [d["id"] for d in got] == [f3["id"], f2["id"]]
    assert api.get(f"{M}/search?user_id={user}&q=peanuts&limit=1").json()["data"][0][
        "id"] == f2["id"]


def test_same_fact_is_one_row(api):
    user = "u-" + uuid.uuid4().hex[:8]
    a = add(api, user, "Likes window seats")
    b = add(api, user, "Likes window seats", status=200)
    assert a == b
    assert len(api.get(f"{M}/search?user_id={user}").json()["data"]) == 1


def test_idempotency_key_replays(api):
    user = "u-" + uuid.uuid4().hex[:8]
    h = {"Idempotency-Key": uuid.uuid4().hex}
    r1 = api.post(M, {"user_id": user, "fact": "Birthday in May"}, headers=h)
    r2 = api.post(M, {"user_id": user, "fact": "Birthday in May"}, headers=h)
    assert r1.status_code == r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true" and r1.json() == r2.json()
    assert_problem(api.post(M, {"user_id": user, "fact": "other"}, headers=h), 422)


def test_validation(api):
    body = assert_problem(api.post(M, {"user_id": "", "fact": 3, "source": "", "x": 1}), 400)
    assert {e["pointer"] for e in body["errors"]} == {"/user_id", "/fact", "/source", ""}
    body = assert_problem(api.post(M, {}), 400)
    assert {e["pointer"] for e in body["errors"]} == {"/user_id", "/fact"}
    assert_problem(api.post(M, {"user_id": "u", "fact": "x" * 2001}), 400)
    assert_problem(api.post(M, {"user_id": "u" * 129, "fact": "x"}), 400)
    assert_problem(api.get(f"{M}/search?q=x"), 400)
    assert_problem(api.get(f"{M}/search?user_id="), 400)
    assert_problem(api.get(f"{M}/search?user_id=u&limit=0"), 400)
    assert_problem(api.get(f"{M}/search?user_id=u&limit=51"), 400)
    assert_problem(api.get(f"{M}/search?user_id=u&q=" + "x" * 501), 400)


def test_scopes_and_tenants(api):
    user = "u-" + uuid.uuid4().hex[:8]
    add(api, user, "Has a dog named Rex")
    assert_problem(api.post(M, {"user_id": user, "fact": "x"}, key=api.read_key), 403)
    got = api.get(f"{M}/search?user_id={user}&q=dog", key=api.read_key).json()["data"]
    assert len(got) == 1
    assert api.get(f"{M}/search?user_id={user}&q=dog", key=api.other_key).json()["data"] == []
    assert_problem(api.get(f"{M}/search?user_id={user}", key=""), 401)
