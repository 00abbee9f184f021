"""LLM providers through the real engine (issue 6, items 1-3): a workflow's `call: llm`
against the fake provider (tests/system/fake_llm.py) speaking OpenAI, Anthropic, Gemini
and Ollama wire formats, whole and streamed; fallback when the primary answers 500,
times out or says 429 with Retry-After (the wait honoured, the reason recorded); the
circuit breaker opening and half-opening; one idempotency key on every attempt; and the
accounting (provider, model, tokens, cost, latency) on the transcript row."""

import time

import pytest
import yaml

from conftest import wait_for
from engine_harness import make_env, producer  # noqa: F401
from fake_llm import FakeLLM


@pytest.fixture
def fake():
    f = FakeLLM()
    yield f
    f.close()


def provider(fake, name, kind, **kw):
    p = {"kind": kind, "base_url": fake.base(name, kind), "model": f"{kind}-model",
         "timeout": "5s", "max_retries": 0, "retry_delay": "50ms"}
    p.update(kw)
    return p


def start_flowd(env, llm):
    """A flowd serve of env whose config has the given llm: section."""
    p = env.proc()
    cfg = yaml.safe_load(p.config_path.read_text())
    cfg["llm"] = llm
    p.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    p.start()
    p.wait_ready()
    return p


def ask(env, producer, key, prompt="Hello, can you help me?"):
    producer.event(env.topics["flowd_events"], "llm_chat.start", key, {"prompt": prompt},
                   id_=f"{key}:start")
    producer.flush()


def finished(env, key, status="completed", timeout=30, fake=None):
    try:
        wait_for(lambda: env.q("SELECT status FROM instances WHERE workflow = 'llm_chat' "
                               "AND key = %s", key) == [(status,)], timeout,
                 what=f"{key} to be {status}")
    except AssertionError as e:
        raise AssertionError(f"{e}\nactivities: {env.q('SELECT status, error FROM activities')}"
                             f"\nrequests: {fake.requests() if fake else None}\n"
                             f"{env.logs()}") from None


def usage(env, key):
    rows = env.q("SELECT payload FROM outbox WHERE aggregateid = %s AND "
                 "type = 'flowd.activity.completed'", key)
    assert len(rows) == 1, rows
    return rows[0][0]["usage"]


def message(env, key):
    rows = env.q("SELECT content, provider, model, tokens_in, tokens_out, cost::float8, "
                 "latency_ms FROM messages WHERE conversation = %s AND role = 'assistant'", key)
    assert len(rows) == 1, rows
    return dict(zip(["content", "provider", "model", "tokens_in", "tokens_out", "cost",
                     "latency_ms"], rows[0]))


WIRE = {  # kind -> (model reported by the fake, tokens in, tokens out, path)
    "openai": ("fake-gpt", 11, 7, "/chat/completions"),
    "anthropic": ("fake-claude", 12, 6, "/v1/messages"),
    "gemini": ("fake-gemini", 13, 5, "enerateContent"),
    "ollama": ("fake-llama", 14, 4, "/api/chat"),
}


def test_llm_each_wire_format_whole_and_streamed(make_env, producer, fake):
    env = make_env(["llm_chat"])
    for i, (kind, stream) in enumerate([("openai", False), ("openai", True),
                                        ("anthropic", True), ("anthropic", False),
                                        ("gemini", True), ("gemini", False),
                                        ("ollama", True), ("ollama", False)]):
        name = f"{kind}{i}"
        proc = start_flowd(env, {"chain": [name], "providers": {name: provider(
            fake, name, kind, stream=stream, price_in_per_1k=1.0, price_out_per_1k=2.0,
            api_key_env="PATH")}})
        key = f"wire-{env.tag}-{i}"
        ask(env, producer, key)
        finished(env, key, fake=fake)
        proc.stop()
        model, tin, tout, path = WIRE[kind]
        (req,) = fake.requests(name)
        assert path in req["path"], req
        if kind == "gemini" and stream:
            assert req["path"].endswith(":streamGenerateContent?alt=sse")
        assert req["headers"].get("Idempotency-Key"), req["headers"]
        key_header = {"openai": "Authorization", "anthropic": "x-api-key",
                      "gemini": "x-goog-api-key", "ollama": "Authorization"}[kind]
        assert req["headers"].get(key_header), (kind, req["headers"])
        if kind == "anthropic":
            assert req["headers"].get("anthropic-version") == "2023-06-01"
        m = message(env, key)
        assert m["content"] == f"Hello from {name}.", (kind, stream, m)
        assert (m["provider"], m["model"], m["tokens_in"], m["tokens_out"]) == \
            (name, model, tin, tout), (kind, stream, m)
        assert m["cost"] == pytest.approx(tin / 1000 + 2 * tout / 1000)
        assert m["latency_ms"] is not None and m["latency_ms"] >= 0
        u = usage(env, key)
        assert u["fallbacks"] == [] and u["attempts"] == 1
        assert 0 <= u["ttft_ms"] <= u["latency_ms"]
        # the key is never logged
        assert "Bearer" not in proc.log_text()


