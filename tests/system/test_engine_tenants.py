"""Tenants: a definition registered for tenant A (a `definitions` row with tenant 'A', not
shipped) is started by A's events and by no other tenant's, even on the same key."""

from conftest import wait_for
from engine_harness import TEST_WORKFLOWS, make_env, producer, sha256  # noqa: F401


def test_engine_tenant_definition_is_started_only_by_its_tenant(make_env, producer):
    env = make_env(["counter"])  # tenant_only.yaml is NOT shipped: only registered for A
    source = (TEST_WORKFLOWS / "tenant_only.yaml").read_text()
    env.q("INSERT INTO tenants (id, name) VALUES ('A', 'tenant A'), ('B', 'tenant B')")
    env.q("INSERT INTO definitions (tenant, name, version, source, checksum, shipped) "
          "VALUES ('A', 'tenant_only', 1, %s, %s, false)", source, sha256(source))
    env.start()
    topic = env.topics["flowd_events"]
    key = f"tn-{env.tag}"

    # B's and the default tenant's tenant.hello, each followed by a counter start on the
    # same key: once that counter exists, the tenant.hello before it was processed
    producer.event(topic, "tenant.hello", key, {}, id_=f"{key}:hello-b", tenant="B")
    producer.event(topic, "count.start", key, {}, id_=f"{key}:sentinel-b", tenant="B")
    producer.event(topic, "tenant.hello", key, {}, id_=f"{key}:hello-default")
    producer.event(topic, "count.start", key, {}, id_=f"{key}:sentinel-default")
    producer.flush()
    wait_for(lambda: sorted(r[0] for r in env.q(
        "SELECT tenant FROM instances WHERE workflow = 'counter'")) == ["B", "default"], 30,
        what="the sentinel counters of tenants B and default")
    assert env.instances("tenant_only") == []

    producer.event(topic, "tenant.hello", key, {}, id_=f"{key}:hello-a", tenant="A")
    producer.flush()
    rows = wait_for(lambda: env.instances("tenant_only"), 30, what="A's tenant_only instance")
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [(key, "A", "greeted", "running")], rows
    hist = env.history(rows[0][0])
    assert [h[1:3] for h in hist] == [(f"{key}:hello-a", "tenant.hello")]
    # A's event did not reach the other tenants' instances of the same key
    assert env.q("SELECT count(*) FROM history h JOIN instances i ON i.id = h.instance_id "
                 "WHERE i.tenant <> 'A' AND h.event_id = %s", f"{key}:hello-a") == [(0,)]
