"""Helpers of tests/system/test_api_events.py: a flowd serving the API (roles: api) on its
own scratch database and its own prefixed topics, an API key made with the CLI, and an
independent Kafka reader (confluent_kafka, engine_harness.read_topic)."""

import json
import uuid

import pytest
import requests
import yaml

from conftest import free_port
from engine_harness import EngineEnv, read_topic

TENANT = "acme"


class EventsEnv(EngineEnv):
    """EngineEnv (scratch database, prefixed topics) whose flowd serves the API only, with
    api.event_routes pointing at the prefixed topics."""

    def __init__(self, stack, tmp_path, settings=None, bootstrap=None):
        super().__init__(stack, tmp_path, [])
        self.extra = settings or {}
        self.bootstrap = bootstrap or stack.kafka_bootstrap
        t = self.topics
        self.routes = (f"conversation.={t['conversation_events']},"
                       f"order.={t['order_events']},"
                       f"metric.={t['system_monitoring']}")
        self.key = None
        self.url = None

    def config(self, port, instance_id, settings=None, roles=None):
        cfg = {
            "http": {"listen": "127.0.0.1", "port": port},
            "db": {"url": self.db_url, "connect_timeout": "2s"},
            "kafka": {"bootstrap.servers": self.bootstrap},
            "kafka_client": {"produce_timeout": "3s", "metadata_timeout": "1s"},
            "health": {"interval": "250ms"},
            "shutdown_timeout": "5s",
            "topics": dict(self.topics),
            "engine": {"group": self.group, "instance_id": instance_id,
                       "workflows_dir": str(self.workflows_dir)},
            "api": {"event_routes": self.routes},
            "roles": roles or "api",
        }
        for section, values in self.extra.items():
            cfg.setdefault(section, {}).update(values)
        return yaml.safe_dump(cfg, sort_keys=False)

    def serve(self, wait_ready=True):
        """Starts flowd serve and makes an API key (read,write) for TENANT."""
        p = self.proc().start()
        self.url = p.url
        if wait_ready:
            p.wait_ready()
        r = p.run("keys", "create", "--tenant", TENANT, "--name", "events",
                  "--scopes", "read,write")
        assert r.returncode == 0, r.stderr
        self.key = r.stdout.strip()
        self.p = p
        return p

    def headers(self, **extra):
        h = {"Authorization": f"Bearer {self.key}"}
        h.update(extra)
        return h

    def post(self, body, content_type, headers=None, path="/api/v1/events", timeout=30):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h = self.headers(**{"Content-Type": content_type})
        h.update(headers or {})
        return requests.post(self.url + path, data=data, headers=h, timeout=timeout)

    def get(self, path, timeout=30):
        return requests.get(self.url + path, headers=self.headers(), timeout=timeout)

    def records(self, topic_key, ids, timeout=30):
        """The records of topics[topic_key] whose ce_id is in ids, by id."""
        want = set(ids)

        def done(out):
            return want <= {r["headers"].get("ce_id") for r in out}

        out = read_topic(self.bootstrap, self.topics[topic_key], until=done, timeout=timeout)
        found = {r["headers"].get("ce_id"): r for r in out if r["headers"].get("ce_id") in want}
        assert set(found) == want, f"missing on {topic_key}: {want - set(found)}"
        return found


def new_id():
    return "ev-" + uuid.uuid4().hex[:12]


def envelope(type_="thing.happened", subject="subj-1", data=None, **more):
    e = {"specversion": "1.0", "id": new_id(), "source": "/tests/events", "type": type_}
    if subject is not None:
        e["subject"] = subject
    if data is not None:
        e["data"] = data
    e.update(more)
    return e


def binary_headers(type_="thing.happened", subject="subj-1", **more):
    h = {"ce-specversion": "1.0", "ce-id": new_id(), "ce-source": "/tests/events",
         "ce-type": type_}
    if subject is not None:
        h["ce-subject"] = subject
    h.update(more)
    return h


def assert_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["detail"]
    return body


def pointers(body):
    return [e["pointer"] for e in body.get("errors", [])]


@pytest.fixture
def events_env(stack, tmp_path):
    """events_env(settings=None, bootstrap=None, serve=True) -> a prepared EventsEnv."""
    made = []

    def make(settings=None, bootstrap=None, serve=True, prepare=True):
        env = EventsEnv(stack, tmp_path / f"events{len(made)}", settings, bootstrap)
        made.append(env)
        if prepare:
            env.prepare()
        if serve:
            env.serve()
        return env

    yield make
    for env in made:
        env.cleanup()
