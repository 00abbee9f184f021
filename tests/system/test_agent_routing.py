"""Agent profiles driving the LLM calls of a conversation (issue 6, item 4), end to end
through the REST API and the real engine against fake providers (fake_llm.py):

- the classification (INTENT_DETECTION) is asked with response_format json_object and
  starts with the general-purpose profile's system prompt; the call of the routed agent
  (PROCESSING) starts with that agent's system prompt and goes to its preferred provider
  (the profile prefers the second of two fake providers);
- a provider that answers an invalid classification is asked once more, then `local`
  classifies, and the fallback is recorded with reason invalid_output on the call's usage
  (the flowd.activity.completed event the turn resumed with).

The profiles are a test copy of workflows/agents with beauty_salon preferring `second`
(engine.agents_dir). The conversation flow is the shipped one, whose classification call
is marked `classify: true` (engine/llm/README.md)."""

import json
import os
import shutil
import uuid

import psycopg
import pytest
import yaml

from conftest import ROOT, Flowd, config_yaml, free_port, wait_for, wait_ready
from conv_harness import BASE, Api, make_key
from fake_llm import FakeLLM

AGENTS = ROOT / "workflows" / "agents"

CLASSIFICATION = {"intent": "book_appointment", "confidence": 0.95, "agent": "beauty_salon",
                  "slots": {"service": "haircut", "date": "2030-05-06", "time": "15:00"}}
GATHERED = {"slots": CLASSIFICATION["slots"], "slots_json": "{}", "complete": True,
            "question": ""}
PROPOSAL = {"action": "book_appointment", "reply": "Shall I book a haircut? Yes or no?",
            "input": {"service": "haircut", "slot": "2030-05-06T15:00:00Z"}}


def text(obj):
    return {"text": json.dumps(obj)}


@pytest.fixture
def fake():
    f = FakeLLM()
    yield f
    f.close()


def workflows_copy(base):
    """The shipped workflows without their profiles (profiles_copy has the test's)."""
    d = base / "workflows"
    shutil.copytree(ROOT / "workflows", d, ignore=shutil.ignore_patterns("agents"))
    src = (d / "conversation.yaml").read_text()
    assert "classify: true" in src.split("INFORMATION_GATHERING:")[0], \
        "the INTENT_DETECTION call lost its classify mark"
    return d


def profiles_copy(base):
    d = base / "agents"
    shutil.copytree(AGENTS, d)
    salon = d / "beauty_salon.yaml"
    salon.write_text(salon.read_text().replace("preferred_provider: local",
                                               "preferred_provider: second"))
    return d


def provider(fake, name):
    return {"kind": "openai", "base_url": fake.base(name, "openai"), "model": f"{name}-model",
            "api_key_env": "FAKE_LLM_KEY", "timeout": "5s", "max_retries": 0}


def start(stack, base, fake, names):
    """flowd serve (every role) with the fake providers `names` then local as the chain."""
    os.environ.setdefault("FAKE_LLM_KEY", "sk-fake")
    port = free_port()
    cfg = yaml.safe_load(config_yaml(stack, port))
    cfg["engine"]["workflows_dir"] = str(workflows_copy(base))
    cfg["engine"]["agents_dir"] = str(profiles_copy(base))
    cfg["api"] = {"create_wait": "15s"}
    cfg["llm"] = {"chain": [*names, "local"],
                  "providers": {n: provider(fake, n) for n in names}}
    work = base / "w"
    work.mkdir()
    f = Flowd(work, yaml.safe_dump(cfg, sort_keys=False))
    f.port, f.url = port, f"http://127.0.0.1:{port}"
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    f.start()
    wait_ready(f, timeout=90)
    key = make_key(f, "routing-" + uuid.uuid4().hex[:8])
    return Api(f, key, None)


def say(api, cid, content):
    r = api.post(f"{BASE}/conversations/{cid}/messages?wait=20s", {"content": content},
                 timeout=40)
    assert r.status_code == 200, r.text
    return r.json()


