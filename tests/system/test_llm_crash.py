"""Acceptance (issue 6): kill -9 of flowd while an LLM call is in flight. After the restart
the turn completes once, and the provider saw at most one extra request carrying the same
idempotency key (`<instance>:<action>:<entry seq>`, engine/llm/README.md).

One `flowd serve` with a fake `openai` provider as the whole chain (no `local` fallback, a
long attempt timeout); the fake holds every request unanswered (fake_llm.hold) until the
first call -- the classification of the user's message -- has reached it. flowd is then
killed with SIGKILL, restarted on the same config, and the fake released. The activity
row left 'running' by the dead process goes back to pending once its timeout (30 s) plus
the worker's grace (30 s) have passed, and runs again under the same key; the rest of the
turn follows."""

import json
import os
import signal

import psycopg
import pytest

from conftest import wait_for, wait_ready
from conv_harness import BASE, start_api
from fake_llm import FakeLLM

ANSWER = {"intent": "book_appointment", "confidence": 0.95, "agent": "beauty_salon",
          "slots": {"service": "haircut", "date": "2030-05-06", "time": "15:00"},
          "slots_json": "{}", "complete": True, "question": "",
          "action": "book_appointment", "reply": "Shall I book a haircut? Yes or no?",
          "input": {"service": "haircut", "slot": "2030-05-06T15:00:00Z"}}


@pytest.fixture
def fake():
    f = FakeLLM()
    yield f
    f.close()


def q(stack, sql, *args):
    with psycopg.connect(stack.pg_url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def extra(fake):
    p = {"kind": "openai", "base_url": fake.base("primary", "openai"), "model": "m",
         "api_key_env": "FAKE_LLM_KEY", "timeout": "60s", "max_retries": 0}
    return ("api:\n  create_wait: 15s\n"
            "llm:\n  chain: [primary]\n  providers:\n    primary: " + json.dumps(p) + "\n")


def test_kill_9_during_an_llm_call_completes_the_turn_once(stack, tmp_path_factory, fake):
    os.environ.setdefault("FAKE_LLM_KEY", "sk-fake")
    fake.script("primary", {"text": json.dumps(ANSWER)})
    fake.hold()
    a = start_api(stack, tmp_path_factory.mktemp("llm-crash"), extra(fake))
    try:
        cid = a.create({"flow_type": "global"})
        r = a.post(f"{BASE}/conversations/{cid}/messages", {"content": "A haircut, please"})
        assert r.status_code == 202, r.text
        wait_for(lambda: fake.requests("primary"), 60, what="the LLM call to reach the fake")
        held = fake.requests("primary")[0]
        key = held["headers"].get("Idempotency-Key")
        inst = q(stack, "SELECT id::text FROM instances WHERE key = %s AND workflow = "
                 "'conversation'", cid)[0][0]
        assert key and key.startswith(inst + ":"), (key, inst)

        a.flowd.stop(signal.SIGKILL)
        a.flowd.start()
        wait_ready(a.flowd, timeout=90)
        fake.release()

        def replied():
            msgs = a.messages(cid)
            users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
            return msgs if users and any(m["role"] == "assistant"
                                         for m in msgs[users[-1]:]) else None
        # the re-run waits for the row's timeout plus the grace: about a minute
        wait_for(replied, 180, interval=1, what="the assistant's reply after the restart")

        # the turn is over: waiting for the user's yes, nothing left to run
        def settled():
            st = q(stack, "SELECT state FROM instances WHERE id = %s", inst)[0][0]
            busy = q(stack, "SELECT count(*) FROM activities WHERE instance_id = %s "
                     "AND status IN ('pending', 'running')", inst)[0][0]
            return st == "CONFIRMATION" and busy == 0
        wait_for(settled, 60, what="the conversation to wait in CONFIRMATION")
        msgs = a.messages(cid)
        turn = msgs[[m["role"] for m in msgs].index("user") + 1:]
        assert [m["content"] for m in turn] == [ANSWER["reply"]], msgs

        reqs = fake.requests("primary")
        keys = [r["headers"].get("Idempotency-Key") for r in reqs]
        assert keys.count(key) == 2, keys  # the held request and its one re-run
        # classification (twice), gathering, proposal; every other call sent once
        assert len(reqs) == 4 and len(set(keys)) == 3, keys
        assert reqs[1]["body"] == held["body"], (reqs[1], held)
        rows = q(stack, "SELECT attempt, status FROM activities WHERE idempotency_key = %s",
                 key)
        assert rows == [(2, "completed")], rows
    finally:
        fake.release()
        a.flowd.stop()
