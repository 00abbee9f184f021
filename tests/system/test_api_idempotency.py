"""Idempotency-Key (issue 5 "Rules"), on POST /api/v1/keys (an FL_ROUTE_IDEMPOTENT route):
same key + same body replays the first response with `Idempotent-Replayed: true`; same key
+ different body is 422; while the first is running 409; keys are scoped to the API key;
expired records and records abandoned by a dead process are taken over."""

import hashlib
import json
import uuid

import psycopg
import pytest

from conftest import create_api_key
from keys_harness import assert_problem, call, key_id, serve_api, tenant


@pytest.fixture(scope="module")
def server(migrated, tmp_path_factory):
    # a short TTL so the expiry test needs no 24 h wait
    f = serve_api(migrated, tmp_path_factory.mktemp("idem"), "api:\n  idempotency_ttl: 1h\n")
    yield f
    f.stop()


@pytest.fixture
def admin(server):
    t = tenant("idem")
    return {"tenant": t, "key": create_api_key(server, t, "admin")}


def post(server, key, idem, body):
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = {"Content-Type": "application/json"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return call(server, "POST", "/api/v1/keys", key, data=data, headers=headers)


def names(server, key):
    return [k["name"] for k in call(server, "GET", "/api/v1/keys?limit=200", key).json()["data"]]


def test_same_key_same_body_replays(server, admin):
    idem = str(uuid.uuid4())
    first = post(server, admin["key"], idem, {"name": "once", "scopes": "read"})
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = post(server, admin["key"], idem, {"name": "once", "scopes": "read"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # the very same key text, not a second key
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert names(server, admin["key"]).count("once") == 1
    third = post(server, admin["key"], idem, {"name": "once", "scopes": "read"})
    assert third.headers["Idempotent-Replayed"] == "true" and third.content == first.content


def test_stored_response_is_sealed(server, admin, migrated):
    """The record of POST /api/v1/keys would otherwise hold the new key's text for a day."""
    idem = str(uuid.uuid4())
    created = post(server, admin["key"], idem, {"name": "sealed", "scopes": "read"}).json()
    with psycopg.connect(migrated.pg_url) as conn:
        stored = bytes(conn.execute(
            "SELECT body FROM idempotency_keys WHERE api_key_id = %s AND idem_key = %s",
            (key_id(admin["key"]), idem)).fetchone()[0])
    assert created["key"].encode() not in stored and b"sealed" not in stored
    assert len(stored) > 28


def test_without_the_header_every_post_runs(server, admin):
    for _ in range(2):
        assert post(server, admin["key"], None, {"name": "twice", "scopes": "read"}) \
            .status_code == 201
    assert names(server, admin["key"]).count("twice") == 2


def test_same_key_different_body_is_422(server, admin):
    idem = str(uuid.uuid4())
    assert post(server, admin["key"], idem, {"name": "a", "scopes": "read"}).status_code == 201
    r = post(server, admin["key"], idem, {"name": "b", "scopes": "read"})
    assert_problem(r, 422)
    assert "Idempotent-Replayed" not in r.headers
    assert "b" not in names(server, admin["key"])


def request_hash(body):
    """What api/idem.c hashes: method, path, query and body, NUL-separated."""
    return hashlib.sha256(b"POST\0/api/v1/keys\0\0" + body).digest()


def test_in_flight_is_409_then_a_dead_request_is_taken_over(server, admin, migrated):
    idem, body = str(uuid.uuid4()), json.dumps({"name": "slow", "scopes": "read"}).encode()
    kid = key_id(admin["key"])
    # the first request is still running (as if its handler were slow)
    with psycopg.connect(migrated.pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO idempotency_keys (api_key_id, idem_key, tenant, request_hash, "
                     "state) VALUES (%s, %s, %s, %s, 'running')",
                     (kid, idem, admin["tenant"], request_hash(body)))
        r = post(server, admin["key"], idem, body)
        assert_problem(r, 409)
        assert r.headers["Retry-After"] == "1"
        # a different body is a mismatch even while running
        assert_problem(post(server, admin["key"], idem, {"name": "other", "scopes": "read"}), 422)
        # the process that ran it died: past http.request_timeout + api.max_wait the row is
        # taken over, so the retry runs instead of answering 409 for a day
        conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '10 minutes' "
                     "WHERE api_key_id = %s AND idem_key = %s", (kid, idem))
        r = post(server, admin["key"], idem, body)
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.text
        row = conn.execute("SELECT state, status FROM idempotency_keys WHERE api_key_id = %s "
                           "AND idem_key = %s", (kid, idem)).fetchone()
        assert row == ("done", 201)


def test_expired_record_is_taken_over(server, admin, migrated):
    idem = str(uuid.uuid4())
    first = post(server, admin["key"], idem, {"name": "old", "scopes": "read"})
    assert first.status_code == 201
    with psycopg.connect(migrated.pg_url, autocommit=True) as conn:
        conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 hours' "
                     "WHERE api_key_id = %s AND idem_key = %s", (key_id(admin["key"]), idem))
    second = post(server, admin["key"], idem, {"name": "old", "scopes": "read"})
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]


def test_keys_are_scoped_to_the_api_key(server, admin):
    other = create_api_key(server, admin["tenant"], "admin", "second admin")
    idem = str(uuid.uuid4())
    a = post(server, admin["key"], idem, {"name": "scoped", "scopes": "read"})
    b = post(server, other, idem, {"name": "scoped", "scopes": "read"})
    assert a.status_code == b.status_code == 201
    assert "Idempotent-Replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    # and a different body under the other API key is no conflict either
    c = post(server, other, str(uuid.uuid4()), {"name": "x", "scopes": "read"})
    assert c.status_code == 201


def test_client_errors_are_replayed_too(server, admin):
    idem = str(uuid.uuid4())
    first = post(server, admin["key"], idem, {"name": "", "scopes": "read"})
    assert_problem(first, 400)
    again = post(server, admin["key"], idem, {"name": "", "scopes": "read"})
    assert_problem(again, 400)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["errors"] == first.json()["errors"]


@pytest.mark.parametrize("idem", ["", "x" * 256, "caf\u00e9"])
def test_bad_idempotency_key_is_400(server, admin, idem):
    r = post(server, admin["key"], idem.encode("utf-8").decode("latin-1"),
             {"name": "never", "scopes": "read"})
    assert_problem(r, 400)
    assert "never" not in names(server, admin["key"])


def test_longest_idempotency_key_is_accepted(server, admin):
    idem = "k" * 255
    assert post(server, admin["key"], idem, {"name": "long", "scopes": "read"}).status_code == 201
    assert post(server, admin["key"], idem, {"name": "long", "scopes": "read"}) \
        .headers["Idempotent-Replayed"] == "true"


def test_auth_comes_before_idempotency(server, admin):
    idem = str(uuid.uuid4())
    r = call(server, "POST", "/api/v1/keys", None, json={"name": "x", "scopes": "read"},
             headers={"Idempotency-Key": idem})
    assert_problem(r, 401)
    read = create_api_key(server, admin["tenant"], "read")
    r = call(server, "POST", "/api/v1/keys", read, json={"name": "x", "scopes": "read"},
             headers={"Idempotency-Key": idem})
    assert_problem(r, 403)
