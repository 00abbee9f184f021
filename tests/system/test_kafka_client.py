"""core/kafka against the real broker, through tests/system/kafka_probe.c: the producer
partitions like the Java client, a static member gets its partitions back at once after a
crash, and stored offsets survive a clean close."""

import json
import signal
import subprocess
import threading
import uuid

import pytest

from conftest import ROOT

PROBE = ROOT / "build" / "tests" / "kafka_probe"
TOPIC = "flowd.events"
PARTITIONS = 6  # topics.partitions default, as created by `flowd topics ensure`
SESSION_TIMEOUT_S = 30  # the consumer's session.timeout.ms default in core/kafka.c


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2, which the Java client's default partitioner uses."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Consumer:
    """A kafka_probe consume process whose JSON lines are collected by a thread."""

    def __init__(self, config, group, instance_id, seconds=120):
        self.proc = subprocess.Popen(
            [str(PROBE), str(config), "consume", group, instance_id, TOPIC, str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()

    def wait(self, predicate, timeout):
        with self.cond:
            ok = self.cond.wait_for(lambda: predicate(self.lines), timeout)
        assert ok, f"probe lines so far: {self.lines}"
        return [e for e in self.lines]

    def events(self, name):
        with self.cond:
            return [e for e in self.lines if e["event"] == name]

    def values(self, prefix):
        """Values of consumed messages that this test produced (the topic is shared)."""
        return [e["value"][len(prefix):] for e in self.events("message")
                if e["value"].startswith(prefix)]

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=5)


def produce(config, key, value):
    r = subprocess.run([str(PROBE), str(config), "produce", TOPIC, key, value],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def config(stack):
    return stack.var / "flowd.yaml"


def assigned(lines):
    return any(e["event"] == "assigned" for e in lines)


def test_producer_partitions_keys_like_the_java_client(config):
    for key in ("order-42", "conv-7f3a", "a", "appointment:2026-11-22T10:00"):
        first = produce(config, key, "one")
        second = produce(config, key, "two")
        assert first["partition"] == second["partition"] == java_partition(key, PARTITIONS)
        assert second["offset"] > first["offset"]


def test_static_member_gets_its_partitions_back_at_once_after_a_crash(config):
    group = "probe-" + uuid.uuid4().hex[:8]
    first = Consumer(config, group, "engine-a")
    try:
        first.wait(assigned, 60)
        assert first.events("assigned")[0]["partitions"] == PARTITIONS
    finally:
        first.stop(signal.SIGKILL)  # no LeaveGroup, no commit: a crash
    again = Consumer(config, group, "engine-a")
    try:
        again.wait(assigned, SESSION_TIMEOUT_S + 15)
        event = again.events("assigned")[0]
        assert event["partitions"] == PARTITIONS
        # a new dynamic member would wait for the dead one's session (30 s) to expire
        assert event["ms"] < SESSION_TIMEOUT_S * 1000 / 2, event
    finally:
        again.stop(signal.SIGTERM)


def test_stored_offsets_survive_a_clean_close(config):
    group = "probe-" + uuid.uuid4().hex[:8]
    key = "conv-" + uuid.uuid4().hex[:8]
    mine = key + ":"
    for i in range(3):
        produce(config, key, f"{mine}before-{i}")
    first = Consumer(config, group, "engine-b")
    try:
        first.wait(lambda ls: sum(e.get("value", "").startswith(mine) for e in ls) >= 3, 60)
    finally:
        first.stop(signal.SIGTERM)
    assert first.values(mine) == ["before-0", "before-1", "before-2"]
    assert first.events("closed")

    produce(config, key, f"{mine}after")
    again = Consumer(config, group, "engine-b")
    try:
        again.wait(lambda ls: any(e.get("value", "").startswith(mine) for e in ls), 60)
    finally:
        again.stop(signal.SIGTERM)
    assert again.values(mine) == ["after"]
