"""The directory's `call: flowd.*` activities through the engine (engine/activities_directory.c,
tests/system/workflows/directory_flow.yaml): flowd.directory.search returns the ranked top 3
with their services, flowd.memory.search the user's best facts, flowd.business.update
applies hours and menu changes -- twice, leaving one state -- only when the instance's
context says the caller is an admin; everything within the instance's tenant, on the rows
the REST API wrote."""

import time
import uuid

import pytest
import requests

from conftest import wait_for
from engine_harness import make_env, producer  # noqa: F401

WF = "directory_flow"


class Api:
    def __init__(self, proc, tenant):
        r = proc.run("keys", "create", "--tenant", tenant, "--name", "dir", "--scopes", "write")
        assert r.returncode == 0, r.stderr
        self.url, self.key = proc.url, r.stdout.strip()

    def post(self, path, body):
        r = requests.post(self.url + "/api/v1" + path, json=body, timeout=10,
                          headers={"Authorization": f"Bearer {self.key}"})
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
def world(make_env):
    env = make_env([WF])
    proc = env.start()
    tenant = "dir-" + uuid.uuid4().hex[:8]
    api = Api(proc, tenant)
    other = "dir-" + uuid.uuid4().hex[:8]
    Api(proc, other)  # creates the tenant

    def biz(name, rating, desc="", city="Springfield", category="restaurant"):
        time.sleep(0.003)
        return api.post("/businesses", {"name": name, "category": category, "city": city,
                                        "description": desc, "rating": rating,
                                        "hours": {"monday": {"open": "09:00",
                                                             "close": "17:00"}}})
    b = {
        "roma": biz("Pizza Roma", 4.2),
        "napoli": biz("Pizza Napoli", 4.9),
        "slice": biz("Slice Corner", 5.0, "pizza by the slice"),
        "express": biz("Pizza Express", 4.6),
        "far": biz("Pizza Faraway", 5.0, city="Shelbyville"),
        "salon": biz("Hair Studio", 4.9, "cuts and colour", category="beauty_salon"),
    }
    for name, price in (("Margherita", 9), ("Marinara", 8), ("Diavola", 11)):
        api.post(f"/businesses/{b['napoli']['id']}/services",
                 {"name": name, "price": price, "currency": "EUR"})
    user = "user-" + uuid.uuid4().hex[:6]
    facts = [api.post("/memory", {"user_id": user, "fact": f})
             for f in ("Is vegetarian", "Loves pizza with extra basil, pizza every Friday",
                       "Prefers pizza places near the station", "Has a cat")]
    return env, tenant, other, b, user, facts


def run(env, producer, tenant, data):
    key = "dir-" + uuid.uuid4().hex[:8]
    producer.event(env.topics["flowd_events"], "directory_flow.start", key, data,
                   tenant=tenant)
    producer.flush()

    def finished():
        rows = env.q("SELECT state, status, context FROM instances WHERE workflow = %s "
                     "AND key = %s AND status <> 'running'", WF, key)
        return rows[0] if rows else None
    try:
        wait_for(finished, 30, what="the directory flow to finish")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{env.q('SELECT call, status, error, result FROM activities')}"
                             f"\n{env.logs()}") from None
    return finished()


def services(env, business_id):
    return env.q("SELECT name, price::float8, currency FROM services WHERE business_id = %s "
                 "ORDER BY lower(name)", business_id)


def test_search_memory_and_admin_update(world, producer):
    env, tenant, _, b, user, facts = world
    state, status, ctx = run(env, producer, tenant, {
        "scope": "admin", "business_id": b["napoli"]["id"], "user": user, "q": "pizza",
        "mq": "pizza", "city": "springfield"})
    assert (state, status) == ("done", "completed"), ctx

    top = ctx["found"]["businesses"]
    # text rank first (the name matches outrank the description match), then rating;
    # Shelbyville is filtered out by city
    assert [x["name"] for x in top] == ["Pizza Napoli", "Pizza Express", "Pizza Roma"]
    napoli = top[0]
    assert [s["name"] for s in napoli["services"]] == ["Diavola", "Margherita", "Marinara"]
    assert napoli["hours"] == {"monday": {"open": "09:00", "close": "17:00"}}

    got = [f["id"] for f in ctx["facts"]["facts"]]
    assert got == [facts[1]["id"], facts[2]["id"]]  # "pizza" twice ranks first

    first, second = ctx["updated"]["business"], ctx["updated_again"]["business"]
    hours = {"monday": {"open": "11:00", "close": "22:00"},
             "sunday": {"open": "12:00", "close": "20:00"}}
    assert first["hours"] == hours
    assert [(s["name"], s["price"]) for s in first["services"]] == [
        ("Calzone", 13.5), ("Diavola", 11), ("Margherita", 10)]
    # the same update again: the same state (ids kept; only timestamps move)
    strip = lambda x: {k: v for k, v in x.items() if k != "updated_at"}  # noqa: E731
    assert strip({**second, "services": None}) == strip({**first, "services": None})
    assert [strip(s) for s in second["services"]] == [strip(s) for s in first["services"]]
    assert services(env, b["napoli"]["id"]) == [("Calzone", 13.5, "EUR"),
                                               ("Diavola", 11.0, "EUR"),
                                               ("Margherita", 10.0, "EUR")]
    # what the API serves is what the workflow wrote
    r = requests.get(f"{env.procs[0].url}/api/v1/businesses/{b['napoli']['id']}", timeout=5,
                     headers={"Authorization": f"Bearer {Api(env.procs[0], tenant).key}"})
    assert r.json()["hours"] == hours


def test_update_refused_without_admin_scope(world, producer):
    env, tenant, _, b, user, _ = world
    for scope in ("write", None):
        data = {"business_id": b["roma"]["id"], "user": user, "q": "pizza", "mq": "cat"}
        if scope:
            data["scope"] = scope
        state, status, ctx = run(env, producer, tenant, data)
        assert (state, status) == ("refused", "completed"), ctx
        assert "admin" in ctx["refusal"]
        assert "updated" not in ctx or ctx["updated"] is None
    assert services(env, b["roma"]["id"]) == []
    row = env.q("SELECT hours FROM businesses WHERE id = %s", b["roma"]["id"])
    assert row == [({"monday": {"open": "09:00", "close": "17:00"}},)]


def test_other_tenant_sees_nothing(world, producer):
    env, _, other, b, user, _ = world
    state, status, ctx = run(env, producer, other, {
        "scope": "admin", "business_id": b["napoli"]["id"], "user": user, "q": "pizza",
        "mq": "pizza"})
    # the other tenant's instance finds no business and no fact, and cannot update one
    assert (state, status) == ("failed", "failed"), ctx
    assert ctx["found"]["businesses"] == [] and ctx["facts"]["facts"] == []
    err = env.q("SELECT a.error FROM activities a JOIN instances i ON i.id = a.instance_id "
                "WHERE i.tenant = %s AND a.call = 'flowd.business.update'", other)
    assert len(err) == 1 and "not_found" in str(err[0][0]), err
    assert services(env, b["napoli"]["id"])[0][0] == "Diavola"
