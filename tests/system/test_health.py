"""/livez and /readyz against the real stack, including dependencies going away and
coming back while flowd keeps running."""

import pytest
import requests

from conftest import get_json, wait_for, wait_ready


@pytest.fixture
def running(flowd_factory, migrated):
    f = flowd_factory().start()
    wait_ready(f)
    yield f
    assert f.stop() == 0


def readyz(f):
    try:
        return get_json(f.url + "/readyz", timeout=3)
    except requests.ConnectionError:
        return None, None


def test_livez_answers_ok(running):
    status, body = get_json(running.url + "/livez")
    assert (status, body) == (200, {"status": "ok"})


def test_readyz_names_every_check(running):
    status, body = get_json(running.url + "/readyz")
    assert status == 200
    assert body["status"] == "ready"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "postgres": "up", "schema": "up", "kafka": "up", "engine": "up"}


def test_unknown_route_is_problem_json(running):
    r = requests.get(running.url + "/nope", timeout=5)
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == 404


def test_readyz_rejects_post(running):
    r = requests.post(running.url + "/readyz", timeout=5)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("script,check", [("pg.sh", "postgres"), ("kafka.sh", "kafka")])
def test_readyz_follows_a_dependency_down_and_back(running, stack, script, check):
    stack.script(script, "stop")
    try:
        def down():
            status, body = readyz(running)
            return status == 503 and body["checks"][check]["status"] == "down" and body
        body = wait_for(down, 60, what=f"/readyz to report {check} down")
        assert body["status"] == "unavailable"
        assert body["checks"][check]["error"]
    finally:
        stack.script(script, "start")
    wait_for(lambda: readyz(running)[0] == 200, 90, what=f"/readyz to recover after {check}")
    assert running.proc.poll() is None  # recovered without a restart
