"""Shared by test_api_conversations.py, test_api_sse.py and test_api_compat.py: one
`flowd serve` with every role (the engine runs the shipped conversation workflow with the
local LLM provider), API keys for two tenants, and small HTTP helpers."""

import json
import time
import uuid

import requests

from api_client import ApiClient, assert_problem  # noqa: F401 (tests import it from here)
from conftest import Flowd, config_yaml, free_port, wait_ready

BASE = "/api/v1"


class Api(ApiClient):
    def __init__(self, flowd, key, other_key):
        self.flowd = flowd
        self.url = flowd.url
        self.key = key              # tenant A, read+write
        self.other_key = other_key  # tenant B, read+write

    def create(self, body=None, **kw):
        """A conversation, waited for until the engine has it (201, or 202 then polled)."""
        r = self.post(BASE + "/conversations", body or {"flow_type": "global"}, **kw)
        assert r.status_code in (201, 202), r.text
        cid = r.json()["id"]
        if r.status_code == 202:
            deadline = time.monotonic() + 30
            while self.get(f"{BASE}/conversations/{cid}").status_code != 200:
                assert time.monotonic() < deadline, "conversation never appeared"
                time.sleep(0.2)
        return cid

    def messages(self, cid, after=0):
        r = self.get(f"{BASE}/conversations/{cid}/messages?after={after}&limit=200")
        assert r.status_code == 200, r.text
        return r.json()["data"]


def make_key(flowd, tenant, scopes="read,write"):
    r = flowd.run("keys", "create", "--tenant", tenant, "--name", "conv-tests", "--scopes", scopes)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def start_api(stack, workdir, extra=""):
    port = free_port()
    f = Flowd(workdir, config_yaml(stack, port, extra=extra))
    f.port = port
    f.url = f"http://127.0.0.1:{port}"
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    f.start()
    wait_ready(f, timeout=90)
    a = make_key(f, "conv-a-" + uuid.uuid4().hex[:8])
    b = make_key(f, "conv-b-" + uuid.uuid4().hex[:8])
    return Api(f, a, b)


class SSE:
    """A minimal Server-Sent Events reader over a streamed requests response: yields
    dicts {id?, event, data}, {"retry": ms} and {"comment": text} for comment lines."""

    def __init__(self, resp):
        self.resp = resp
        self.lines = resp.iter_lines(decode_unicode=True, chunk_size=1)

    def __iter__(self):
        ev = {}
        for line in self.lines:
            if line is None:
                continue
            if line == "":
                if "data" in ev:
                    ev["data"] = json.loads(ev["data"])
                if ev:
                    yield ev  # an event, or a block with only `retry:`
                ev = {}
                continue
            if line.startswith(":"):
                yield {"comment": line[1:].strip()}
                continue
            name, _, value = line.partition(":")
            ev[name] = value[1:] if value.startswith(" ") else value

    def close(self):
        self.resp.close()


def open_sse(api, path, headers=None, timeout=30):
    h = {"Accept": "text/event-stream", "Authorization": f"Bearer {api.key}"}
    h.update(headers or {})
    r = requests.get(api.url + path, headers=h, stream=True, timeout=timeout)
    return r

