"""Shared by test_api_keys.py and test_api_idempotency.py: a flowd serving the API on the
test stack's database, and small helpers around API keys."""

import re
import uuid

import requests

from conftest import Flowd, config_yaml, free_port, wait_ready

KEY_RE = re.compile(r"fk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def serve_api(stack, workdir, extra=""):
    """Starts `flowd serve` (api role only) with `extra` YAML appended; waits for /readyz."""
    port = free_port()
    f = Flowd(workdir, config_yaml(stack, port, extra="roles: api\n" + extra))
    f.port = port
    f.url = f"http://127.0.0.1:{port}"
    f.start()
    wait_ready(f)
    return f


def tenant(prefix="t"):
    """A tenant id no other test (or earlier run on the same database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def key_id(key):
    m = KEY_RE.fullmatch(key)
    assert m, key
    return m.group(1)


def call(f, method, path, key=None, **kw):
    headers = dict(kw.pop("headers", {}) or {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, f.url + path, headers=headers, timeout=10, **kw)


def assert_problem(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and "detail" in body, body
    assert body["instance"].startswith("urn:request:"), body
    return body
