"""API keys (issue 5): `flowd keys` (the CLI contract), authentication (401), scopes (403),
tenant isolation (404), /api/v1/keys, revocation within api.key_cache_ttl, the per-key
rate limit (429 + Retry-After), and the development key of `make run`."""

import json
import os
import stat
import subprocess
import time
import uuid

import psycopg
import pytest

from conftest import ROOT, Flowd, config_yaml, create_api_key, free_port, wait_for
from keys_harness import KEY_RE, assert_problem, call, key_id, serve_api, tenant

CACHE_TTL_S = 0.3


@pytest.fixture(scope="module")
def server(migrated, tmp_path_factory):
    f = serve_api(migrated, tmp_path_factory.mktemp("keys"),
                  f"api:\n  key_cache_ttl: {int(CACHE_TTL_S * 1000)}ms\n")
    yield f
    f.stop()


@pytest.fixture(scope="module")
def acme(server):
    """Tenant A with an admin, a write and a read key."""
    t = tenant("acme")
    return {"tenant": t, "admin": create_api_key(server, t, "admin", "admin"),
            "write": create_api_key(server, t, "read,write", "writer"),
            "read": create_api_key(server, t, "read", "reader")}


# ---- the CLI ------------------------------------------------------------------------------

def test_cli_create_prints_the_key_alone_on_stdout(server):
    t = tenant()
    r = server.run("keys", "create", "--tenant", t, "--name", "ci", "--scopes", "read,write")
    assert r.returncode == 0, r.stderr
    assert KEY_RE.fullmatch(r.stdout[:-1]) and r.stdout.endswith("\n") \
        and r.stdout.count("\n") == 1, repr(r.stdout)
    assert key_id(r.stdout.strip()) in r.stderr  # the id, never the secret, on stderr
    assert r.stdout.strip() not in r.stderr


def test_cli_creates_the_tenant_with_its_first_key(server, migrated):
    t = tenant("new")
    create_api_key(server, t, "read")
    with psycopg.connect(migrated.pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM tenants WHERE id = %s", (t,)).fetchone()[0] == 1
        row = conn.execute("SELECT scope, length(hash) FROM api_keys WHERE tenant = %s",
                           (t,)).fetchone()
    assert row == ("read", 32)


@pytest.mark.parametrize("args", [
    ["keys"],
    ["keys", "bogus"],
    ["keys", "create", "--tenant", "x", "--name", "n"],                       # no scopes
    ["keys", "create", "--tenant", "x", "--scopes", "read"],                  # no name
    ["keys", "create", "--name", "n", "--scopes", "read"],                    # no tenant
    ["keys", "create", "--tenant", "x", "--name", "n", "--scopes", "owner"],  # bad scope
    ["keys", "create", "--tenant", "-x", "--name", "n", "--scopes", "read"],  # bad tenant
    ["keys", "create", "--tenant", "x", "--name", "n", "--scopes", "read", "extra"],
    ["keys", "revoke"],
    ["keys", "revoke", "a", "b"],
    ["keys", "list", "--format", "xml"],
])
def test_cli_bad_arguments_exit_2_with_usage(server, args):
    r = server.run(*args)
    assert r.returncode == 2, (args, r.returncode, r.stderr)
    assert r.stdout == ""
    assert "usage: flowd" in r.stderr and "keys create" in r.stderr


def test_cli_database_down_exits_1_with_a_message(tmp_path, migrated):
    dead = f"postgresql://flowd:x@127.0.0.1:{free_port()}/flowd"
    f = Flowd(tmp_path, config_yaml(migrated, free_port(), db_url=dead))
    r = f.run("keys", "create", "--tenant", "x", "--name", "n", "--scopes", "read")
    assert r.returncode == 1 and r.stdout == "", r
    assert "flowd:" in r.stderr and "PostgreSQL" in r.stderr, r.stderr


def test_cli_unmigrated_database_says_to_migrate(tmp_path, migrated):
    f = Flowd(tmp_path, config_yaml(migrated, free_port(), db_url=migrated.create_database()))
    r = f.run("keys", "create", "--tenant", "x", "--name", "n", "--scopes", "read")
    assert r.returncode == 1 and r.stdout == "", r
    assert "flowd migrate" in r.stderr, r.stderr


def test_cli_list_and_revoke(server):
    t = tenant()
    key = create_api_key(server, t, "write", "lister")
    kid = key_id(key)
    r = server.run("keys", "list", "--tenant", t, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["id"] for row in rows] == [kid]
    assert rows[0]["tenant"] == t and rows[0]["name"] == "lister" and rows[0]["scope"] == "write"
    assert rows[0]["scopes"] == ["read", "write"] and rows[0]["revoked_at"] is None
    assert "key" not in rows[0] and "hash" not in rows[0]
    assert key not in r.stdout

    table = server.run("keys", "list", "--tenant", t)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "TENANT", "SCOPE"]
    assert kid in table.stdout

    r = server.run("keys", "revoke", kid)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    rows = [json.loads(x) for x in server.run("keys", "list", "--tenant", t, "--format",
                                              "json").stdout.splitlines()]
    assert rows[0]["revoked_at"] is not None
    assert server.run("keys", "revoke", kid).returncode == 0  # twice is fine
    r = server.run("keys", "revoke", "0000000000000000")
    assert r.returncode == 1 and "no API key" in r.stderr
    r = server.run("keys", "revoke", "--tenant", tenant(), kid)  # another tenant's key
    assert r.returncode == 1