def q(stack, sql, *args):
    with psycopg.connect(stack.pg_url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def completions(stack, cid):
    """The conversation's `call: llm` results (flowd.activity.completed payloads that carry
    usage; the flowd.* calls, such as the history read, carry none), oldest first."""
    rows = q(stack, "SELECT payload FROM outbox WHERE aggregateid = %s AND "
                    "type = 'flowd.activity.completed' ORDER BY seq", cid)
    return [p for (p,) in rows if "usage" in p]


def system_prompt(agent_id):
    return yaml.safe_load((AGENTS / f"{agent_id}.yaml").read_text())["system_prompt"]


def messages(req):
    return req["body"]["messages"]


def test_routed_agent_prompt_classification_json_and_preferred_provider(stack, tmp_path, fake):
    # first answers the classification and the gathering, second the routed agent
    fake.script("first", text(CLASSIFICATION), text(GATHERED))
    fake.script("second", text(PROPOSAL))
    api = start(stack, tmp_path, fake, ["first", "second"])
    try:
        cid = api.create({"flow_type": "dedicated", "business_id": "biz-route"})
        reply = say(api, cid, "I'd like a haircut please")
        assert reply["content"] == PROPOSAL["reply"], (reply, fake.requests())
        first, second = fake.requests("first"), fake.requests("second")
        assert len(first) == 2 and len(second) == 1, fake.requests()
        classify = first[0]
        # the classification: json mode, the general-purpose profile first, then the
        # catalogue of the loaded profiles, then the workflow's prompt
        assert classify["body"]["response_format"] == {"type": "json_object"}
        roles = [m["role"] for m in messages(classify)]
        assert roles == ["system", "system", "user"], roles
        assert messages(classify)[0]["content"] == system_prompt("general_purpose")
        assert "\n- beauty_salon: " in messages(classify)[1]["content"]
        assert "Message: I'd like a haircut please" in messages(classify)[2]["content"]
        # routed to beauty_salon (confidence 0.95): its prompt first, on its provider
        routed = messages(second[0])
        assert routed[0] == {"role": "system", "content": system_prompt("beauty_salon")}
        assert routed[1]["role"] == "system" and routed[1]["content"].startswith(
            'Answer with JSON {"action"'), routed
        conv = api.get(f"{BASE}/conversations/{cid}").json()
        assert conv["agent"] == "beauty_salon", conv
        used = [(c["usage"]["provider"], c["usage"].get("agent")) for c in completions(stack, cid)]
        assert used == [("first", "general_purpose"), ("first", "general_purpose"),
                        ("second", "beauty_salon")], used
    finally:
        api.flowd.stop()


def test_invalid_classification_is_asked_again_once_then_local(stack, tmp_path, fake):
    bad = {"intent": "book_appointment", "confidence": "very", "agent": "beauty_salon",
           "slots": {}}
    fake.script("first", text(bad), text(bad), text(GATHERED), text(PROPOSAL))
    api = start(stack, tmp_path, fake, ["first"])
    try:
        cid = api.create({"flow_type": "dedicated", "business_id": "biz-invalid"})
        reply = say(api, cid, "I'd like a haircut please")
        assert reply["content"] == PROPOSAL["reply"], (reply, fake.requests())
        reqs = fake.requests("first")
        # classification twice (the same request), then gathering and processing
        assert len(reqs) == 4, reqs
        assert reqs[0]["body"] == reqs[1]["body"]
        assert reqs[0]["body"]["response_format"] == {"type": "json_object"}
        assert reqs[0]["headers"]["Idempotency-Key"] == reqs[1]["headers"]["Idempotency-Key"]
        done = completions(stack, cid)
        classified = done[0]
        usage = classified["usage"]
        assert usage["provider"] == "local" and usage["attempts"] == 3, usage
        (fb,) = usage["fallbacks"]
        assert (fb["from"], fb["to"]) == ("first", "local"), fb
        assert fb["reason"].startswith("invalid_output: not a classification: "), fb
        assert "confidence" in fb["reason"], fb
        # local classified with the profiles' keywords: haircut -> beauty_salon
        assert classified["result"]["intent"] == "book_appointment", classified
        assert classified["result"]["agent"] == "beauty_salon", classified
        assert classified["result"]["confidence"] >= 0.6, classified
        assert [c["usage"]["provider"] for c in done[1:]] == ["first", "first"], done
        wait_for(lambda: api.get(f"{BASE}/conversations/{cid}").json()["agent"] ==
                 "beauty_salon", 10, what="the conversation routed to beauty_salon")
    finally:
        api.flowd.stop()
