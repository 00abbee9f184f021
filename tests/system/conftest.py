"""Black-box harness: the real flowd binary against the real PostgreSQL and Kafka that
tests/system/run.sh started under $FLOWD_TEST_VAR (see deploy/local/stack.sh)."""

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests

from stack_common import free_port, read_env_file  # noqa: F401 (tests import them from here)

ROOT = Path(__file__).resolve().parents[2]
FLOWD = ROOT / "build" / "flowd"
STACK = ROOT / "deploy" / "local"


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Stack:
    def __init__(self, var):
        self.var = Path(var)
        env = read_env_file(self.var / "stack.env")
        self.pg_url = env["PG_URL"]
        self.pg_port = int(env["PG_PORT"])
        self.kafka_bootstrap = env["KAFKA_BOOTSTRAP"]
        self.password = self.pg_url.split(":")[2].split("@")[0]

    def script(self, name, action):
        env = dict(os.environ, FLOWD_VAR=str(self.var))
        subprocess.run([str(STACK / name), action], env=env, check=True, timeout=180,
                       stdout=subprocess.DEVNULL)

    def db_url(self, dbname):
        return self.pg_url.rsplit("/", 1)[0] + "/" + dbname

    def create_database(self):
        """A scratch database, so a test can see a schema from nothing."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.db_url(name)


@pytest.fixture(scope="session")
def stack():
    var = os.environ.get("FLOWD_TEST_VAR")
    if not var:
        pytest.fail("FLOWD_TEST_VAR is not set: run the system tests with tests/system/run.sh")
    return Stack(var)


@pytest.fixture(scope="session")
def migrated(stack):
    """The stack's own database, migrated once for the tests that serve on it."""
    r = subprocess.run([str(FLOWD), "--config", str(stack.var / "flowd.yaml"), "migrate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return stack


class Flowd:
    """One `flowd` process with its own config file; stderr is kept for assertions."""

    def __init__(self, workdir, config, env=None):
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "flowd.yaml"
        self.config_path.write_text(config)
        self.stderr_path = self.workdir / "stderr.log"
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def run(self, *args, timeout=60):
        return subprocess.run([str(FLOWD), "--config", str(self.config_path), *args],
                              cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, *args):
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(FLOWD), "--config", str(self.config_path), *args, "serve"],
            cwd=self.workdir, env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr.close()
        return code

    def log_text(self):
        return self.stderr_path.read_text(errors="replace")

    def log_events(self):
        return [json.loads(line) for line in self.log_text().splitlines() if line.strip()]


def config_yaml(stack, port, db_url=None, extra=""):
    # every process gets its own consumer group and static member id, so processes of
    # different tests never fence each other in the engine's group
    member = "t-" + uuid.uuid4().hex[:12]
    return (f"http:\n  listen: 127.0.0.1\n  port: {port}\n"
            f"db:\n  url: \"{db_url or stack.pg_url}\"\n  connect_timeout: 2s\n"
            f"kafka:\n  bootstrap.servers: \"{stack.kafka_bootstrap}\"\n"
            f"engine:\n  workflows_dir: \"{ROOT / 'workflows'}\"\n  group: {member}\n"
            f"  instance_id: {member}\n"
            f"health:\n  interval: 250ms\nshutdown_timeout: 10s\n{extra}")


@pytest.fixture
def flowd_factory(tmp_path, stack):
    """Makes Flowd processes; every one still running at teardown is killed."""
    made = []

    def make(port=None, db_url=None, extra="", env=None, config=None):
        port = port or free_port()
        d = tmp_path / f"flowd{len(made)}"
        d.mkdir()
        f = Flowd(d, config if config is not None else config_yaml(stack, port, db_url, extra),
                  env)
        f.port = port
        f.url = f"http://127.0.0.1:{port}"
        made.append(f)
        return f

    yield make
    for f in made:
        if f.proc and f.proc.poll() is None:
            f.stop(signal.SIGKILL)


def get_json(url, timeout=5):
    r = requests.get(url, timeout=timeout)
    return r.status_code, r.json()


def wait_ready(f, timeout=60):
    def ready():
        assert f.proc.poll() is None, f"flowd exited early:\n{f.log_text()}"
        try:
            return get_json(f.url + "/readyz")[0] == 200
        except requests.ConnectionError:
            return False
    wait_for(ready, timeout, what=f"{f.url}/readyz to answer 200")


# ---- API keys (the `flowd keys create` contract) ---------------------------------------

def create_api_key(f, tenant, scopes="read,write", name="test"):
    """A new API key for `tenant` made with the CLI against f's configuration (f: a Flowd
    whose database is migrated). Returns the key text (`fk_<id>_<secret>`)."""
    r = f.run("keys", "create", "--tenant", tenant, "--name", name, "--scopes", scopes)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def bearer(key):
    """Request headers that authenticate with `key`."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api_key():
    """api_key(f, tenant, scopes="read,write", name="test") -> key text; see create_api_key."""
    return create_api_key