# ---- authentication and scopes -------------------------------------------------------------

def test_no_key_is_401(server):
    r = call(server, "GET", "/api/v1/keys")
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("auth", [
    "Bearer",
    "Bearer nope",
    "Basic Zm9vOmJhcg==",
    "Bearer fk_0123456789abcdef_tooshort",
    "fk_0123456789abcdef_" + "A" * 43,
])
def test_malformed_key_is_401(server, auth):
    assert_problem(call(server, "GET", "/api/v1/keys", headers={"Authorization": auth}), 401)


def test_unknown_key_is_401(server, acme):
    assert_problem(call(server, "GET", "/api/v1/keys", "fk_" + uuid.uuid4().hex[:16] + "_"
                        + "A" * 43), 401)
    # a real id with a wrong secret
    wrong = acme["admin"][:-43] + ("B" * 43 if acme["admin"][-1] != "B" else "C" * 43)
    assert_problem(call(server, "GET", "/api/v1/keys", wrong), 401)


def test_revoked_key_is_401_within_the_cache_ttl(server):
    t = tenant()
    admin = create_api_key(server, t, "admin")
    victim = create_api_key(server, t, "read")
    assert call(server, "GET", "/api/v1/keys", admin).status_code == 200
    r = call(server, "GET", "/api/v1/keys", victim)
    assert r.status_code == 403  # known (and cached) but only read
    r = call(server, "DELETE", f"/api/v1/keys/{key_id(victim)}", admin)
    assert r.status_code == 204, r.text
    revoked = time.monotonic()
    wait_for(lambda: call(server, "GET", "/api/v1/keys", victim).status_code == 401,
             CACHE_TTL_S + 2, interval=0.05, what="the revoked key to be refused")
    assert time.monotonic() - revoked < CACHE_TTL_S + 1.5
    # revoked with the CLI (given the whole key) takes effect the same way
    r = server.run("keys", "revoke", admin)
    assert r.returncode == 0 and admin not in r.stderr, r.stderr
    wait_for(lambda: call(server, "GET", "/api/v1/keys", admin).status_code == 401,
             CACHE_TTL_S + 2, interval=0.05, what="the CLI-revoked key to be refused")


def test_missing_scope_is_403(server, acme):
    r = call(server, "POST", "/api/v1/keys", acme["read"], json={"name": "x", "scopes": "read"})
    body = assert_problem(r, 403)
    assert "admin" in body["detail"]
    assert_problem(call(server, "GET", "/api/v1/keys", acme["write"]), 403)
    assert_problem(call(server, "DELETE", f"/api/v1/keys/{key_id(acme['read'])}",
                        acme["write"]), 403)


# ---- /api/v1/keys --------------------------------------------------------------------------