def test_llm_fallback_500_then_429_retry_after_honoured(make_env, producer, fake):
    env = make_env(["llm_chat"])
    fake.script("primary", {"status": 500})
    fake.script("backup", {"status": 429, "retry_after": "1"}, {})
    start_flowd(env, {"chain": ["primary", "backup", "local"], "providers": {
        "primary": provider(fake, "primary", "openai", max_retries=1),
        "backup": provider(fake, "backup", "anthropic", max_retries=1, stream=True)}})
    key = f"fb-{env.tag}"
    ask(env, producer, key)
    finished(env, key, fake=fake)
    prim, back = fake.requests("primary"), fake.requests("backup")
    assert len(prim) == 2 and len(back) == 2, fake.requests()
    keys = {r["headers"].get("Idempotency-Key") for r in prim + back}
    assert len(keys) == 1 and None not in keys, keys  # one key on every attempt
    assert back[1]["at"] - back[0]["at"] >= 0.95  # Retry-After: 1 honoured
    u = usage(env, key)
    assert u["provider"] == "backup" and u["attempts"] == 4
    assert u["fallbacks"] == [{"from": "primary", "to": "backup",
                               "reason": "unavailable: HTTP status 500"}]
    assert message(env, key)["provider"] == "backup"


def test_llm_fallback_on_timeout_to_local(make_env, producer, fake):
    env = make_env(["llm_chat"])
    fake.script("slow", {"delay": 3})
    start_flowd(env, {"providers": {"slow": provider(fake, "slow", "ollama", timeout="1s")}})
    key = f"to-{env.tag}"
    t0 = time.monotonic()
    ask(env, producer, key, "I want a haircut tomorrow")
    finished(env, key, fake=fake)
    assert time.monotonic() - t0 < 15
    u = usage(env, key)
    assert u["provider"] == "local"
    (fb,) = u["fallbacks"]
    assert fb["from"] == "slow" and fb["to"] == "local" and fb["reason"].startswith("timeout")
    m = message(env, key)
    assert m["provider"] == "local" and m["content"].startswith("[general_purpose] ")


def test_llm_breaker_opens_then_half_opens(make_env, producer, fake):
    env = make_env(["llm_chat"])
    fake.script("flaky", {"status": 503})
    start_flowd(env, {"chain": ["flaky", "local"], "providers": {"flaky": provider(
        fake, "flaky", "gemini", breaker_failures=2, breaker_cooldown="2s")}})
    reasons = []
    for i in range(3):
        key = f"br-{env.tag}-{i}"
        ask(env, producer, key)
        finished(env, key, fake=fake)
        reasons.append(usage(env, key)["fallbacks"][0]["reason"])
    # two failures open the breaker: the third call never reaches the provider
    assert len(fake.requests("flaky")) == 2
    assert reasons[:2] == ["unavailable: HTTP status 503"] * 2 and reasons[2] == "breaker_open"
    fake.script("flaky", {})  # healthy again (the next request is its third)
    time.sleep(2.2)  # the cool-down passes: the next call is the half-open probe
    key = f"br-{env.tag}-probe"
    ask(env, producer, key)
    finished(env, key, fake=fake)
    assert len(fake.requests("flaky")) == 3
    assert usage(env, key)["provider"] == "flaky" and usage(env, key)["fallbacks"] == []
    key = f"br-{env.tag}-closed"
    ask(env, producer, key)
    finished(env, key, fake=fake)
    assert usage(env, key)["provider"] == "flaky"  # closed again


def test_llm_all_providers_failing_fails_the_activity(make_env, producer, fake):
    env = make_env(["llm_chat"])
    fake.script("only", {"status": 401})
    start_flowd(env, {"chain": ["only"], "providers": {"only": provider(
        fake, "only", "openai", max_retries=3)}})
    key = f"fail-{env.tag}"
    ask(env, producer, key)
    finished(env, key, status="failed", fake=fake)
    assert len(fake.requests("only")) == 1  # a 401 is not retried
    (err,) = env.q("SELECT error FROM activities WHERE key = %s", key)[0]
    assert err["type"] == "llm.invalid_request", err
    assert "only: rejected: HTTP status 401" in err["message"], err
