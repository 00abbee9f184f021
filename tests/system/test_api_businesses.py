"""/api/v1/businesses (api/routes_businesses.c, engine/directory*.c): businesses with hours
and ratings, their services, full-text search ranked by text rank then rating, cursor
pagination, strict validation naming every bad field, scopes (DELETE of a business is
admin), idempotent creates, and tenant isolation (another tenant's rows answer 404)."""

import time
import uuid

import pytest

from api_wait_harness import BASE, api, assert_problem  # noqa: F401

B = f"{BASE}/businesses"

HOURS = {"monday": {"open": "09:00", "close": "17:30"},
         "saturday": {"open": "10:00", "close": "24:00"}}

BIZ_KEYS = {"id", "name", "category", "description", "address", "city", "phone", "hours",
            "rating", "price_level", "metadata", "created_at", "updated_at"}
SVC_KEYS = {"id", "business_id", "name", "description", "price", "currency",
            "duration_minutes", "category", "available", "created_at", "updated_at"}


def biz(**kw):
    body = {"name": "Luigi's Trattoria", "category": "restaurant",
            "description": "Wood-fired pizza and fresh pasta", "address": "1 Main St",
            "city": "Springfield", "phone": "+1 555-0100", "hours": HOURS, "rating": 4.5,
            "price_level": 2, "metadata": {"seats": 40}}
    body.update(kw)
    return body


def create(api, body=None, key=None, **kw):
    r = api.post(B, body if body is not None else biz(), key=key, **kw)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def admin_key(api):
    return api.make_key(api.tenant_a, "admin")


def test_create_read_replace_delete(api, admin_key):
    r = api.post(B, biz())
    assert r.status_code == 201, r.text
    b = r.json()
    assert set(b) == BIZ_KEYS
    assert r.headers["Location"] == f"{B}/{b['id']}"
    assert b["name"] == "Luigi's Trattoria" and b["rating"] == 4.5 and b["price_level"] == 2
    assert b["hours"] == HOURS and b["metadata"] == {"seats": 40}
    assert api.get(f"{B}/{b['id']}").json() == b

    # PUT replaces every editable field: what is left out goes back to its default
    r = api.call("PUT", f"{B}/{b['id']}", json={"name": "Luigi's", "category": "restaurant",
                                                 "rating": 3})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["id"] == b["id"] and p["name"] == "Luigi's" and p["rating"] == 3
    assert p["hours"] == {} and p["description"] == "" and p["city"] is None
    assert p["price_level"] is None and p["metadata"] == {}
    assert p["created_at"] == b["created_at"] and p["updated_at"] >= b["updated_at"]
    assert api.get(f"{B}/{b['id']}").json() == p

    # deleting a business (and every service with it) is an admin's act
    assert_problem(api.call("DELETE", f"{B}/{b['id']}"), 403)
    r = api.call("DELETE", f"{B}/{b['id']}", key=admin_key)
    assert r.status_code == 204, r.text
    assert_problem(api.get(f"{B}/{b['id']}"), 404)
    assert_problem(api.call("DELETE", f"{B}/{b['id']}", key=admin_key), 404)
    assert_problem(api.call("PUT", f"{B}/{b['id']}", json=biz()), 404)


def test_validation_names_every_bad_field(api):
    bad = {"name": "", "category": "spaceport", "rating": 5.5, "price_level": 0,
           "phone": "call me", "metadata": [], "hours": {
               "monday": {"open": "9:00", "close": "17:00"},
               "tuesday": {"open": "18:00", "close": "09:00"},
               "funday": {"open": "10:00", "close": "11:00"},
               "friday": {"open": "10:00", "close": "25:00", "lunch": True}},
           "colour": "red"}
    body = assert_problem(api.post(B, bad), 400)
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/name", "/category", "/rating", "/price_level", "/phone", "/metadata",
            "/hours/monday/open", "/hours/tuesday/close", "/hours/funday",
            "/hours/friday/close", "/hours/friday", ""} <= pointers, body["errors"]
    assert all(e["detail"] for e in body["errors"])
    body = assert_problem(api.post(B, {"category": "restaurant"}), 400)
    assert [e["pointer"] for e in body["errors"]] == ["/name"]
    assert_problem(api.post(B, biz(rating="4.5")), 400)
    assert_problem(api.post(B, biz(price_level=2.5)), 400)
    assert_problem(api.post(B, biz(hours=[])), 400)
    assert_problem(api.post(B, {"name": "x", "category": "restaurant"},
                            headers={"Content-Type": "text/plain"}), 415)
    assert_problem(api.call("POST", B, data=b"{\"name\": ", headers={
        "Content-Type": "application/json"}), 400)
    # a valid edge: 00:00 to 24:00, rating 0 and 5, price level 1 and 4
    create(api, biz(hours={"sunday": {"open": "00:00", "close": "24:00"}}, rating=0,
                    price_level=1))
    create(api, biz(rating=5, price_level=4))


