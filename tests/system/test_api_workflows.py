"""/api/v1/workflows (api/routes_workflows*.c): PUT validated by the engine's loader (201 new
version, 200 identical, 415, 422 with line/col), reads (latest, a version, the tenant's
plus the shipped ones, paginated), graphs, tenant isolation, scopes -- and a definition is
in effect for the very next event after its PUT returned."""

import time
import uuid

from api_wait_harness import BASE, api, assert_problem  # noqa: F401

COUNTER = """# a test workflow
workflow: {name}
version: {version}
description: counts ticks
triggers: [{trigger}]
initial: counting
context: {{ n: 0 }}
states:
  counting:
    transitions:
      - event: tick
        set: {{ n: "${{ ctx.n + {step} }}" }}
      - event: finish
        to: finished
  finished:
    final: true
"""


def counter(name, version=1, trigger="never.sent", step=1):
    return COUNTER.format(name=name, version=version, trigger=trigger, step=step)


def uniq(prefix="wf"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_put_creates_then_identical_is_200_then_change_is_new_version(api):
    name = uniq()
    r = api.put_yaml(name, counter(name))
    assert r.status_code == 201, r.text
    d = r.json()
    assert r.headers["Location"] == f"{BASE}/workflows/{name}/versions/1"
    assert d["name"] == name and d["version"] == 1 and d["shipped"] is False
    assert d["tenant"] == api.tenant_a and len(d["checksum"]) == 64
    assert d["source"] == counter(name) and d["created_at"].endswith("Z")
    assert d["initial"] == "counting" and d["states"] == ["counting", "finished"]
    assert d["triggers"] == ["never.sent"]

    r = api.put_yaml(name, counter(name), content_type="text/yaml; charset=utf-8")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and "Location" not in r.headers

    # changed text with the same `version:` -> the next version, text renumbered
    r = api.put_yaml(name, counter(name, step=2))
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    assert "version: 2\n" in r.json()["source"] and "# a test workflow" in r.json()["source"]
    # the same file again is the latest again, although its text says version 1
    r = api.put_yaml(name, counter(name, step=2))
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    # a `version:` above the latest is honoured
    r = api.put_yaml(name, counter(name, version=7, step=3))
    assert r.status_code == 201 and r.json()["version"] == 7, r.text

    assert api.get(f"{BASE}/workflows/{name}").json()["version"] == 7
    r = api.get(f"{BASE}/workflows/{name}/versions/1")
    assert r.status_code == 200 and r.json()["source"] == counter(name)
    assert_problem(api.get(f"{BASE}/workflows/{name}/versions/3"), 404)
    assert_problem(api.get(f"{BASE}/workflows/{name}/versions/x"), 404)


def test_put_wrong_content_type_is_415(api):
    name = uniq()
    assert_problem(api.put_yaml(name, counter(name), content_type="application/json"), 415)
    assert_problem(api.call("PUT", f"{BASE}/workflows/{name}", data=counter(name)), 415)


def test_put_invalid_definition_is_422_with_every_problem_located(api):
    name = uniq()
    bad = counter(name).replace("to: finished", "to: nowhere").replace("version: 1",
                                                                        "version: zero")
    body = assert_problem(api.put_yaml(name, bad), 422)
    errs = body["errors"]
    assert len(errs) >= 2, errs
    for e in errs:
        assert set(e) == {"line", "col", "message"} and e["line"] >= 1 and e["col"] >= 1, e
    assert any("nowhere" in e["message"] for e in errs), errs
    assert [e["line"] for e in errs] == sorted(e["line"] for e in errs)
    # YAML syntax
    body = assert_problem(api.put_yaml(name, "workflow: [unclosed\n"), 422)
    assert body["errors"][0]["line"] >= 1
    assert_problem(api.get(f"{BASE}/workflows/{name}"), 404)


def test_put_name_must_match_the_path(api):
    name, other = uniq(), uniq()
    body = assert_problem(api.put_yaml(other, counter(name)), 422)
    assert any(name in e["message"] and other in e["message"] for e in body["errors"])
    assert body["errors"][0]["line"] == 2


def test_put_needs_write_scope(api):
    name = uniq()
    assert_problem(api.put_yaml(name, counter(name), key=api.read_key), 403)


def test_other_tenants_definition_is_404(api):
    name = uniq()
    assert api.put_yaml(name, counter(name)).status_code == 201
    assert_problem(api.get(f"{BASE}/workflows/{name}", key=api.other_key), 404)
    assert_problem(api.get(f"{BASE}/workflows/{name}/versions/1", key=api.other_key), 404)
    assert_problem(api.get(f"{BASE}/workflows/{name}/graph", key=api.other_key), 404)
    names = [d["name"] for d in api.all_pages(f"{BASE}/workflows", limit=50)]
    assert name in names
    other = [d["name"] for d in
             api.get(f"{BASE}/workflows?limit=200", key=api.other_key).json()["data"]]
    assert name not in other and "order" in other


def test_list_is_own_plus_shipped_latest_each_paginated(api):
    names = sorted(uniq("list") for _ in range(3))
    for n in names:
        assert api.put_yaml(n, counter(n)).status_code == 201
    assert api.put_yaml(names[0], counter(names[0], step=5)).status_code == 201
    items = api.all_pages(f"{BASE}/workflows", limit=2)
    seen = [d["name"] for d in items]
    assert len(seen) == len(set(seen)), seen
    assert seen == sorted(seen)
    by = {d["name"]: d for d in items}
    assert set(names) <= set(by) and "order" in by
    assert by["order"]["shipped"] is True and by["order"]["tenant"] == "system"
    assert by[names[0]]["version"] == 2 and "source" not in by[names[0]]
    assert_problem(api.get(f"{BASE}/workflows?limit=0"), 400)
    assert_problem(api.get(f"{BASE}/workflows?cursor=garbage"), 400)


def test_graph_mermaid_and_dot(api):
    name = uniq()
    assert api.put_yaml(name, counter(name)).status_code == 201
    r = api.get(f"{BASE}/workflows/{name}/graph")
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["format"] == "mermaid" and g["name"] == name and g["version"] == 1
    assert "stateDiagram-v2" in g["graph"] and "counting" in g["graph"]
    g = api.get(f"{BASE}/workflows/{name}/graph?format=dot").json()
    assert g["format"] == "dot" and g["graph"].startswith("digraph")
    assert_problem(api.get(f"{BASE}/workflows/{name}/graph?format=png"), 400)
    assert api.get(f"{BASE}/workflows/order/graph").status_code == 200
    assert_problem(api.get(f"{BASE}/workflows/{uniq()}/graph"), 404)


def test_definition_is_in_effect_for_the_next_event_after_put(api):
    """PUT returns, then an event of its trigger type is produced at once: it starts the
    workflow. Then a new version changes the step; the next start runs the new version."""
    name, trigger = uniq("live"), f"live.start.{uuid.uuid4().hex[:6]}"
    topic = api.env.topics["flowd_events"]
    # the engine has already looked for this type (and found nothing) a moment ago
    api.producer.event(topic, trigger, f"k0-{name}", {}, tenant=api.tenant_a)
    api.producer.flush()
    time.sleep(0.5)
    assert api.put_yaml(name, counter(name, trigger=trigger)).status_code == 201
    api.producer.event(topic, trigger, f"k1-{name}", {}, tenant=api.tenant_a)
    api.producer.flush()
    inst = api.wait_instance(name, f"k1-{name}")
    assert inst["version"] == 1 and inst["state"] == "counting"

    assert api.put_yaml(name, counter(name, trigger=trigger, step=10)).status_code == 201
    api.producer.event(topic, trigger, f"k2-{name}", {}, tenant=api.tenant_a)
    api.producer.flush()
    assert api.wait_instance(name, f"k2-{name}")["version"] == 2
    # another tenant's event of that type starts nothing
    api.producer.event(topic, trigger, f"k3-{name}", {}, tenant=api.tenant_b)
    api.producer.flush()
    time.sleep(1.0)
    r = api.get(f"{BASE}/instances?workflow={name}&key=k3-{name}", key=api.other_key)
    assert r.json()["data"] == []
