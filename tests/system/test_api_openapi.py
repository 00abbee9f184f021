"""api/openapi.yaml against the real server (issue 5, Acceptance): the document is valid
OpenAPI 3.1, every route `flowd routes` prints is in it and every operation in it is a
route, /openapi.json serves exactly the YAML file, and /docs is a self-contained page.
Neither /openapi.json nor /docs needs a key."""

import re

import pytest
import requests
import yaml
from openapi_spec_validator import OpenAPIV31SpecValidator

from conftest import ROOT, Flowd, config_yaml, free_port, wait_ready

DOC_PATH = ROOT / "api" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch")
ROUTE_LINE = re.compile(r"(GET|PUT|POST|DELETE|PATCH) (/\S*)")


def load_doc():
    return yaml.safe_load(DOC_PATH.read_text())


def doc_operations(doc):
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in METHODS if m in item}


@pytest.fixture(scope="module")
def api(migrated, tmp_path_factory):
    port = free_port()
    f = Flowd(tmp_path_factory.mktemp("openapi"),
              config_yaml(migrated, port, extra="roles: api\n"))
    f.port, f.url = port, f"http://127.0.0.1:{port}"
    f.start()
    try:
        wait_ready(f)
        yield f
    finally:
        f.stop()


def test_document_is_valid_openapi_3_1():
    doc = load_doc()
    assert doc["openapi"].startswith("3.1."), doc["openapi"]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in OpenAPIV31SpecValidator(doc).iter_errors()]
    assert not errors, "api/openapi.yaml is not valid OpenAPI 3.1:\n" + "\n".join(errors)


def test_document_conventions():
    """What other tests and clients rely on: full paths, an operationId each, problem
    responses for errors, and no key on the open routes."""
    doc = load_doc()
    seen, bad = set(), []
    open_paths = {"/livez", "/readyz", "/openapi.json", "/docs", "/health", "/metrics"}
    for method, path in sorted(doc_operations(doc)):
        op = doc["paths"][path][method.lower()]
        where = f"{method} {path}"
        # /v1/... is the OpenAI-compatible gateway, whose clients expect exactly that path
        if not (path in open_paths or path.startswith(("/api/v1/", "/v1/"))):
            bad.append(f"{where}: not a full /api/v1 (or /v1 gateway) path")
        if op.get("operationId") in seen or not op.get("operationId"):
            bad.append(f"{where}: missing or duplicate operationId")
        seen.add(op.get("operationId"))
        # civetweb itself answers 400 to a malformed request on any route
        if "400" not in op["responses"]:
            bad.append(f"{where}: no 400 response")
        if path in open_paths and op.get("security") != []:
            bad.append(f"{where}: must declare `security: []` (no key)")
        if path not in open_paths:
            for status in ("401", "403", "429"):
                if status not in op["responses"]:
                    bad.append(f"{where}: no {status} response")
    assert not bad, "\n".join(bad)


def test_registered_routes_match_the_document(api):
    r = api.run("routes")
    assert r.returncode == 0, r.stderr
    routes = set()
    for line in r.stdout.splitlines():
        m = ROUTE_LINE.fullmatch(line.strip())
        assert m, f"unexpected line from `flowd routes`: {line!r}"
        routes.add((m.group(1), m.group(2)))
    documented = doc_operations(load_doc())
    missing = sorted(routes - documented)
    extra = sorted(documented - routes)
    report = []
    if missing:
        report.append("registered but not in api/openapi.yaml:\n  " +
                      "\n  ".join(f"{m} {p}" for m, p in missing))
    if extra:
        report.append("in api/openapi.yaml but not registered:\n  " +
                      "\n  ".join(f"{m} {p}" for m, p in extra))
    assert not report, "\n".join(report)


def test_openapi_json_is_the_yaml_document(api):
    r = requests.get(api.url + "/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "application/json"
    assert r.headers.get("X-Request-Id")
    assert r.json() == load_doc()
    # HEAD answers like GET without a body
    h = requests.head(api.url + "/openapi.json", timeout=10)
    assert h.status_code == 200 and not h.content


def test_docs_page_is_self_contained(api):
    r = requests.get(api.url + "/docs", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert page.lstrip().lower().startswith("<!doctype html>")
    for method, path in doc_operations(load_doc()):
        assert f"<code>{path}</code>" in page, f"/docs does not list {method} {path}"
    # the machines may have no internet: nothing is loaded from anywhere
    for needle in ("<script", "<link", "src=", "@import", "http://", "https://"):
        assert needle not in page, f"/docs contains {needle!r}"


def test_docs_routes_refuse_other_methods(api):
    r = requests.post(api.url + "/openapi.json", data="{}", timeout=10)
    assert r.status_code == 405, r.text
    assert "GET" in r.headers.get("Allow", "")
    assert r.headers["Content-Type"].startswith("application/problem+json")
