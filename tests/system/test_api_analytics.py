"""/api/v1/stats and /api/v1/analytics/* (api/routes_analytics.c), and the periodic
flowd.analytics.aggregate event on business.analytics (engine/analytics.c).

Seeding. Workflow outcomes come from real instances run through the engine (a small flow
finished or cancelled through the API). Transcript rows, conversation instances in given
states (escalated, ENDED), dead letters, timers and activities are inserted directly into
the scratch database: the engine path cannot produce exact token counts, costs and
latencies (they come from an LLM call), nor an escalation or a parked timer on demand, and
the analytics read only these tables. Instance ids inserted here are UUIDv7, as the
engine makes them (the range queries rely on it).

Tenant A has everything, tenant B one message and one dead letter of its own (and must see
none of A's numbers), tenant C only the rows of the aggregate-event test."""

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml

from api_wait_harness import BASE, ApiEnv, assert_problem
from engine_harness import EngineEnv, read_topic

FLOW = """workflow: {name}
version: 1
initial: waiting
states:
  waiting:
    transitions:
      - event: finish
        to: done
  done:
    final: true
"""


class AnalyticsEnv(EngineEnv):
    """EngineEnv whose processes emit an aggregate every second."""

    def config(self, port, instance_id, settings=None, roles=None):
        cfg = yaml.safe_load(super().config(port, instance_id, settings, roles))
        cfg["analytics"] = {"interval": "1s"}
        return yaml.safe_dump(cfg, sort_keys=False)


