"""The shipped appointment workflow end to end on the real stack: request -> confirm (slot
24 h + 3 s ahead) -> the `at: slot - 24h` reminder timer fires ~3 s later -> the llm
activity (built-in local provider) -> appointment.reminder_due through the outbox onto
Kafka -> the follow-up timer (slot + 2 h) armed."""

import json
from datetime import timedelta

from conftest import wait_for
from engine_harness import make_env, now_utc, producer, read_topic, rfc3339  # noqa: F401


def test_engine_appointment_request_confirm_remind_follow_up(make_env, producer, stack):
    env = make_env(["appointment"])  # workflows/appointment.yaml, the shipped file
    env.start()
    key = f"appt-{env.tag}"
    topic = env.topics["appointment_events"]
    producer.event(topic, "appointment.requested", key,
                   {"customer": "Ada", "service": "haircut", "contact": "ada@example.com"},
                   id_=f"{key}:requested")
    producer.flush()

    def instance():
        rows = env.instances("appointment")
        return rows[0] if rows else None
    inst = wait_for(instance, 30, what="the appointment instance")
    iid = inst[0]
    assert inst[1:5] == (key, "default", "requested", "running"), inst
    assert inst[5]["customer"] == "Ada" and inst[5]["reminders"] == 0

    slot = now_utc() + timedelta(hours=24, seconds=3)
    slot_s = rfc3339(slot)
    producer.event(topic, "appointment.confirmed", key, {"slot": slot_s},
                   id_=f"{key}:confirmed")
    producer.flush()
    due = slot - timedelta(hours=24)

    def reminder_row():
        rows = env.q("SELECT id, aggregatetype, aggregateid, payload, headers, published_at "
                     "FROM outbox WHERE type = 'appointment.reminder_due'")
        return rows[0] if rows and rows[0][5] is not None else None
    try:
        out = wait_for(reminder_row, 45, what="appointment.reminder_due published")
    except AssertionError as e:
        raise AssertionError(f"{e}\ninstance: {instance()}\nhistory: {env.history(iid)}\n"
                             f"activities: {env.q('SELECT * FROM activities')}\n"
                             f"{env.logs()}") from None

    hist = env.history(iid)
    steps = [(h[2], h[3], h[4]) for h in hist]
    assert steps[:3] == [("appointment.requested", None, "requested"),
                         ("appointment.confirmed", "requested", "confirmed"),
                         ("flowd.timer.fired", "confirmed", "reminded")], steps
    assert ("flowd.activity.completed", "reminded", "reminded") in steps[3:], steps
    assert [h[0] for h in hist] == list(range(1, len(hist) + 1))
    # the reminder fired at its time (slot - 24 h), not before
    fired_at = hist[2][5]
    assert fired_at >= due - timedelta(milliseconds=50), (fired_at, due)
    assert fired_at - hist[1][5] < timedelta(seconds=10), (hist[1][5], fired_at)

    # the llm activity ran once and its result is in the context
    acts = env.q("SELECT call, status, result, idempotency_key, attempt FROM activities "
                 "WHERE instance_id = %s", iid)
    assert len(acts) == 1 and acts[0][0] == "llm" and acts[0][1] == "completed", acts
    inst = instance()
    ctx = inst[5]
    assert inst[3:5] == ("reminded", "running"), inst
    assert ctx["reminders"] == 1 and ctx["slot"] == slot_s, ctx
    assert isinstance(ctx["reminder_text"], str) and ctx["reminder_text"], ctx

    # the emitted event: outbox row, then Kafka
    ob_id, ob_topic, ob_key, payload, headers, _ = out
    assert ob_key == key
    assert payload == {"text": ctx["reminder_text"], "contact": "ada@example.com",
                       "slot": slot_s}, payload
    recs = read_topic(stack.kafka_bootstrap, ob_topic,
                      until=lambda rs: any(x["headers"].get("ce_id") == ob_id for x in rs),
                      timeout=30)
    got = [r for r in recs if r["headers"].get("ce_id") == ob_id]
    assert len(got) == 1, f"{ob_id} on {ob_topic}: {recs[-5:]}"
    r = got[0]
    assert r["key"] == key and r["headers"]["ce_type"] == "appointment.reminder_due"
    assert r["headers"]["ce_subject"] == key and r["headers"]["ce_tenant"] == "default"
    assert json.loads(r["value"]) == payload

    # follow-up armed: the reminded entry's `at: slot + 2h` timer, unfired; the 48 h
    # expiry timer of `requested` was cancelled when the instance left it
    timers = env.q("SELECT transition, due_at, fired_at, entry_seq FROM timers "
                   "WHERE instance_id = %s ORDER BY entry_seq, transition", iid)
    pending = [t for t in timers if t[2] is None]
    assert len(pending) == 1, timers
    assert pending[0][0] == "s0"
    assert abs(pending[0][1] - (slot + timedelta(hours=2))) < timedelta(milliseconds=2), \
        (pending[0][1], slot)

    # lifecycle: flowd.instance.started for this instance on workflow.events
    life = read_topic(stack.kafka_bootstrap, env.topics["workflow_events"],
                      until=lambda rs: any(x["headers"].get("ce_type") ==
                                           "flowd.instance.started" for x in rs), timeout=30)
    assert any(x["headers"].get("ce_type") == "flowd.instance.started" and x["key"] == key
               for x in life), life[:5]
