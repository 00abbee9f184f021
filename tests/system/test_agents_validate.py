"""Agent profiles (issue 6, item 4; docs/agents.md) end to end: `flowd validate` checks a
file whose directory is named `agents` as a profile (located problems, exit 0 / 1 / 2),
`flowd serve` refuses to start on invalid profiles with located `agents.invalid` lines,
and the API lists the profiles it loaded and accepts exactly their ids."""

import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import Flowd, config_yaml, create_api_key, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
FLOWD = ROOT / "build" / "flowd"
SHIPPED = ROOT / "workflows" / "agents"
LINE = re.compile(r"^[^:]+:\d+:\d+: error: .+$")
IDS = {"restaurant_food", "beauty_salon", "automotive", "health_medical",
       "business_analytics", "voice_enhancement", "local_services", "general_purpose"}

VALID = """id: florist
name: Florist
description: Bouquets and deliveries.
system_prompt: You are the assistant of a florist.
slots:
  - {name: date, type: date, description: Delivery day.}
intents:
  - {name: order_flowers, description: Order a bouquet., keywords: [Bouquet, roses],
     required_slots: [date], action: place_order}
allowed_actions: [answer_question, place_order]
"""


def validate(*files, cwd=None):
    return subprocess.run([str(FLOWD), "validate", *map(str, files)], capture_output=True,
                          text=True, timeout=30, cwd=cwd, env={"PATH": "/usr/bin:/bin"})


def agents_dir(tmp_path, files):
    d = tmp_path / "agents"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


# ---- flowd validate ------------------------------------------------------------------------

def test_shipped_workflows_and_agents_are_valid():
    files = sorted((ROOT / "workflows").glob("*.yaml")) + sorted(SHIPPED.glob("*.yaml"))
    assert {f.stem for f in SHIPPED.glob("*.yaml")} == IDS
    r = validate(*files)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == [f"{f}: ok" for f in files]