def uuid7(ms=None):
    ms = int(time.time() * 1000) if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | \
        (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def today():
    return datetime.now(timezone.utc).date()


def sql(env, text, *params):
    with psycopg.connect(env.db_url, autocommit=True) as conn:
        conn.execute(text, params)


def conversation(env, tenant, key, state, status, context, finished_after=None):
    iid = uuid7()
    sql(env, "INSERT INTO instances (id, tenant, workflow, version, key, state, status, "
             "context, machine, finished_at) VALUES (%s, %s, 'conversation', 1, %s, %s, %s, "
             "%s, '{}', now() + %s::interval)",
        iid, tenant, key, state, status, json.dumps(context),
        None if finished_after is None else f"{finished_after} seconds")
    return iid


def message(env, tenant, conv, seq, role, agent=None, provider=None, model=None, tin=None,
            tout=None, cost=None, latency=None, at="now()"):
    sql(env, "INSERT INTO messages (tenant, conversation, seq, role, content, agent, provider, "
             "model, tokens_in, tokens_out, cost, latency_ms, created_at) VALUES (%s, %s, %s, "
             f"%s, 'x', %s, %s, %s, %s, %s, %s, %s, {at})",
        tenant, conv, seq, role, agent, provider, model, tin, tout, cost, latency)


def seed_tenant_a(env, a):
    c_active = conversation(env, a, "c-active", "CHAT", "running", {"agent": "sales"})
    conversation(env, a, "c-esc", "CHAT", "running", {"escalated": True})
    conversation(env, a, "c-ended", "ENDED", "completed", {}, finished_after=10)
    conversation(env, a, "c-endstate", "ENDED", "running", {})
    message(env, a, "c-active", 1, "user")
    message(env, a, "c-active", 2, "assistant", "sales", "local", "m1", 10, 20, "0.001", 100)
    message(env, a, "c-esc", 1, "user")
    message(env, a, "c-esc", 2, "assistant", "sales", "local", "m1", 30, 40, "0.002", 300)
    message(env, a, "c-ended", 1, "assistant", "support", "openai", "gpt", 1, 2, "0.5", 50)
    message(env, a, "c-active", 3, "assistant", "sales", "local", "m1", 5, 5, "0.004", 200,
            at="(date_trunc('day', now() AT TIME ZONE 'UTC') - interval '3 days' "
               "+ interval '12 hours') AT TIME ZONE 'UTC'")
    message(env, a, "c-active", 4, "user", at="now() - interval '400 days'")
    # one entry into ERROR_RECOVERY of a conversation of agent sales
    sql(env, "INSERT INTO history (instance_id, seq, tenant, event_type, from_state, to_state) "
             "VALUES (%s, 1, %s, 'x', 'CHAT', 'ERROR_RECOVERY')", c_active, a)
    sql(env, "INSERT INTO dead_letters (tenant, topic, reason) VALUES (%s, 't', 'r'), "
             "(%s, 't', 'r')", a, a)
    sql(env, "UPDATE dead_letters SET replayed_at = now() WHERE id = (SELECT id FROM "
             "dead_letters WHERE tenant = %s LIMIT 1)", a)
    # parked far in the future, so the poller never fires them during the test
    sql(env, "INSERT INTO timers (id, tenant, instance_id, key, workflow, transition, entry_seq, "
             "due_at, fired_at) VALUES ('t1', %s, %s, 'k', 'w', 'x', 1, 'infinity', NULL), "
             "('t2', %s, %s, 'k', 'w', 'x', 1, now(), now())", a, c_active, a, c_active)
    # pending: next attempt never due; running: not stale, so the worker never re-claims it
    for i, (status, nxt, upd) in enumerate([("pending", "infinity", "now()"),
                                            ("running", "now()", "now() + interval '1 day'"),
                                            ("failed", "now()", "now()"),
                                            ("failed", "now()", "now()")]):
        sql(env, "INSERT INTO activities (id, tenant, instance_id, key, entry_seq, action_ref, "
                 "call, retry, status, next_attempt_at, updated_at, idempotency_key) VALUES "
                 f"(%s, %s, %s, 'k', 1, {i}, 'http', '{{}}', %s, '{nxt}', {upd}, "
                 f"%s::text || ':{i}:1')", f"a{i}", a, c_active, status, c_active)


def run_flow(api):
    """3 instances of a fresh workflow through the engine: 2 finished, 1 cancelled."""
    name = "flow-" + uuid.uuid4().hex[:8]
    r = api.put_yaml(name, FLOW.format(name=name))
    assert r.status_code == 201, r.text
    for i in range(3):
        r = api.post(f"{BASE}/workflows/{name}/instances", {"key": f"{name}-{i}"})
        assert r.status_code == 201, r.text
        inst = r.json()
        if i < 2:
            r = api.post(f"{BASE}/instances/{inst['id']}/signal?wait=10s", {"type": "finish"})
            assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        else:
            r = api.post(f"{BASE}/instances/{inst['id']}/cancel?wait=10s")
            assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    return name


@pytest.fixture(scope="module")
def an(stack, tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    a, b, c = f"an-a-{tag}", f"an-b-{tag}", f"an-c-{tag}"
    env = AnalyticsEnv(stack, tmp_path_factory.mktemp("analytics"), ["order"],
                       settings={"engine": {"default_tenant": a}})
    env.prepare()
    proc = env.start()
    api = ApiEnv(env, proc, a, b)
    api.tenant_c = c
    api.key_c = api.make_key(c, "read")
    api.flow = run_flow(api)
    seed_tenant_a(env, a)
    message(env, b, "b-conv", 1, "user")
    sql(env, "INSERT INTO dead_letters (tenant, topic, reason) VALUES (%s, 't', 'r')", b)
    yield api
    env.cleanup()


def get(api, path, key=None):
    r = api.get(path, key=key)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_stats_counts_the_tenant(an):
    s = get(an, f"{BASE}/stats")
    assert s["tenant"] == an.tenant_a
    inst = s["instances"]
    assert inst["total"] == 7
    assert inst["by_status"] == {"running": 3, "completed": 3, "failed": 0, "cancelled": 1}
    assert inst["by_workflow"] == {
        "conversation": {"total": 4, "running": 3, "completed": 1, "failed": 0, "cancelled": 0},
        an.flow: {"total": 3, "running": 0, "completed": 2, "failed": 0, "cancelled": 1}}
    assert s["conversations"] == {"total": 4, "active": 1, "ended": 2, "escalated": 1}
    assert s["usage"]["today"] == {"messages": 5, "user_messages": 2, "assistant_messages": 3,
                                   "tokens_in": 41, "tokens_out": 62,
                                   "cost": pytest.approx(0.503)}
    assert s["usage"]["total"] == {"messages": 7, "user_messages": 3, "assistant_messages": 4,
                                   "tokens_in": 46, "tokens_out": 67,
                                   "cost": pytest.approx(0.507)}
    assert s["dead_letters"] == {"unreplayed": 1}
    assert s["timers"] == {"pending": 1}
    assert s["activities"] == {"pending": 1, "running": 1, "failed": 2}
    assert isinstance(s["outbox"]["backlog"], int) and s["outbox"]["backlog"] >= 0


def test_stats_of_another_tenant_show_none_of_a(an):
    s = get(an, f"{BASE}/stats", key=an.other_key)
    assert s["tenant"] == an.tenant_b
    assert s["instances"] == {"total": 0, "by_status": {"running": 0, "completed": 0,
                                                        "failed": 0, "cancelled": 0},
                              "by_workflow": {}}
    assert s["conversations"] == {"total": 0, "active": 0, "ended": 0, "escalated": 0}
    assert s["usage"]["total"] == {"messages": 1, "user_messages": 1, "assistant_messages": 0,
                                   "tokens_in": 0, "tokens_out": 0, "cost": 0}
    assert s["dead_letters"] == {"unreplayed": 1}
    assert s["timers"] == {"pending": 0}
    assert s["activities"] == {"pending": 0, "running": 0, "failed": 0}
    assert s["outbox"] == {"backlog": 0}


def test_usage_daily_default_range(an):
    u = get(an, f"{BASE}/analytics/usage/daily")
    t = today()
    assert u["to"] == t.isoformat() and u["from"] == (t - timedelta(days=29)).isoformat()
    days = u["days"]
    assert [d["date"] for d in days] == [(t - timedelta(days=29 - i)).isoformat()
                                         for i in range(30)]
    by_date = {d["date"]: d for d in days}
    assert by_date[t.isoformat()] == {
        "date": t.isoformat(), "conversations_started": 4, "messages": 5, "user_messages": 2,
        "assistant_messages": 3, "tokens_in": 41, "tokens_out": 62,
        "cost": pytest.approx(0.503), "by_model": [
            {"provider": "local", "model": "m1", "replies": 2, "tokens_in": 40,
             "tokens_out": 60, "cost": pytest.approx(0.003)},
            {"provider": "openai", "model": "gpt", "replies": 1, "tokens_in": 1,
             "tokens_out": 2, "cost": pytest.approx(0.5)}]}
    d3 = (t - timedelta(days=3)).isoformat()
    assert by_date[d3] == {
        "date": d3, "conversations_started": 0, "messages": 1, "user_messages": 0,
        "assistant_messages": 1, "tokens_in": 5, "tokens_out": 5, "cost": pytest.approx(0.004),
        "by_model": [{"provider": "local", "model": "m1", "replies": 1, "tokens_in": 5,
                      "tokens_out": 5, "cost": pytest.approx(0.004)}]}
    quiet = [d for d in days if d["date"] not in (t.isoformat(), d3)]
    assert all(d["messages"] == 0 and d["by_model"] == [] and d["cost"] == 0 for d in quiet)
    assert u["totals"] == {
        "conversations_started": 4, "messages": 6, "user_messages": 2,
        "assistant_messages": 4, "tokens_in": 46, "tokens_out": 67,
        "cost": pytest.approx(0.507), "by_model": [
            {"provider": "local", "model": "m1", "replies": 3, "tokens_in": 45,
             "tokens_out": 65, "cost": pytest.approx(0.007)},
            {"provider": "openai", "model": "gpt", "replies": 1, "tokens_in": 1,
             "tokens_out": 2, "cost": pytest.approx(0.5)}]}


def test_usage_daily_explicit_range_and_isolation(an):
    t = today().isoformat()
    u = get(an, f"{BASE}/analytics/usage/daily?from={t}&to={t}")
    assert u["from"] == t and u["to"] == t and len(u["days"]) == 1
    assert u["totals"]["messages"] == 5
    b = get(an, f"{BASE}/analytics/usage/daily?from={t}&to={t}", key=an.other_key)
    assert b["totals"] == {"conversations_started": 0, "messages": 1, "user_messages": 1,
                           "assistant_messages": 0, "tokens_in": 0, "tokens_out": 0,
                           "cost": 0, "by_model": []}


def test_agents_performance(an):
    p = get(an, f"{BASE}/analytics/agents/performance")
    assert p["agents"] == [
        {"agent": "sales", "replies": 3, "conversations": 2,
         "latency_ms": {"avg": 200, "p50": 200, "p95": 290}, "tokens_in": 45,
         "tokens_out": 65, "cost": pytest.approx(0.007), "escalations": 1, "errors": 1},
        {"agent": "support", "replies": 1, "conversations": 1,
         "latency_ms": {"avg": 50, "p50": 50, "p95": 50}, "tokens_in": 1, "tokens_out": 2,
         "cost": pytest.approx(0.5), "escalations": 0, "errors": 0}]
    assert get(an, f"{BASE}/analytics/agents/performance", key=an.other_key)["agents"] == []


def test_workflows(an):
    w = get(an, f"{BASE}/analytics/workflows")
    rows = {x["workflow"]: x for x in w["workflows"]}
    assert set(rows) == {"conversation", an.flow}
    flow = rows[an.flow]
    hist = an.env.q1("SELECT count(*) FROM history h JOIN instances i ON i.id = h.instance_id "
                     "WHERE i.tenant = %s AND i.workflow = %s", an.tenant_a, an.flow)
    assert hist >= 6  # a start and a finish/cancel per instance
    assert {k: flow[k] for k in ("started", "completed", "failed", "cancelled", "running",
                                 "transitions")} == {
        "started": 3, "completed": 2, "failed": 0, "cancelled": 1, "running": 0,
        "transitions": hist}
    assert 0 <= flow["duration_seconds"]["avg"] <= flow["duration_seconds"]["p95"] < 60
    conv = rows["conversation"]
    assert conv == {"workflow": "conversation", "started": 4, "completed": 1, "failed": 0,
                    "cancelled": 0, "running": 3,
                    "duration_seconds": {"avg": pytest.approx(10, abs=0.5),
                                         "p95": pytest.approx(10, abs=0.5)},
                    "transitions": 1}
    old = (today() - timedelta(days=100)).isoformat()
    assert get(an, f"{BASE}/analytics/workflows?from={old}&to={old}")["workflows"] == []
    assert get(an, f"{BASE}/analytics/workflows", key=an.other_key)["workflows"] == []


@pytest.mark.parametrize("path", ["/analytics/usage/daily", "/analytics/agents/performance",
                                  "/analytics/workflows"])
@pytest.mark.parametrize("query", ["from=2026-13-01", "to=yesterday", "from=2024-02-30",
                                   "from=2024-03-02&to=2024-03-01",
                                   "from=2023-01-01&to=2024-01-02", "from=20240101"])
def test_bad_ranges_are_400(an, path, query):
    assert_problem(an.get(f"{BASE}{path}?{query}"), 400)


def test_366_days_is_the_limit(an):
    u = get(an, f"{BASE}/analytics/usage/daily?from=2024-01-01&to=2024-12-31")
    assert len(u["days"]) == 366


@pytest.mark.parametrize("path", ["/stats", "/analytics/usage/daily",
                                  "/analytics/agents/performance", "/analytics/workflows"])
def test_auth(an, path):
    # every key holds read (scopes are cumulative), so these routes have no 403 case
    assert_problem(an.get(f"{BASE}{path}", key=""), 401)
    assert_problem(an.get(f"{BASE}{path}", key="fk_0000000000000000_nope"), 401)
    assert an.get(f"{BASE}{path}", key=an.read_key).status_code == 200


def test_aggregate_event_on_business_analytics(an):
    c = an.tenant_c
    # created_at a few seconds ahead: the rows land in a period that ends after they
    # commit, so the one event of that period has all of them. One timestamp for all
    # three: now() per statement could straddle a period boundary and split them.
    with psycopg.connect(an.env.db_url) as conn:
        ahead = conn.execute("SELECT (now() + interval '3 seconds')::text").fetchone()[0]
    at = f"'{ahead}'::timestamptz"
    message(an.env, c, "c-conv", 1, "user", at=at)
    message(an.env, c, "c-conv", 2, "user", at=at)
    message(an.env, c, "c-conv", 3, "assistant", "sales", "local", "m1", 7, 9, "0.25", 10, at=at)
    # a second process with the timers role: each period must still be emitted once
    second = an.env.start(roles="api,timers")
    topic = an.env.topics["business_analytics"]
    bootstrap = an.env.stack.kafka_bootstrap

    def for_c(recs):
        return [r for r in recs if r["key"] == c]
    recs = read_topic(bootstrap, topic, until=lambda recs: len(for_c(recs)) >= 1, timeout=30)
    assert for_c(recs), f"no aggregate for {c}\n{an.env.logs()}"
    time.sleep(3)  # later periods: C had no more activity, so no more events for it
    recs = read_topic(bootstrap, topic, timeout=15)
    second.stop()
    mine = for_c(recs)
    assert len(mine) == 1, mine
    ev = mine[0]
    h = ev["headers"]
    assert h["ce_type"] == "flowd.analytics.aggregate" and h["ce_subject"] == c
    assert h["ce_tenant"] == c and h["ce_source"] == "flowd" and h["ce_specversion"] == "1.0"
    data = json.loads(ev["value"])
    assert h["ce_id"].startswith(f"analytics:{c}:")
    start = datetime.fromisoformat(data.pop("period_start").replace("Z", "+00:00"))
    end = datetime.fromisoformat(data.pop("period_end").replace("Z", "+00:00"))
    assert end - start == timedelta(seconds=1)
    assert h["ce_id"] == f"analytics:{c}:{int(start.timestamp() * 1000)}"
    assert data == {"tenant": c, "interval_seconds": 1, "instances_started": 0,
                    "instances_completed": 0, "instances_failed": 0, "instances_cancelled": 0,
                    "conversations_started": 0, "messages": 3, "user_messages": 2,
                    "assistant_messages": 1, "tokens_in": 7, "tokens_out": 9,
                    "cost": pytest.approx(0.25), "dead_letters": 0}
    # one event per (tenant, period) across both processes
    ids = [r["headers"]["ce_id"] for r in recs]
    assert len(ids) == len(set(ids)), ids
    assert any(r["key"] == an.tenant_a for r in recs)
