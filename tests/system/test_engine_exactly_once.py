"""Exactly-once under faults (issue 4 acceptance): counter.yaml instances fed count.tick
events, some produced twice with the same ce_id, while flowd is killed with SIGKILL,
PostgreSQL is stopped with -m immediate, the broker restarts, or a second engine process
joins the group and the first is killed. Every counter must end at exactly the number of
distinct ticks, each instance's history gap-free with no event applied twice, and the
inbox must hold one row per distinct event id.

Scale: 200 keys x 50 ticks (10,200 distinct events plus ~5 % duplicates)."""

import random
import threading
import time

from conftest import wait_for
from engine_harness import (CounterLoad, Disruptor, make_env, pg_stop_immediate,  # noqa: F401
                            producer)

KEYS, TICKS = 200, 50


def run_load_in_thread(load):
    errors = []

    def target():
        try:
            load.run()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, errors


def join_load(t, errors, timeout=300):
    t.join(timeout)
    assert not t.is_alive(), "the producer did not finish"
    if errors:
        raise errors[0]


def assert_counted(load, producer):
    """The independent count: records delivered (duplicates included) vs distinct ids."""
    assert load.duplicates > 0, "the load produced no duplicate: it proves nothing"
    assert producer.delivered == len(load.ids) + load.duplicates, \
        (producer.delivered, len(load.ids), load.duplicates)
    assert producer.delivered > KEYS * TICKS, producer.delivered
    # every duplicate was delivered and yet every counter is exact: the inbox rejected them
    load.assert_exact()


def test_engine_exactly_once_under_kill_9(make_env, producer):
    env = make_env(["counter"])
    proc = env.start(instance_id=f"{env.tag}-engine")
    load = CounterLoad(env, producer, keys=KEYS, ticks=TICKS, dup_rate=0.05, seconds=40)
    rng = random.Random()
    stop = threading.Event()

    def crash(i):
        proc.kill9()
        time.sleep(rng.uniform(0.0, 0.3))
        proc.start()
        # every fourth kill lands during the next start-up, before readiness
        if i % 4 != 2:
            proc.wait_ready(90)
        else:
            time.sleep(rng.uniform(0.2, 0.8))

    killer = Disruptor(crash, times=10, every=(1.0, 3.0), stop=stop)
    killer.start()
    try:
        load.run()
    finally:
        stop.set()
        killer.join(300)
    assert killer.error is None, f"{killer.error!r}\n{env.logs()}"
    if not proc.alive():
        proc.start()
    proc.wait_ready(90)
    assert proc.kills >= 10, proc.kills
    load.wait_all_counted(180)
    assert_counted(load, producer)
    print(f"kill -9: {proc.kills} kills, {producer.delivered} records "
          f"({load.duplicates} duplicates)")


def test_engine_exactly_once_across_postgres_immediate_restart(make_env, producer, stack):
    env = make_env(["counter"])
    proc = env.start(instance_id=f"{env.tag}-engine")
    load = CounterLoad(env, producer, keys=KEYS, ticks=TICKS, dup_rate=0.05, seconds=30)
    t, errors = run_load_in_thread(load)
    wait_for(lambda: load.progress >= 0.3, 120, what="30 % of the load produced")
    down = False
    try:
        pg_stop_immediate(stack)
        down = True
        # readiness follows the database down while the engine waits
        wait_for(lambda: proc.readyz()[0] == 503, 30, what="/readyz 503 with postgres down")
        time.sleep(2)
    finally:
        stack.script("pg.sh", "start")
    assert down
    join_load(t, errors)
    load.wait_all_counted(180)
    assert proc.alive(), f"flowd exited instead of pausing:\n{proc.log_tail()}"
    assert proc.starts == 1
    assert_counted(load, producer)


def test_engine_exactly_once_across_broker_restart(make_env, producer, stack):
    env = make_env(["counter"])
    proc = env.start(instance_id=f"{env.tag}-engine")
    load = CounterLoad(env, producer, keys=KEYS, ticks=TICKS, dup_rate=0.05, seconds=30)
    t, errors = run_load_in_thread(load)
    wait_for(lambda: load.progress >= 0.3, 120, what="30 % of the load produced")
    try:
        stack.script("kafka.sh", "stop")
        time.sleep(2)
    finally:
        stack.script("kafka.sh", "start")
    join_load(t, errors)
    load.wait_all_counted(180)
    assert proc.alive(), f"flowd exited instead of pausing:\n{proc.log_tail()}"
    assert proc.starts == 1
    assert_counted(load, producer)


def test_engine_two_processes_no_duplicated_transition_across_rebalance(make_env, producer):
    # a short session timeout, so the killed static member's partitions move to the
    # survivor within seconds rather than the 30 s default
    env = make_env(["counter"], kafka_extra={"session.timeout.ms": "6000"})
    first = env.start(instance_id=f"{env.tag}-a")
    load = CounterLoad(env, producer, keys=KEYS, ticks=TICKS, dup_rate=0.05, seconds=30)
    t, errors = run_load_in_thread(load)
    wait_for(lambda: load.progress >= 0.25, 120, what="25 % of the load produced")
    second = env.start(instance_id=f"{env.tag}-b")  # rebalance: range splits the partitions
    wait_for(lambda: load.progress >= 0.6, 120, what="60 % of the load produced")
    first.kill9()  # its partitions go to the second process after the session timeout
    join_load(t, errors)
    load.wait_all_counted(180)
    assert second.alive(), second.log_tail()
    assert second.starts == 1
    assert_counted(load, producer)
