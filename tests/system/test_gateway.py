"""The OpenAI-compatible gateway (issue 6, item 9; api/routes_gateway*.c,
engine/llm/blocking.c): the official `openai` Python client, unmodified, pointed at flowd
(base_url .../v1, api_key = a flowd key) completes whole and streamed through the built-in
`local` provider, a fake OpenAI provider and a fake Anthropic provider (translated), gets
usage (also as the stream's usage chunk), lists the models, falls back down the chain when
the selected provider answers 500, forwards Idempotency-Key, and gets OpenAI-shaped errors
(401, 403, 404 model_not_found, 400 naming the param) -- including those the dispatcher
answers before the handler runs."""

import json
import uuid

import openai
import pytest
import requests
import yaml

from conftest import Flowd, config_yaml, create_api_key, free_port, wait_ready
from fake_llm import FakeLLM

MODELS = {"flaky": "flaky-model", "primary": "gpt-test", "claude": "claude-test"}


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM()
    f.script("flaky", {"status": 500})
    yield f
    f.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, stack, fake):
    def provider(name, kind):
        return {"kind": kind, "base_url": fake.base(name, kind), "model": MODELS[name],
                "api_key_env": "PATH", "timeout": "5s", "max_retries": 0,
                "retry_delay": "50ms", "price_in_per_1k": 1.0, "price_out_per_1k": 2.0}

    llm = {"chain": ["flaky", "primary", "claude", "local"],
           "providers": {"flaky": provider("flaky", "openai"),
                         "primary": provider("primary", "openai"),
                         "claude": provider("claude", "anthropic")}}
    port = free_port()
    extra = "roles: api\n" + yaml.safe_dump({"llm": llm}, sort_keys=False)
    f = Flowd(tmp_path_factory.mktemp("gateway"), config_yaml(stack, port, extra=extra))
    f.url = f"http://127.0.0.1:{port}"
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    f.start()
    wait_ready(f)
    f.key = create_api_key(f, "t-gw-" + uuid.uuid4().hex[:8])
    yield f
    f.stop()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.key, max_retries=0,
                         timeout=30)


MSGS = [{"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello, can you help me book a table for two?"}]


def stream_text(chunks):
    text, finish, usage, roles = "", None, None, []
    for c in chunks:
        assert c.object == "chat.completion.chunk" and c.id.startswith("chatcmpl-")
        if c.usage is not None:
            assert c.choices == []
            usage = c.usage
            continue
        (ch,) = c.choices
        if ch.delta.role:
            roles.append(ch.delta.role)
        text += ch.delta.content or ""
        finish = ch.finish_reason or finish
    return text, finish, usage, roles


def test_models_list(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    for name, model in MODELS.items():
        assert name in ids and model in ids, ids
    assert "local" in ids and "local-1" in ids
    assert all(m.object == "model" for m in models.data)
    owners = {m.id: m.owned_by for m in models.data}
    assert owners["gpt-test"] == "primary"


def test_local_whole_and_streamed(client):
    r = client.chat.completions.create(model="local", messages=MSGS)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "local-1"
    (ch,) = r.choices
    assert ch.index == 0 and ch.message.role == "assistant" and ch.message.content
    assert ch.finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(client.chat.completions.create(model="local", messages=MSGS, stream=True,
                                                 stream_options={"include_usage": True}))
    text, finish, usage, roles = stream_text(chunks)
    assert text == ch.message.content  # local is deterministic
    assert finish == "stop" and roles == ["assistant"]
    assert usage.total_tokens == r.usage.total_tokens
    assert chunks[-1].usage is not None  # the usage chunk comes last, before [DONE]


def test_fake_openai_whole_and_streamed(client, fake):
    r = client.chat.completions.create(model="primary", messages=MSGS, temperature=0.2,
                                       max_tokens=50)
    assert r.choices[0].message.content == "Hello from primary."
    assert r.model == "fake-gpt"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == \
        (11, 7, 18)
    sent = fake.requests("primary")[-1]
    assert sent["body"]["model"] == "gpt-test" and sent["body"]["max_tokens"] == 50
    assert sent["body"]["messages"][0] == {"role": "system", "content": "You are terse."}

    before = len(fake.requests("primary"))
    stream = client.chat.completions.create(model="gpt-test", messages=MSGS, stream=True)
    text, finish, usage, roles = stream_text(stream)
    assert text == "Hello from primary." and finish == "stop" and usage is None
    assert roles == ["assistant"]
    (sent,) = fake.requests("primary")[before:]
    assert sent["body"]["stream"] is True


def test_fake_anthropic_translated(client, fake):
    r = client.chat.completions.create(model="claude-test", messages=MSGS)
    assert r.choices[0].message.content == "Hello from claude."
    assert r.choices[0].finish_reason == "stop"  # end_turn
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (12, 6)
    sent = fake.requests("claude")[-1]
    assert sent["path"].endswith("/v1/messages")
    assert sent["body"]["system"] == "You are terse."

    stream = client.chat.completions.create(model="claude", messages=MSGS, stream=True,
                                            stream_options={"include_usage": True})
    text, finish, usage, _ = stream_text(stream)
    assert text == "Hello from claude." and finish == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 6, 18)


