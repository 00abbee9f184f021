"""The shipped workflow definitions (workflows/*.yaml): they pass `flowd validate`, match
the DSL's JSON Schema (schemas/workflow.schema.json), and `flowd graph` draws them.
Black-box against the built binary; no PostgreSQL or Kafka needed."""

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FLOWD = ROOT / "build" / "flowd"
SHIPPED = sorted((ROOT / "workflows").glob("*.yaml"))
STAGES = ["GREETING", "INTENT_DETECTION", "INFORMATION_GATHERING", "AGENT_ROUTING",
          "PROCESSING", "CONFIRMATION", "WORKFLOW_TRIGGER", "COMPLETION", "ERROR_RECOVERY"]
DIAG = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$")


def flowd(*args):
    return subprocess.run([str(FLOWD), *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def schema():
    doc = json.loads((ROOT / "schemas" / "workflow.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def test_shipped_workflows_are_the_four_expected():
    assert [p.name for p in SHIPPED] == ["appointment.yaml", "cleanup.yaml",
                                         "conversation.yaml", "order.yaml"]


def test_shipped_workflows_validate_as_a_set():
    r = flowd("validate", *SHIPPED)
    assert r.returncode == 0, r.stderr
    assert "error:" not in r.stderr


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_matches_json_schema(schema, path):
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in schema.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_shipped_conversation_graph_has_all_nine_stages():
    r = flowd("graph", ROOT / "workflows" / "conversation.yaml")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stateDiagram-v2\n")
    for stage in STAGES:
        assert re.search(rf"^\s+{stage}$", r.stdout, re.M), f"{stage} is not declared"
    assert "[*] --> GREETING" in r.stdout
    assert "WORKFLOW_TRIGGER --> COMPLETION : done [if]" in r.stdout
    assert "ENDED --> [*]" in r.stdout


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_dot_graph_is_plausible(path):
    r = flowd("graph", path, "--format", "dot")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("digraph \"")
    assert out.rstrip().endswith("}")
    assert out.count("{") == out.count("}")
    assert "start -> s" in out
    assert "doublecircle" in out or path.name == "cleanup.yaml"  # cleanup never ends


def test_shipped_schema_rejects_a_typo(schema):
    doc = yaml.safe_load((ROOT / "workflows" / "order.yaml").read_text())
    doc["states"]["placed"]["transitons"] = doc["states"]["placed"].pop("transitions")
    assert any("transitons" in e.message for e in schema.iter_errors(doc))


def test_shipped_broken_copy_fails_validate_with_location(tmp_path):
    text = (ROOT / "workflows" / "appointment.yaml").read_text()
    broken = text.replace("  confirmed:\n    transitions:",
                          "  confirmed:\n    on_enter: []\n    transitions:", 1)
    assert broken != text
    path = tmp_path / "appointment.yaml"
    path.write_text(broken)
    line = broken.splitlines().index("    on_enter: []") + 1

    r = flowd("validate", path)
    assert r.returncode == 1
    diags = [m for m in map(DIAG.match, r.stderr.splitlines()) if m]
    assert diags, r.stderr
    assert any(m["file"] == str(path) and int(m["line"]) == line and int(m["col"]) == 5
               and "on_enter" in m["msg"] for m in diags), r.stderr

    r = flowd("graph", path)
    assert r.returncode == 1
    assert r.stdout == ""
    assert any(DIAG.match(l) for l in r.stderr.splitlines()), r.stderr


def test_shipped_graph_usage_errors_exit_2(tmp_path):
    assert flowd("graph").returncode == 2
    assert flowd("graph", ROOT / "workflows" / "order.yaml", "--format", "svg").returncode == 2
    assert flowd("graph", tmp_path / "missing.yaml").returncode == 2
