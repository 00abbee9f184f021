"""Durable timers and schedules on the real stack: an `after: 2s` timer fires once, at its
time and not before, also when the engine is killed between the entry and the due time;
a `schedule: {every: 2s}` workflow's singleton instance ticks."""

import time
from datetime import timedelta

from conftest import wait_for
from engine_harness import make_env, producer  # noqa: F401


def start_timer_instance(env, producer, key):
    producer.event(env.topics["flowd_events"], "timer.start", key, {}, id_=f"{key}:start")
    producer.flush()
    rows = wait_for(lambda: env.instances("timer"), 30, what="the timer instance")
    return rows[0][0]


def assert_fired_once(env, iid):
    hist = env.history(iid)
    assert [h[2:5] for h in hist] == [("timer.start", None, "waiting"),
                                      ("flowd.timer.fired", "waiting", "fired")], hist
    entered, fired = hist[0][5], hist[1][5]
    timers = env.q("SELECT id, transition, due_at, fired_at FROM timers "
                   "WHERE instance_id = %s", iid)
    assert len(timers) == 1 and timers[0][1] == "s0" and timers[0][3] is not None, timers
    tid, _, due_at, _ = timers[0]
    assert tid == f"{iid}/1/s0"
    # due 2 s after the entry; the transition happened at or after that, not before
    assert abs((due_at - entered) - timedelta(seconds=2)) < timedelta(milliseconds=500), \
        (entered, due_at)
    assert fired >= due_at - timedelta(milliseconds=20), (fired, due_at)
    assert fired - entered >= timedelta(milliseconds=1900), (entered, fired)
    assert fired - entered < timedelta(seconds=8), (entered, fired)
    # one fired event for it, ever
    assert env.q1("SELECT count(*) FROM outbox WHERE type = 'flowd.timer.fired' AND id = %s",
                  f"timer:{tid}") == 1
    assert env.q("SELECT state, status FROM instances WHERE id = %s", iid) == \
        [("fired", "completed")]
    return entered, fired


def test_engine_after_2s_timer_fires_once(make_env, producer):
    env = make_env(["timer"])
    env.start()
    iid = start_timer_instance(env, producer, f"tm-{env.tag}")
    wait_for(lambda: env.q("SELECT state FROM instances WHERE id = %s", iid) == [("fired",)],
             15, what="the timer to fire")
    time.sleep(1.5)  # nothing more happens
    assert_fired_once(env, iid)


def test_engine_timer_fires_once_across_engine_restart(make_env, producer):
    env = make_env(["timer"])
    proc = env.start(instance_id=f"{env.tag}-engine")
    iid = start_timer_instance(env, producer, f"tr-{env.tag}")
    proc.kill9()  # after the entry, before the due time
    killed = time.monotonic()
    entered_rows = env.history(iid)
    assert len(entered_rows) == 1, entered_rows
    proc.start()
    proc.wait_ready()
    restarted = time.monotonic() - killed
    wait_for(lambda: env.q("SELECT state FROM instances WHERE id = %s", iid) == [("fired",)],
             30, what="the timer to fire after the restart")
    time.sleep(1.5)
    assert_fired_once(env, iid)
    print(f"restart took {restarted:.2f}s")


def test_engine_schedule_every_2s_ticks(make_env):
    env = make_env(["ticker"])
    env.start()
    t0 = time.monotonic()

    def ticks():
        rows = env.q("SELECT h.created_at FROM history h JOIN instances i ON i.id = h.instance_id "
                     "WHERE i.workflow = 'ticker' AND h.event_type = 'flowd.schedule.tick' "
                     "ORDER BY h.seq")
        return rows if len(rows) >= 3 else None
    try:
        rows = wait_for(ticks, 12, what="three ticks (the creating one and two more)")
    except AssertionError as e:
        raise AssertionError(f"{e}\nschedules: {env.q('SELECT * FROM schedules')}\n"
                             f"instances: {env.instances('ticker')}\n{env.logs()}") from None
    elapsed = time.monotonic() - t0
    insts = env.instances("ticker")
    assert len(insts) == 1, insts  # the singleton
    iid, key, tenant, state, status, ctx, _ = insts[0]
    assert (key, tenant, state, status) == ("ticker", "system", "ticking", "running"), insts
    assert ctx["ticks"] >= 2, ctx  # the first tick creates, the later ones advance it
    gaps = [b[0] - a[0] for a, b in zip(rows, rows[1:])]
    assert all(g >= timedelta(milliseconds=1800) for g in gaps), gaps
    assert env.q("SELECT tenant, workflow, every_ms FROM schedules") == \
        [("system", "ticker", 2000)]
    print(f"three ticks after {elapsed:.1f}s, gaps {gaps}")
