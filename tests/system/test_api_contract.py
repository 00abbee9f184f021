"""Contract test (issue 5, Acceptance): schemathesis generates requests for every operation
of api/openapi.yaml and sends them to a live flowd (API, engine and the rest, on the real
PostgreSQL and Kafka) with an admin key. Every response must be no 5xx, have a documented
status code, content type and headers, and a body that matches the documented schema.

One pytest test per operation and generation mode (valid requests, then invalid ones), so
a failure names the operation. Bounded and deterministic: Hypothesis runs derandomized
(the seed comes from the test itself), without its example database and without
shrinking, FLOWD_CONTRACT_EXAMPLES (default 25) valid and half as many invalid examples
per operation. The waits a request may ask for are capped small (api.max_wait,
api.create_wait) so the file runs well under three minutes."""

import os
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import FLOWD, ROOT, Flowd, config_yaml, free_port, wait_ready

DOC_PATH = ROOT / "api" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")
EXAMPLES = int(os.environ.get("FLOWD_CONTRACT_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
# api.max_wait bounds ?wait= and the SSE-free long polls; create_wait the 201-or-202 wait
SERVER_EXTRA = ("api:\n  rate_limit: 0\n  max_wait: 1s\n  create_wait: 1s\n"
                "  sse_heartbeat: 1s\n  max_streams: 8\n")


def operations():
    doc = yaml.safe_load(DOC_PATH.read_text())
    return [(m.upper(), path) for path, item in doc["paths"].items() for m in METHODS
            if m in item]


@pytest.fixture(scope="module")
def server(migrated, tmp_path_factory):
    port = free_port()
    f = Flowd(tmp_path_factory.mktemp("contract"),
              config_yaml(migrated, port, extra=SERVER_EXTRA))
    f.port, f.url = port, f"http://127.0.0.1:{port}"
    f.start()
    try:
        wait_ready(f)
        r = f.run("keys", "create", "--tenant", "contract", "--name", "schemathesis",
                  "--scopes", "admin")
        assert r.returncode == 0, r.stderr
        f.key = r.stdout.strip()
        yield f
    finally:
        f.stop()


@pytest.fixture(scope="module")
def schema(server):
    s = schemathesis.openapi.from_path(str(DOC_PATH))
    s.config.update(base_url=server.url)
    return s


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
@pytest.mark.parametrize("method,path", operations(), ids=[f"{m} {p}" for m, p in operations()])
def test_operation_honours_the_document(server, schema, method, path, mode):
    op = schema[path][method]
    # the key is fixed, not generated: schemathesis would otherwise invent Bearer tokens
    # and test little more than the 401 path
    auth = {"Authorization": f"Bearer {server.key}"}
    examples = EXAMPLES if mode == GenerationMode.POSITIVE else max(1, EXAMPLES // 2)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(case=op.as_strategy(generation_mode=mode, headers=auth))
    def run(case):
        case.call_and_validate(headers=auth, checks=CHECKS, timeout=20)

    try:
        run()
    finally:
        _fail_if_crashed(server, f"{method} {path}")


def _fail_if_crashed(f, what):
    """A crash is reported on the operation that caused it; flowd is restarted so the
    operations after it are still tested (the dead process's log is kept)."""
    code = f.proc.poll()
    if code is None:
        return
    f.crashes = getattr(f, "crashes", 0) + 1
    f.stderr.close()
    kept = f.stderr_path.with_name(f"stderr-crash{f.crashes}.log")
    f.stderr_path.rename(kept)
    f.start()
    wait_ready(f)
    pytest.fail(f"flowd died (exit status {code}) while serving {what}; its log: {kept}")


def test_flowd_binary_exists():
    """A missing build is a setup error, not N contract failures."""
    assert FLOWD.exists(), "build/flowd is missing: run `make build`"
    assert subprocess.run([str(FLOWD), "version"], capture_output=True).returncode == 0