def test_create_key_over_http_shows_it_once(server, acme):
    r = call(server, "POST", "/api/v1/keys", acme["admin"],
             json={"name": "deploy bot", "scopes": ["read", "write"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert KEY_RE.fullmatch(body["key"]) and key_id(body["key"]) == body["id"]
    assert body["tenant"] == acme["tenant"] and body["name"] == "deploy bot"
    assert body["scope"] == "write" and body["scopes"] == ["read", "write"]
    assert body["created_at"].endswith("Z") and body["revoked_at"] is None
    assert r.headers["Location"] == f"/api/v1/keys/{body['id']}"
    # the new key works, with its scope
    assert call(server, "GET", "/api/v1/keys", body["key"]).status_code == 403
    # and is never shown again
    one = call(server, "GET", r.headers["Location"], acme["admin"])
    assert one.status_code == 200 and "key" not in one.json() and "hash" not in one.json()
    assert one.json()["id"] == body["id"]
    listed = call(server, "GET", "/api/v1/keys?limit=200", acme["admin"]).text
    assert body["key"] not in listed and body["key"][20:] not in listed


def test_create_key_scopes_as_a_string(server, acme):
    r = call(server, "POST", "/api/v1/keys", acme["admin"], json={"name": "s", "scopes": "read"})
    assert r.status_code == 201 and r.json()["scopes"] == ["read"], r.text
    r = call(server, "POST", "/api/v1/keys", acme["admin"],
             json={"name": "s", "scopes": "admin", "tenant": acme["tenant"]})
    assert r.status_code == 201 and r.json()["scope"] == "admin", r.text


@pytest.mark.parametrize("body,pointer", [
    ({"scopes": "read"}, "/name"),
    ({"name": "", "scopes": "read"}, "/name"),
    ({"name": "x" * 201, "scopes": "read"}, "/name"),
    ({"name": "x"}, "/scopes"),
    ({"name": "x", "scopes": "owner"}, "/scopes"),
    ({"name": "x", "scopes": []}, "/scopes"),
    ({"name": "x", "scopes": ["read", 3]}, "/scopes"),
    ({"name": "x", "scopes": "read", "tenant": "bad tenant"}, "/tenant"),
    ({"name": "x", "scopes": "read", "colour": "red"}, ""),
])
def test_create_key_validation_is_400_naming_the_field(server, acme, body, pointer):
    r = call(server, "POST", "/api/v1/keys", acme["admin"], json=body)
    problem = assert_problem(r, 400)
    assert pointer in [e["pointer"] for e in problem["errors"]], problem


def test_create_key_body_must_be_json(server, acme):
    r = call(server, "POST", "/api/v1/keys", acme["admin"], data="name=x",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 415)
    r = call(server, "POST", "/api/v1/keys", acme["admin"], data="{",
             headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_admin_creates_keys_only_for_its_own_tenant(server, acme):
    r = call(server, "POST", "/api/v1/keys", acme["admin"],
             json={"name": "x", "scopes": "admin", "tenant": tenant()})
    assert_problem(r, 403)


def test_system_admin_manages_every_tenant(server):
    ops = create_api_key(server, "system", "admin", "ops")
    t = tenant("cust")
    r = call(server, "POST", "/api/v1/keys", ops, json={"name": "x", "scopes": "admin",
                                                         "tenant": t})
    assert r.status_code == 201 and r.json()["tenant"] == t, r.text
    created = r.json()
    r = call(server, "GET", f"/api/v1/keys?tenant={t}", ops)
    assert [k["id"] for k in r.json()["data"]] == [created["id"]]
    assert call(server, "GET", f"/api/v1/keys?tenant={t}", created["key"]).status_code == 200
    assert_problem(call(server, "GET", "/api/v1/keys?tenant=system", created["key"]), 403)
    assert call(server, "DELETE", f"/api/v1/keys/{created['id']}", ops).status_code == 204
    server.run("keys", "revoke", key_id(ops))


def test_tenant_isolation(server, acme):
    other = tenant("other")
    b_admin = create_api_key(server, other, "admin")
    a_id = key_id(acme["read"])
    listed = call(server, "GET", "/api/v1/keys?limit=200", b_admin).json()
    assert all(k["tenant"] == other for k in listed["data"])
    assert a_id not in [k["id"] for k in listed["data"]]
    assert_problem(call(server, "GET", f"/api/v1/keys/{a_id}", b_admin), 404)
    assert_problem(call(server, "DELETE", f"/api/v1/keys/{a_id}", b_admin), 404)
    assert_problem(call(server, "GET", f"/api/v1/keys?tenant={acme['tenant']}", b_admin), 403)
    # A's key is untouched
    time.sleep(CACHE_TTL_S + 0.1)
    assert call(server, "GET", f"/api/v1/keys/{a_id}", acme["admin"]).json()["revoked_at"] is None
    assert_problem(call(server, "DELETE", "/api/v1/keys/not-a-key-id", b_admin), 404)
    assert_problem(call(server, "DELETE", "/api/v1/keys/0000000000000000", b_admin), 404)


def test_list_is_paginated_newest_first(server):
    t = tenant()
    admin = create_api_key(server, t, "admin", "k0")
    for i in range(1, 5):
        create_api_key(server, t, "read", f"k{i}")
    seen, cursor = [], None
    while True:
        path = "/api/v1/keys?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = call(server, "GET", path, admin).json()
        assert set(page) == {"data", "next_cursor", "has_more"}
        assert len(page["data"]) <= 2
        seen += page["data"]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert [k["name"] for k in seen] == ["k4", "k3", "k2", "k1", "k0"]
    assert all("key" not in k and "hash" not in k for k in seen)
    assert_problem(call(server, "GET", "/api/v1/keys?cursor=garbage", admin), 400)
    assert_problem(call(server, "GET", "/api/v1/keys?limit=0", admin), 400)


def test_last_used_at_is_recorded(server, migrated):
    t = tenant()
    admin = create_api_key(server, t, "admin")
    assert call(server, "GET", "/api/v1/keys", admin).status_code == 200
    with psycopg.connect(migrated.pg_url) as conn:
        used = conn.execute("SELECT last_used_at FROM api_keys WHERE id = %s",
                            (key_id(admin),)).fetchone()[0]
    assert used is not None


# ---- rate limit ----------------------------------------------------------------------------

def test_rate_limit_is_429_with_retry_after(migrated, tmp_path):
    f = serve_api(migrated, tmp_path, "api:\n  rate_limit: 1\n  rate_burst: 2\n")
    try:
        t = tenant()
        key, other = create_api_key(f, t, "admin"), create_api_key(f, t, "admin")
        codes = [call(f, "GET", "/api/v1/keys", key).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:], codes
        r = call(f, "GET", "/api/v1/keys", key)
        assert_problem(r, 429)
        assert int(r.headers["Retry-After"]) >= 1
        # per key: another key of the same tenant is not limited by the first one
        assert call(f, "GET", "/api/v1/keys", other).status_code == 200
        time.sleep(int(r.headers["Retry-After"]))
        assert call(f, "GET", "/api/v1/keys", key).status_code == 200
    finally:
        f.stop()


# ---- make run's development key --------------------------------------------------------------

def test_dev_key_is_created_kept_and_replaced(server, tmp_path):
    var = tmp_path / "var"
    env = dict(os.environ, FLOWD_VAR=str(var))
    script = [str(ROOT / "deploy/local/dev-key.sh"), str(server.config_path), "8080"]

    def run():
        r = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = run()
    key = (var / "dev-api-key").read_text().strip()
    assert KEY_RE.fullmatch(key)
    assert stat.S_IMODE((var / "dev-api-key").stat().st_mode) == 0o600
    assert key in out
    assert f'curl -H "Authorization: Bearer $(cat {var}/dev-api-key)" ' \
           "http://127.0.0.1:8080/api/v1/workflows" in out
    assert call(server, "GET", "/api/v1/keys", key).json()["data"][0]["tenant"] == "dev"
    assert run() and (var / "dev-api-key").read_text().strip() == key  # reused
    server.run("keys", "revoke", key_id(key))
    run()
    new = (var / "dev-api-key").read_text().strip()
    assert new != key and KEY_RE.fullmatch(new)
    assert stat.S_IMODE((var / "dev-api-key").stat().st_mode) == 0o600