def test_content_parts_and_json_mode(client, fake):
    r = client.chat.completions.create(
        model="primary", response_format={"type": "json_object"},
        messages=[{"role": "user", "content": [{"type": "text", "text": "part one"},
                                               {"type": "text", "text": "part two"}]}])
    sent = fake.requests("primary")[-1]["body"]
    assert sent["messages"] == [{"role": "user", "content": "part one\npart two"}]
    assert sent["response_format"] == {"type": "json_object"}
    # the fake answers prose: not the JSON asked for, so the chain moved on (claude
    # answers prose too), and local answered with an object
    assert json.loads(r.choices[0].message.content)["intent"]


def test_fallback_when_selected_provider_fails(client, fake, server):
    before = len(fake.requests("flaky"))
    raw = client.chat.completions.with_raw_response.create(
        model="flaky", messages=MSGS, extra_headers={"Idempotency-Key": "gw-test-key-1"})
    r = raw.parse()
    assert r.choices[0].message.content == "Hello from primary."  # the next in the chain
    assert raw.headers["X-Flowd-Provider"] == "primary"
    body = json.loads(raw.text)
    assert body["x_flowd"]["fallbacks"] == [{"from": "flaky", "to": "primary",
                                             "reason": "unavailable: HTTP status 500"}]
    assert len(fake.requests("flaky")) == before + 1
    keys = {fake.requests("flaky")[-1]["headers"].get("Idempotency-Key"),
            fake.requests("primary")[-1]["headers"].get("Idempotency-Key")}
    assert keys == {"gw-test-key-1"}  # forwarded, the same on every attempt

    chunks = client.chat.completions.create(model="flaky", messages=MSGS, stream=True)
    assert stream_text(chunks)[0] == "Hello from primary."


def test_without_idempotency_key_one_is_made_per_request(client, fake):
    client.chat.completions.create(model="primary", messages=MSGS)
    key = fake.requests("primary")[-1]["headers"].get("Idempotency-Key")
    assert key and key.startswith("gateway:")


# ---- errors ----------------------------------------------------------------------------

def assert_openai_error(r, status, type_=None, code=None, param=None):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    e = body["error"]
    assert e["message"]
    if type_:
        assert e["type"] == type_, e
    assert e["code"] == code, e
    assert e["param"] == param, e
    return e


def test_401_invalid_key(server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key="fk_nope_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        c.chat.completions.create(model="local", messages=MSGS)
    assert ei.value.status_code == 401 and ei.value.code == "invalid_api_key"
    r = requests.post(server.url + "/v1/chat/completions", json={"model": "local"})
    assert_openai_error(r, 401, "invalid_request_error", "invalid_api_key")
    r = requests.get(server.url + "/v1/models")
    assert_openai_error(r, 401, "invalid_request_error", "invalid_api_key")


def test_403_read_only_key(server):
    key = create_api_key(server, "t-gw-ro", scopes="read")
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    assert c.models.list().data  # read is enough for the list
    with pytest.raises(openai.PermissionDeniedError) as ei:
        c.chat.completions.create(model="local", messages=MSGS)
    assert ei.value.status_code == 403


def test_404_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="gpt-nonexistent", messages=MSGS)
    assert ei.value.code == "model_not_found" and ei.value.param == "model"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-nonexistent", messages=MSGS, stream=True)


