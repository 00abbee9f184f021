"""core/http and core/backoff through tests/system/http_probe.c, against a small threaded
fake HTTP server in this file (127.0.0.1, a free port). Needs neither PostgreSQL nor Kafka:
`.venv/bin/python -m pytest tests/system/test_http_client.py` runs it on its own."""

import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from conftest import ROOT, free_port

PROBE = ROOT / "build" / "tests" / "http_probe"


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 clients connecting at once must not hit the backlog

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.connections = set()  # (ip, port) of every client connection seen
        self.requests = []  # (path, idempotency key, monotonic time)
        self.counters = {}
        self.stopping = threading.Event()

    def count(self, name):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1
            return self.counters[name]

    def handle_error(self, request, client_address):
        pass  # clients that hang up early (the size cap, the timeout) are expected here

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connections can be reused

    def log_message(self, *args):
        pass

    def reply(self, status, body=b'{"ok":true}', headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def chunked(self, parts, pause):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            time.sleep(pause)
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        srv = self.server
        url = urlparse(self.path)
        with srv.lock:
            srv.connections.add(self.client_address)
            srv.requests.append((url.path, self.headers.get("Idempotency-Key"), time.monotonic()))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path == "/ok":
            time.sleep(0.05)  # long enough for the 50 requests to overlap
            self.reply(200)
        elif url.path == "/hang":
            srv.stopping.wait(30)
            self.close_connection = True
        elif url.path == "/big":
            self.reply(200, b"x" * 5000)
        elif url.path == "/bigchunked":
            self.chunked([b"y" * 600] * 5, 0)
        elif url.path == "/stream":
            self.chunked([b'{"delta":"a"}\n', b'{"delta":"b"}\n', b'{"delta":"c"}\n'], 0.2)
        elif url.path == "/flaky":
            self.reply(500 if srv.count("flaky") <= 2 else 200)
        elif url.path == "/limited":
            if srv.count("limited") == 1:
                self.reply(429, headers=[("Retry-After", "1")])
            else:
                self.reply(200)
        elif url.path == "/bad":
            self.reply(400, b'{"error":"bad"}')
        else:
            self.reply(404)

    do_POST = do_GET


@pytest.fixture
def server():
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()


def probe(*args, timeout=30):
    r = subprocess.run([str(PROBE), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return lines


def responses(lines):
    return [o for o in lines if o["event"] == "response"]


def test_http_client_50_concurrent_requests_reuse_connections(server):
    lines = probe(server.url("/ok"), 50, 5000, 0, 8)
    print(f"50 requests over {len(server.connections)} connections in {lines[-1]['ms']} ms")
    got = responses(lines)
    assert len(got) == 50
    assert {(o["rc"], o["status"]) for o in got} == {("FL_OK", 200)}
    assert sorted(o["i"] for o in got) == list(range(50))
    # 8 connections per host at most, each reused for several requests
    assert len(server.connections) <= 8, server.connections
    done = lines[-1]
    assert done["event"] == "done"
    # 50 x 50 ms one after the other would be 2.5 s; 8 at a time is about 0.35 s
    assert done["ms"] < 2000, done


def test_http_client_timeout_fires_against_a_silent_server(server):
    t0 = time.monotonic()
    (resp,) = responses(probe(server.url("/hang"), 1, 300))
    assert resp["rc"] == "FL_ETIMEDOUT", resp
    assert resp["error"].startswith(f'could not complete request to "{server.url("/hang")}": ')
    assert "timed out" in resp["error"]
    assert 250 <= resp["ms"] < 1500
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("path", ["/big", "/bigchunked"])
def test_http_client_response_over_the_cap_is_too_large(server, path):
    (resp,) = responses(probe(server.url(path), 1, 5000, 1000))
    assert resp["rc"] == "FL_ETOOBIG", resp
    assert resp["error"] == f'response from "{server.url(path)}" is too large: over 1000 bytes'
    assert resp["bytes"] == 0


def test_http_client_connection_refused_is_unavailable():
    port = free_port()  # bound and closed again: nobody listens there
    url = f"http://127.0.0.1:{port}/x"
    (resp,) = responses(probe(url, 1, 2000))
    assert resp["rc"] == "FL_EUNAVAIL"
    assert resp["error"] == f'could not connect to "{url}": connection refused'


def test_http_client_messages_hide_credentials_and_query(server):
    port = server.server_address[1]
    (resp,) = responses(probe(f"http://user:secret@127.0.0.1:{port}/big?key=k3y", 1, 2000, 10))
    assert resp["rc"] == "FL_ETOOBIG"
    assert "secret" not in resp["error"] and "k3y" not in resp["error"]
    assert f'"http://127.0.0.1:{port}/big"' in resp["error"]


def test_http_client_streams_chunks_as_they_arrive(server):
    lines = probe("stream", server.url("/stream"))
    chunks = [o for o in lines if o["event"] == "chunk"]
    (resp,) = responses(lines)
    assert resp["rc"] == "FL_OK" and resp["bytes"] == 0  # streamed, not collected
    assert sum(c["len"] for c in chunks) == 3 * len('{"delta":"a"}\n')
    assert len(chunks) >= 3
    assert chunks[-1]["ms"] - chunks[0]["ms"] >= 300  # delivered incrementally


def test_http_client_stop_completes_in_flight_requests_within_a_bound(server):
    lines = probe("stop", server.url("/hang"))
    (resp,) = responses(lines)
    stopped = next(o for o in lines if o["event"] == "stopped")
    assert resp["rc"] == "FL_EUNAVAIL"
    assert resp["error"].endswith("the HTTP client is stopping")
    assert stopped["ms"] < 1500  # stop_grace_ms is 300 in the probe


def attempts_of(lines):
    return [o for o in lines if o["event"] == "attempt"]


def test_http_client_retry_keeps_the_idempotency_key(server):
    lines = probe("retry", server.url("/flaky"), 5, 50, "inst-1:call:7")
    tries = attempts_of(lines)
    assert [o["status"] for o in tries] == [500, 500, 200]
    assert {o["idempotency_key"] for o in tries} == {"inst-1:call:7"}
    seen = [key for path, key, _ in server.requests if path == "/flaky"]
    assert seen == ["inst-1:call:7"] * 3
    assert lines[-1] == {"event": "result", "attempts": 3}


def test_http_client_retry_honours_retry_after(server):
    lines = probe("retry", server.url("/limited"), 5, 50, "k-429")
    tries = attempts_of(lines)
    assert [o["status"] for o in tries] == [429, 200]
    assert tries[0]["retry_after"] == "1" and tries[0]["delay_ms"] == 1000
    times = [t for path, _, t in server.requests if path == "/limited"]
    assert len(times) == 2 and times[1] - times[0] >= 0.95


def test_http_client_no_retry_on_400(server):
    lines = probe("retry", server.url("/bad"), 5, 50, "k-400")
    tries = attempts_of(lines)
    assert [o["status"] for o in tries] == [400]
    assert tries[0]["delay_ms"] == -1
    assert len([p for p, _, _ in server.requests if p == "/bad"]) == 1
