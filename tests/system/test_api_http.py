"""What every route shares (api/dispatch.c): request ids, trace context, problem+json for
404/405/401, HEAD, and the worker pool not being starved by streams."""

import base64
import re
import uuid

import pytest
import requests

from conftest import Flowd, bearer, config_yaml, create_api_key, free_port, wait_ready

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory, stack):
    port = free_port()
    f = Flowd(tmp_path_factory.mktemp("http"), config_yaml(stack, port, extra="roles: api\n"))
    f.url = f"http://127.0.0.1:{port}"
    f.port = port
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    f.start()
    wait_ready(f)
    yield f
    f.stop()


def assert_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == "urn:request:" + r.headers["X-Request-Id"]
    return body


def test_request_id_is_generated_when_absent(server):
    r = requests.get(server.url + "/livez", timeout=5)
    assert UUID7.match(r.headers["X-Request-Id"]), r.headers


def test_request_id_is_echoed_when_sane(server):
    rid = "client-" + uuid.uuid4().hex
    r = requests.get(server.url + "/livez", headers={"X-Request-Id": rid}, timeout=5)
    assert r.headers["X-Request-Id"] == rid


def test_request_id_with_unsafe_characters_is_replaced(server):
    r = requests.get(server.url + "/livez", headers={"X-Request-Id": "a b<script>"}, timeout=5)
    assert UUID7.match(r.headers["X-Request-Id"])


def test_traceparent_is_echoed_or_generated(server):
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = requests.get(server.url + "/livez", headers={"traceparent": tp}, timeout=5)
    assert r.headers["traceparent"] == tp
    r = requests.get(server.url + "/livez", headers={"traceparent": "00-zz-bad"}, timeout=5)
    assert TRACEPARENT.match(r.headers["traceparent"])
    assert r.headers["traceparent"] != tp


def test_unknown_api_route_is_404_problem(server):
    body = assert_problem(requests.get(server.url + "/api/v1/nothing-here", timeout=5), 404)
    assert "/api/v1/nothing-here" in body["detail"]


def test_wrong_method_is_405_with_allow(server):
    r = requests.delete(server.url + "/livez", timeout=5)
    assert_problem(r, 405)
    assert r.headers["Allow"] == "GET, HEAD"


def test_protected_route_without_key_is_401(server):
    r = requests.get(server.url + "/api/v1/instances", timeout=5)
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_protected_route_with_garbage_key_is_401(server):
    r = requests.get(server.url + "/api/v1/instances",
                     headers={"Authorization": "Bearer fk_nothing_like_a_key"}, timeout=5)
    assert_problem(r, 401)


def test_head_answers_headers_only(server):
    r = requests.head(server.url + "/livez", timeout=5)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) > 0
    assert r.content == b""


def test_keep_alive_serves_many_requests_on_one_connection(server):
    with requests.Session() as s:
        for _ in range(50):
            assert s.get(server.url + "/livez", timeout=5).status_code == 200


def raw_request(server, data):
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("latin-1")


def test_request_civetweb_rejects_is_still_problem_json(server):
    # a control character in a header value never reaches dispatch: civetweb refuses it
    text = raw_request(server, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n")
    head, _, body = text.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400"), head
    assert "Content-Type: application/problem+json" in head
    assert "Connection: close" in head
    assert '"status":400' in body


def test_header_block_over_the_limit_is_rejected_as_problem_json(server):
    text = raw_request(server, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 +
                       b"\r\n\r\n")
    head = text.partition("\r\n\r\n")[0]
    assert head.split(" ")[1] in ("413", "431", "400"), head
    assert "application/problem+json" in head


def test_non_utf8_query_is_400_not_500(server):
    r = requests.get(server.url + "/livez?x=%ff%fe", timeout=5)
    assert_problem(r, 400)


def test_non_utf8_path_is_400_not_500(server):
    assert_problem(requests.get(server.url + "/api/v1/instances/%ff", timeout=5), 400)


def test_metrics_auth_read_needs_a_read_key(tmp_path, stack):
    from conftest import bearer, create_api_key
    port = free_port()
    f = Flowd(tmp_path, config_yaml(stack, port,
                                    extra="roles: api\napi:\n  metrics_auth: read\n"))
    f.url = f"http://127.0.0.1:{port}"
    assert f.run("migrate").returncode == 0
    key = create_api_key(f, "metrics-t", scopes="read")
    f.start()
    try:
        wait_ready(f)
        r = requests.get(f.url + "/metrics", timeout=5)
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        r = requests.get(f.url + "/metrics", headers=bearer(key), timeout=5)
        assert r.status_code == 200
        assert "flowd_build_info" in r.text
    finally:
        f.stop()


def test_deeply_nested_json_is_a_400_not_a_crash(server):
    """jansson recurses once per level, up to 2048, and civetweb's workers have ~100 KiB
    stacks: a few KB of brackets once killed the process. Every body and cursor is now
    parsed on a large stack of the worker's own (core/bigstack.h)."""
    key = create_api_key(server, "deep", "read,write")
    deep = "[" * 3000 + "]" * 3000
    for path, ctype in (("/api/v1/conversations", "application/json"),
                        ("/api/v1/events", "application/cloudevents+json"),
                        ("/api/v1/events", "application/cloudevents-batch+json")):
        r = requests.post(server.url + path, data=deep, timeout=10,
                          headers={**bearer(key), "Content-Type": ctype})
        assert r.status_code == 400, (path, ctype, r.status_code, r.text[:200])
    r = requests.post(server.url + "/v1/chat/completions", data=deep, timeout=10,
                      headers={**bearer(key), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
    # a cursor is the client's text too: 700 levels fit the query's 1 KiB
    cursor = base64.urlsafe_b64encode(b"[" * 700 + b"]" * 0).decode().rstrip("=")
    r = requests.get(server.url + "/api/v1/instances", params={"cursor": cursor}, timeout=10,
                     headers=bearer(key))
    assert_problem(r, 400)
    assert requests.get(server.url + "/livez", timeout=5).status_code == 200
