"""What the system tests (tests/system) and the benchmarks (tests/bench) both need to know
of the local stack and of flowd's configuration: the stack.env format that
deploy/local/stack.sh writes, free loopback ports, and flowd's default topic names.

Only the standard library here: tests/bench imports this module by path (benchstack.py),
and the benchmarks do not install the system tests' pytest plugins."""

import socket
from pathlib import Path

# topics.* setting -> default topic name (README's configuration table)
TOPICS = {
    "conversation_events": "conversation.events",
    "flowd_events": "flowd.events",
    "appointment_events": "appointment.events",
    "order_events": "order.events",
    "internal": "flowd.internal",
    "ai_responses": "ai.responses",
    "workflow_events": "workflow.events",
    "business_analytics": "business.analytics",
    "system_monitoring": "system.monitoring",
    "dead_letter": "dead.letter.queue",
}


def read_env_file(path):
    """stack.env is KEY='value' lines written by stack.sh."""
    env = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.strip("'")
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