def test_unknown_and_malformed_ids_are_404(api):
    assert_problem(api.get(f"{B}/{uuid.uuid4()}"), 404)
    assert_problem(api.get(f"{B}/not-a-uuid"), 404)
    assert_problem(api.get(f"{B}/{uuid.uuid4()}/services"), 404)
    assert_problem(api.post(f"{B}/{uuid.uuid4()}/services", {"name": "x"}), 404)


def test_scopes(api):
    b = create(api)
    assert_problem(api.post(B, biz(), key=api.read_key), 403)
    assert api.get(f"{B}/{b['id']}", key=api.read_key).status_code == 200
    assert_problem(api.get(B, key=""), 401)


def test_services_crud(api):
    b = create(api)
    sb = f"{B}/{b['id']}/services"
    r = api.post(sb, {"name": "Margherita", "description": "tomato, mozzarella",
                      "price": 11.5, "currency": "EUR", "category": "pizza"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert set(s) == SVC_KEYS and s["business_id"] == b["id"]
    assert s["price"] == 11.5 and s["currency"] == "EUR" and s["available"] is True
    assert r.headers["Location"] == f"{sb}/{s['id']}"
    s2 = api.post(sb, {"name": "Haircut", "price": 30, "duration_minutes": 45}).json()
    assert s2["currency"] == "USD" and s2["duration_minutes"] == 45

    # names are unique per business, case-insensitively
    assert_problem(api.post(sb, {"name": "margherita", "price": 1}), 409)
    lst = api.get(sb).json()
    assert lst["has_more"] is False and lst["next_cursor"] is None
    assert [x["name"] for x in lst["data"]] == ["Haircut", "Margherita"]

    r = api.call("PUT", f"{sb}/{s['id']}", json={"name": "Margherita", "price": 12,
                                                  "available": False})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["id"] == s["id"] and u["price"] == 12 and u["available"] is False
    assert u["description"] == "" and u["currency"] == "USD"
    assert_problem(api.call("PUT", f"{sb}/{s['id']}", json={"name": "haircut"}), 409)

    body = assert_problem(api.post(sb, {"price": -1, "currency": "euro",
                                        "duration_minutes": 0, "available": "yes",
                                        "extra": 1}), 400)
    assert {"/name", "/price", "/currency", "/duration_minutes", "/available", ""} <= {
        e["pointer"] for e in body["errors"]}

    assert api.call("DELETE", f"{sb}/{s['id']}").status_code == 204
    assert_problem(api.call("DELETE", f"{sb}/{s['id']}"), 404)
    assert [x["name"] for x in api.get(sb).json()["data"]] == ["Haircut"]
    # a service is reached only through its own business
    other = create(api)
    assert_problem(api.call("PUT", f"{B}/{other['id']}/services/{s2['id']}",
                            json={"name": "x"}), 404)
    assert_problem(api.call("DELETE", f"{B}/{other['id']}/services/{s2['id']}"), 404)


def test_create_is_idempotent_with_a_key(api):
    k = {"Idempotency-Key": "biz-" + uuid.uuid4().hex}
    body = biz(name="Idem " + uuid.uuid4().hex[:6])
    r1 = api.post(B, body, headers=k)
    r2 = api.post(B, body, headers=k)
    assert r1.status_code == r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r1.json() == r2.json()
    assert_problem(api.post(B, biz(name="other"), headers=k), 422)
    found = api.get(f"{B}?q={body['name'].split()[1]}").json()["data"]
    assert len(found) == 1


def test_tenant_isolation(api):
    b = create(api)
    s = api.post(f"{B}/{b['id']}/services", {"name": "Tiramisu", "price": 6}).json()
    other = api.other_key
    assert_problem(api.get(f"{B}/{b['id']}", key=other), 404)
    assert_problem(api.call("PUT", f"{B}/{b['id']}", json=biz(), key=other), 404)
    assert_problem(api.get(f"{B}/{b['id']}/services", key=other), 404)
    assert_problem(api.post(f"{B}/{b['id']}/services", {"name": "x"}, key=other), 404)
    assert_problem(api.call("PUT", f"{B}/{b['id']}/services/{s['id']}", json={"name": "x"},
                            key=other), 404)
    assert_problem(api.call("DELETE", f"{B}/{b['id']}/services/{s['id']}", key=other), 404)
    listed = api.get(f"{B}?limit=200", key=other)
    assert listed.status_code == 200 and all(x["id"] != b["id"] for x in listed.json()["data"])
    assert api.get(f"{B}/{b['id']}").status_code == 200


def test_search_ranks_by_text_then_rating(api):
    tag = "zq" + uuid.uuid4().hex[:6]  # a word only this test's businesses hold
    city = "Rankton" + uuid.uuid4().hex[:4]

    def mk(**kw):
        time.sleep(0.003)  # distinct created_at milliseconds: "newest first" is exact
        return create(api, biz(city=city, hours={}, **kw))

    a = mk(name=f"{tag} Pizza Napoli", description="neapolitan", rating=4.1, price_level=2)
    b = mk(name=f"{tag} Pizza Roma", description="roman style", rating=4.8, price_level=3)
    c = mk(name=f"Slice House {tag}", description="pizza by the slice", rating=5.0,
           price_level=1)
    d = mk(name=f"{tag} Pizza Express", description="fast", rating=4.5, price_level=1)
    e = mk(name=f"{tag} Nail Studio", category="beauty_salon", description="manicure",
           rating=4.9, price_level=2)
    r = api.get(f"{B}?q={tag} pizza")
    assert r.status_code == 200, r.text
    ids = [x["id"] for x in r.json()["data"]]
    # the three with "pizza" in the name, best rated first; then the description match
    assert ids[:3] == [b["id"], d["id"], a["id"]]
    assert ids[3] == c["id"] and e["id"] not in ids

    # filters
    got = api.get(f"{B}?q={tag}&category=beauty_salon").json()["data"]
    assert [x["id"] for x in got] == [e["id"]]
    got = api.get(f"{B}?q={tag} pizza&max_price_level=1").json()["data"]
    assert [x["id"] for x in got] == [d["id"], c["id"]]
    got = api.get(f"{B}?q={tag}&min_rating=4.85").json()["data"]
    assert [x["id"] for x in got] == [c["id"], e["id"]]
    got = api.get(f"{B}?city={city.upper()}&limit=50").json()["data"]
    assert {x["id"] for x in got} == {a["id"], b["id"], c["id"], d["id"], e["id"]}
    # without q: newest first
    assert [x["id"] for x in got] == [e["id"], d["id"], c["id"], b["id"], a["id"]]

    # ranked pages follow the rank; unranked pages the keyset
    assert [x["id"] for x in api.all_pages(f"{B}?q={tag} pizza", limit=2)] == ids
    assert [x["id"] for x in api.all_pages(f"{B}?city={city}", limit=2)] == [
        x["id"] for x in got]


def test_list_parameter_errors(api):
    for q in ("min_rating=6", "min_rating=x", "max_price_level=5", "max_price_level=1.5",
              "category=spaceport", "limit=0", "limit=201", "cursor=garbage"):
        assert_problem(api.get(f"{B}?{q}"), 400)
    # a cursor of the unranked list is not one of a ranked search
    page = api.get(f"{B}?limit=1").json()
    if page["next_cursor"]:
        assert_problem(api.get(f"{B}?q=pizza&cursor={page['next_cursor']}"), 400)