@pytest.mark.parametrize("body,param", [
    ({"messages": MSGS}, "model"),
    ({"model": "local"}, "messages"),
    ({"model": "local", "messages": []}, "messages"),
    ({"model": "local", "messages": [{"role": "wizard", "content": "hi"}]},
     "messages.[0].role"),
    ({"model": "local", "messages": [{"role": "user", "content": 5}]},
     "messages.[0].content"),
    ({"model": "local", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
     "messages.[0].content"),
    ({"model": "local", "messages": MSGS, "temperature": 7}, "temperature"),
    ({"model": "local", "messages": MSGS, "max_tokens": 0}, "max_tokens"),
    ({"model": "local", "messages": MSGS, "max_completion_tokens": "x"},
     "max_completion_tokens"),
    ({"model": "local", "messages": MSGS, "stream": "yes"}, "stream"),
    ({"model": "local", "messages": MSGS, "stream_options": {"include_usage": True}},
     "stream_options"),
    ({"model": "local", "messages": MSGS, "response_format": {"type": "json_schema"}},
     "response_format.type"),
    ({"model": "local", "messages": MSGS, "n": 2}, "n"),
    ({"model": "local", "messages": MSGS, "tools": [{"type": "function"}]}, "tools"),
])
def test_400_names_the_param(server, body, param):
    r = requests.post(server.url + "/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {server.key}"})
    assert_openai_error(r, 400, "invalid_request_error", None, param)


def test_400_through_the_client(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="local", messages=[{"role": "user",
                                                                 "content": "hi"}],
                                       temperature=9)
    assert ei.value.param == "temperature"


def test_malformed_json_and_unknown_paths(server):
    auth = {"Authorization": f"Bearer {server.key}"}
    r = requests.post(server.url + "/v1/chat/completions", data=b"{not json",
                      headers=dict(auth, **{"Content-Type": "application/json"}))
    assert_openai_error(r, 400, "invalid_request_error")
    r = requests.post(server.url + "/v1/embeddings", json={}, headers=auth)
    assert_openai_error(r, 404, "invalid_request_error")
    r = requests.get(server.url + "/v1/chat/completions", headers=auth)
    assert_openai_error(r, 405, "invalid_request_error")
    # the rest of the API keeps problem+json
    r = requests.get(server.url + "/api/v1/nothing-here", headers=auth)
    assert r.headers["Content-Type"] == "application/problem+json"


def test_chain_failure_is_an_openai_error(tmp_path, stack, fake):
    """A chain without `local` whose only provider fails: 503 (500 upstream) and 429
    rate_limit_exceeded (429 upstream), streamed or not, before any chunk is sent."""
    llm = {"chain": ["down"], "providers": {"down": {
        "kind": "openai", "base_url": fake.base("down", "openai"), "model": "down-model",
        "api_key_env": "PATH", "timeout": "5s", "max_retries": 0, "breaker_failures": 0}}}
    port = free_port()
    extra = "roles: api\n" + yaml.safe_dump({"llm": llm}, sort_keys=False)
    f = Flowd(tmp_path, config_yaml(stack, port, extra=extra))
    f.url = f"http://127.0.0.1:{port}"
    assert f.run("migrate").returncode == 0
    f.start()
    try:
        wait_ready(f)
        auth = {"Authorization": f"Bearer {create_api_key(f, 't-gw-down')}"}
        body = {"model": "down", "messages": MSGS}
        fake.script("down", {"status": 500})
        for stream in (False, True):
            r = requests.post(f.url + "/v1/chat/completions", json=dict(body, stream=stream),
                              headers=auth)
            e = assert_openai_error(r, 503, "server_error", "service_unavailable")
            assert "HTTP status 500" in e["message"]
        fake.script("down", {"status": 429, "retry_after": "30"})
        r = requests.post(f.url + "/v1/chat/completions", json=body, headers=auth)
        assert_openai_error(r, 429, "rate_limit_error", "rate_limit_exceeded")
        # local is not in llm.chain, yet it always exists
        r = requests.post(f.url + "/v1/chat/completions", json=dict(body, model="local"),
                          headers=auth)
        assert r.status_code == 200 and r.json()["model"] == "local-1", r.text
        ids = [m["id"] for m in requests.get(f.url + "/v1/models", headers=auth).json()["data"]]
        assert ids == ["down", "down-model", "local", "local-1"]
    finally:
        f.stop()

