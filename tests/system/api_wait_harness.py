"""Shared by test_api_workflows.py, test_api_instances.py and test_api_dead_letters.py:
one `flowd serve` with every role on a scratch database and its own topic prefix
(engine_harness.EngineEnv), API keys for two tenants, and small HTTP helpers.

Tenant A is also the engine's default tenant, so records without ce_tenant (the
undecodable ones that become dead letters) belong to it."""

import time
import uuid

import pytest

from api_client import ApiClient, assert_problem  # noqa: F401 (tests import it from here)
from engine_harness import EngineEnv, Producer

BASE = "/api/v1"


class ApiEnv(ApiClient):
    default_timeout = 30

    def __init__(self, env, proc, tenant_a, tenant_b):
        self.env = env
        self.proc = proc
        self.url = proc.url
        self.tenant_a, self.tenant_b = tenant_a, tenant_b
        self.key = self.make_key(tenant_a)
        self.other_key = self.make_key(tenant_b)
        self.read_key = self.make_key(tenant_a, "read")
        self.producer = Producer(env.stack.kafka_bootstrap)

    def make_key(self, tenant, scopes="read,write"):
        r = self.proc.run("keys", "create", "--tenant", tenant, "--name", "api-wait-tests",
                          "--scopes", scopes)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def put_yaml(self, name, text, content_type="application/yaml", **kw):
        headers = dict(kw.pop("headers", None) or {})
        headers["Content-Type"] = content_type
        return self.call("PUT", f"{BASE}/workflows/{name}", data=text.encode(),
                         headers=headers, **kw)

    def all_pages(self, path, limit=2):
        """Every item of a paginated list, following next_cursor."""
        items, cursor, pages = [], None, 0
        sep = "&" if "?" in path else "?"
        while True:
            q = f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            r = self.get(q)
            assert r.status_code == 200, r.text
            body = r.json()
            assert set(body) == {"data", "next_cursor", "has_more"}, body
            items += body["data"]
            pages += 1
            assert pages < 100
            if not body["has_more"]:
                assert body["next_cursor"] is None
                return items
            cursor = body["next_cursor"]

    def wait_instance(self, workflow, key, timeout=30):
        """The instance of workflow with key, once the engine has it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.get(f"{BASE}/instances?workflow={workflow}&key={key}")
            assert r.status_code == 200, r.text
            if r.json()["data"]:
                return r.json()["data"][0]
            time.sleep(0.1)
        raise AssertionError(f"no instance of {workflow} for {key}\n{self.env.logs()}")


def start_api_env(stack, tmp_path_factory, name):
    tenant_a = f"{name}-a-{uuid.uuid4().hex[:8]}"
    tenant_b = f"{name}-b-{uuid.uuid4().hex[:8]}"
    env = EngineEnv(stack, tmp_path_factory.mktemp(name), ["order"],
                    settings={"engine": {"default_tenant": tenant_a, "max_step_attempts": 2}})
    env.prepare()
    proc = env.start()
    return ApiEnv(env, proc, tenant_a, tenant_b)


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory, request):
    a = start_api_env(stack, tmp_path_factory, request.module.__name__.split("_")[-1][:10])
    yield a
    a.env.cleanup()
