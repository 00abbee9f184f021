"""`call: flowd.conversation.history` through the engine (engine/activities_history.c,
tests/system/workflows/history_flow.yaml) on transcript rows in PostgreSQL: the latest
user and assistant rows, oldest first, without the newest user message (the one being
answered) and without rows written after the call was scheduled; `turns` and `max_tokens`
(bytes / 4, rounded up) keep the newest; `before_seq` and `conversation` pick the rows;
another tenant's rows are never read; a bad `with` is the final history.invalid. The
end-to-end use by the shipped conversation is in test_conversation_flows.py."""

import uuid

import pytest

from conftest import wait_for
from engine_harness import make_env, producer  # noqa: F401

WF = "history_flow"


def msg(role, content):
    return {"role": role, "content": content}


def tokens(messages):
    return sum((len(m["content"].encode()) + 3) // 4 for m in messages)


@pytest.fixture
def world(make_env):
    env = make_env([WF])
    proc = env.start()
    tenant, other = ("hist-" + uuid.uuid4().hex[:8] for _ in range(2))
    for t in (tenant, other):  # a key creates its tenant
        r = proc.run("keys", "create", "--tenant", t, "--name", "hist", "--scopes", "write")
        assert r.returncode == 0, r.stderr
    conv = "conv-" + uuid.uuid4().hex[:8]
    rows = [(tenant, 1, "assistant", "Hello!"), (tenant, 2, "user", "u1"),
            (tenant, 3, "assistant", "a1"), (tenant, 4, "system", "a system row"),
            (tenant, 5, "user", "x" * 40), (tenant, 6, "assistant", "ÿ" * 10),
            (tenant, 7, "user", "the message being answered"),
            (other, 1, "user", "theirs"), (other, 2, "assistant", "their answer"),
            (other, 3, "user", "their current message")]
    for t, seq, role, content in rows:
        env.q("INSERT INTO messages (tenant, conversation, seq, role, content) "
              "VALUES (%s, %s, %s, %s, %s)", t, conv, seq, role, content)
    # written after any call of the test is scheduled: never history yet
    env.q("INSERT INTO messages (tenant, conversation, seq, role, content, created_at) "
          "VALUES (%s, %s, 8, 'user', 'a later message', now() + interval '1 hour')",
          tenant, conv)
    return env, tenant, other, conv


def read(env, producer, tenant, key, **data):
    producer.event(env.topics["flowd_events"], "history_flow.start", key, data, tenant=tenant)
    producer.flush()

    def finished():
        rows = env.q("SELECT state, context FROM instances WHERE workflow = %s AND key = %s "
                     "AND tenant = %s AND status <> 'running'", WF, key, tenant)
        return rows[0] if rows else None
    try:
        return wait_for(finished, 30, what="the history flow to finish")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{env.q('SELECT call, status, error FROM activities')}"
                             f"\n{env.logs()}") from None


EARLIER = [msg("assistant", "Hello!"), msg("user", "u1"), msg("assistant", "a1"),
           msg("user", "x" * 40), msg("assistant", "ÿ" * 10)]
CASES = [
    ({"turns": 2}, EARLIER[3:]),
    ({"max_tokens": 15}, EARLIER[3:]),         # 10 + 5 fit exactly
    ({"max_tokens": 16}, EARLIER[2:]),         # "a1" is one more token
    ({"max_tokens": 14}, EARLIER[4:]),         # the 10-token message does not fit
    ({"max_tokens": 4}, []),                   # not even the newest: nothing
    ({"turns": 50, "max_tokens": 100000}, EARLIER),
    ({"before_seq": 3}, EARLIER[:2]),          # the rows before seq 3, whatever their roles
    ({"before_seq": 100}, EARLIER + [msg("user", "the message being answered")]),
]


def test_history_keeps_the_newest_turns(world, producer):
    env, tenant, _, conv = world
    # the default conversation is the instance key; system rows, the message being
    # answered and the later message are left out
    state, ctx = read(env, producer, tenant, conv)
    assert state == "done", ctx
    assert ctx["got"] == {"messages": EARLIER, "tokens": tokens(EARLIER)}
    assert tokens(EARLIER[3:]) == 10 + 5  # 40 bytes; 10 two-byte characters
    for args, want in CASES:
        state, ctx = read(env, producer, tenant, "k-" + uuid.uuid4().hex[:8],
                          conversation=conv, **args)
        assert state == "done", (args, ctx)
        assert ctx["got"] == {"messages": want, "tokens": tokens(want)}, args


def test_other_tenant_reads_only_its_own_rows(world, producer):
    env, tenant, other, conv = world
    state, ctx = read(env, producer, other, conv)
    assert state == "done", ctx
    theirs = [msg("user", "theirs"), msg("assistant", "their answer")]
    assert ctx["got"] == {"messages": theirs, "tokens": tokens(theirs)}
    state, ctx = read(env, producer, tenant, "k-" + uuid.uuid4().hex[:8],
                      conversation="no-such-conversation")
    assert ctx["got"] == {"messages": [], "tokens": 0}, (state, ctx)


BAD = [
    ({"turns": 51}, "turns must be an integer from 1 to 50"),
    ({"turns": 0}, "turns must be an integer from 1 to 50"),
    ({"max_tokens": "2000"}, "max_tokens must be an integer"),
    ({"before_seq": 0}, "before_seq must be a positive integer"),
    ({"conversation": ""}, "conversation must be a string"),
]


def test_bad_with_is_final_history_invalid(world, producer):
    env, tenant, _, _ = world
    for args, detail in BAD:
        key = "k-" + uuid.uuid4().hex[:8]
        state, ctx = read(env, producer, tenant, key, **args)
        assert state == "failed" and ctx["failure"] == "history.invalid", (args, ctx)
        assert detail in ctx["detail"], (args, ctx)
        tries = env.q("SELECT status, attempt FROM activities WHERE key = %s AND tenant = %s",
                      key, tenant)
        assert tries == [("failed", 1)], (args, tries)  # final: no retry
