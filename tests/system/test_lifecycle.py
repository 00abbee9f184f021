"""Stopping: SIGTERM ends `flowd serve` in time with status 0 and a line per module;
logs are JSON lines that never carry a secret."""

import json
import signal
import time

from conftest import wait_ready


def test_sigterm_stops_within_shutdown_timeout(flowd_factory, migrated):
    f = flowd_factory(extra="").start()
    wait_ready(f)
    started = time.monotonic()
    code = f.stop(signal.SIGTERM, timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 10  # shutdown_timeout in the generated config
    stopped = [e["module"] for e in f.log_events() if e["event"] == "module.stopped"]
    # every role runs by default; modules stop in the reverse of their start order
    assert stopped == ["http", "health", "activities", "relay", "analytics", "timers", "engine",
                       "llm", "producer", "store"]


def test_sigint_stops_like_sigterm(flowd_factory, migrated):
    f = flowd_factory().start()
    wait_ready(f)
    assert f.stop(signal.SIGINT) == 0


def test_every_log_line_is_json_without_secrets(flowd_factory, stack, migrated):
    f = flowd_factory(env={"FLOWD_LOG_LEVEL": "debug"}).start()
    wait_ready(f)
    assert f.stop() == 0
    text = f.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 5
    for line in lines:
        event = json.loads(line)
        assert {"ts", "level", "event"} <= event.keys(), line
    assert stack.password not in text
    assert any(e["event"] == "config.loaded" for e in map(json.loads, lines))