# (text, the expected stderr lines); positions are 1-based line:col of the node at fault
CASES = {
    "unknown_key": (VALID + "colour: red\n",
                    ['{f}:11:1: error: unknown key "colour" in an agent profile']),
    "missing_field": (VALID.replace("system_prompt: You are the assistant of a florist.\n", ""),
                      ['{f}:1:1: error: an agent profile needs "system_prompt"']),
    "wrong_type": (VALID.replace("name: Florist", "name: [Florist]"),
                   ['{f}:2:7: error: "name" of an agent profile must be a string']),
    "bad_id": (VALID.replace("id: florist", "id: Florist-Shop"),
               ['{f}:1:5: error: "id" of an agent profile must be snake_case (a lower-case '
                'letter, then a-z, 0-9 or _; at most 63 characters), not "Florist-Shop"']),
    "undeclared_slot": (VALID.replace("required_slots: [date]", "required_slots: [date, size]"),
                        ['{f}:9:29: error: intent "order_flowers" requires slot "size", which '
                         'the profile does not declare']),
    "bad_provider": (VALID + "preferred_provider: open ai\n",
                     ['{f}:11:21: error: "preferred_provider" must be a provider name (1 to 63 '
                      'characters, no spaces, commas or control characters), not "open ai"']),
    "yaml_syntax": ("id: [florist\n", ["{f}:2:1: error: invalid YAML: ..."]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_profile_prints_located_errors(tmp_path, case):
    text, want = CASES[case]
    f = agents_dir(tmp_path, {"florist.yaml": text}) / "florist.yaml"
    r = validate(f)
    assert r.returncode == 1, r.stderr
    got = r.stderr.splitlines()
    assert len(got) == len(want), got
    for w, g in zip(want, got):
        w = w.format(f=f)
        assert LINE.match(g), g
        assert g.startswith(w[:-3]) if w.endswith("...") else g == w
    assert r.stdout == ""


def test_valid_profile_alone_is_ok_and_bare_name_in_agents_dir_counts(tmp_path):
    d = agents_dir(tmp_path, {"florist.yaml": VALID})
    r = validate(d / "florist.yaml")
    assert r.returncode == 0 and r.stdout == f"{d / 'florist.yaml'}: ok\n", r.stderr
    r = validate("florist.yaml", cwd=d)  # the current directory is named agents
    assert r.returncode == 0, r.stderr


def test_a_profile_outside_an_agents_dir_is_checked_as_a_workflow(tmp_path):
    (tmp_path / "florist.yaml").write_text(VALID)
    r = validate(tmp_path / "florist.yaml")
    assert r.returncode == 1
    assert "unknown key" in r.stderr or "needs" in r.stderr or "workflow" in r.stderr


def test_duplicate_ids_across_files(tmp_path):
    d = agents_dir(tmp_path, {"a.yaml": VALID, "b.yaml": VALID})
    r = validate(d / "a.yaml", d / "b.yaml")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f'{d / "b.yaml"}:1:5: error: duplicate agent id "florist" (also in {d / "a.yaml"})']
    assert r.stdout == f"{d / 'a.yaml'}: ok\n"


def test_missing_profile_is_a_usage_error(tmp_path):
    d = agents_dir(tmp_path, {"florist.yaml": VALID})
    r = validate(d / "florist.yaml", d / "nope.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith(f"{d / 'nope.yaml'}: error: ")


# ---- flowd serve and the API ---------------------------------------------------------------

def start(stack, workdir, agents=None):
    port = free_port()
    env = {"FLOWD_ENGINE_AGENTS_DIR": str(agents)} if agents else None
    f = Flowd(workdir, config_yaml(stack, port), env=env)
    f.port, f.url = port, f"http://127.0.0.1:{port}"
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    return f.start()


def test_serve_refuses_invalid_profiles_with_located_errors(tmp_path, stack):
    d = tmp_path / "profiles"
    shutil.copytree(SHIPPED, d)
    (d / "florist.yaml").write_text(VALID.replace("id: florist", "id: Florist"))
    (d / "general_purpose.yaml").unlink()
    work = tmp_path / "w"
    work.mkdir()
    f = start(stack, work, agents=d)
    try:
        code = f.proc.wait(timeout=60)
    finally:
        f.stop()
    assert code != 0
    problems = [e.get("problem", "") for e in f.log_events() if e.get("event") == "agents.invalid"]
    assert f"{d / 'florist.yaml'}:1:5: error: \"id\" of an agent profile must be snake_case" \
        in "\n".join(problems), f.log_text()
    assert any('no "general_purpose" profile' in p for p in problems), problems
    failed = [e for e in f.log_events() if e.get("event") == "server.failed"]
    assert failed and "problems in the agent profiles" in failed[0]["error"], f.log_text()


@pytest.fixture(scope="module")
def served(tmp_path_factory, stack):
    base = tmp_path_factory.mktemp("agents-api")
    d = base / "profiles"
    shutil.copytree(SHIPPED, d)
    (d / "florist.yaml").write_text(VALID)
    work = base / "w"
    work.mkdir()
    f = start(stack, work, agents=d)
    wait_ready(f, timeout=90)
    key = create_api_key(f, "agents-" + uuid.uuid4().hex[:8])
    yield f, key
    f.stop()


def get(f, key, path):
    return requests.get(f.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=20)


@pytest.mark.parametrize("path", ["/api/v1/agents", "/api/v1/conversations/agents"])
def test_api_lists_the_loaded_profiles(served, path):
    f, key = served
    r = get(f, key, path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None and body["has_more"] is False
    ids = [a["id"] for a in body["data"]]
    assert ids == sorted(IDS | {"florist"})
    florist = next(a for a in body["data"] if a["id"] == "florist")
    assert florist == {
        "id": "florist", "name": "Florist", "description": "Bouquets and deliveries.",
        "intents": [{"name": "order_flowers", "description": "Order a bouquet.",
                     "keywords": ["bouquet", "roses"], "required_slots": ["date"],
                     "action": "place_order"}],
        "slots": [{"name": "date", "type": "date", "description": "Delivery day."}],
        "allowed_actions": ["answer_question", "place_order"],
        "preferred_provider": "local"}
    for a in body["data"]:
        assert "system_prompt" not in a
        assert a["name"] and a["description"] and a["intents"] and a["allowed_actions"]


def test_create_and_switch_accept_exactly_the_loaded_ids(served):
    f, key = served
    h = {"Authorization": f"Bearer {key}"}
    r = requests.post(f.url + "/api/v1/conversations", headers=h, timeout=20,
                      json={"flow_type": "global", "agent": "florist"})
    assert r.status_code in (201, 202), r.text
    cid = r.json()["id"]
    r = requests.post(f.url + "/api/v1/conversations", headers=h, timeout=20,
                      json={"flow_type": "global", "agent": "pirate"})
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/agent", r.text
    deadline = time.monotonic() + 30
    while get(f, key, f"/api/v1/conversations/{cid}").status_code != 200:
        assert time.monotonic() < deadline, "conversation never appeared"
        time.sleep(0.2)
    r = requests.post(f.url + f"/api/v1/conversations/{cid}/switch-agent", headers=h,
                      timeout=20, json={"agent": "pirate"})
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/agent", r.text
    r = requests.post(f.url + f"/api/v1/conversations/{cid}/switch-agent", headers=h,
                      timeout=20, json={"agent": "beauty_salon"})
    assert r.status_code in (200, 202), r.text
