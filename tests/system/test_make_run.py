"""The README's first command: `make run` serves a ready flowd within 120 s, Ctrl-C stops
flowd but not the stack, and a second `make run` reuses the running stack."""

import os
import signal
import subprocess
import time

import requests

from conftest import ROOT, free_port, wait_for


class MakeRun:
    def __init__(self, env, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, port, timeout):
        def ready():
            assert self.proc.poll() is None, self.output()
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz",
                                    timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(ready, timeout, interval=0.5, what="make run to serve /readyz with 200")

    def ctrl_c(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # what the terminal sends the group
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def assert_subcommands_find_var_config(var, tmp_path, env, port):
    """`flowd migrate` with no flags, from a project root, uses var/flowd.yaml."""
    root = tmp_path / "project"
    (root / "var").mkdir(parents=True)
    (root / "var" / "flowd.yaml").write_text((var / "flowd.yaml").read_text())
    clean = {k: v for k, v in env.items() if not k.startswith("FLOWD_")}
    flowd = str(ROOT / "build" / "flowd")
    r = subprocess.run([flowd, "migrate"], cwd=root, env=clean, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert '"event":"migrate.done"' in r.stderr
    r = subprocess.run([flowd, "config", "dump"], cwd=root, env=clean, capture_output=True,
                       text=True, timeout=60)
    assert f"port: {port}" in r.stdout


def test_make_run_serves_and_reuses_its_stack(tmp_path):
    var = ROOT / "var" / "test-make-run"
    port = free_port()
    env = dict(os.environ, FLOWD_VAR=str(var), FLOWD_HTTP_PORT=str(port))
    for k in ("FLOWD_PG_PORT", "FLOWD_KAFKA_PORT", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(k, None)
    stack = [str(ROOT / "deploy/local/stack.sh")]
    try:
        first = MakeRun(env, tmp_path / "first.log")
        try:
            first.wait_ready(port, 120)
            assert f"http://127.0.0.1:{port}" in first.output()
            assert "make stop" in first.output()
            stack_env = (var / "stack.env").read_text()
            assert_subcommands_find_var_config(var, tmp_path, env, port)
        finally:
            code = first.ctrl_c()
        assert code in (0, 2, -signal.SIGINT), first.output()
        assert '"event":"server.stopped"' in first.output()  # flowd stopped cleanly
        assert subprocess.run(stack + ["status"], env=env, capture_output=True).returncode == 0

        started = time.monotonic()
        second = MakeRun(env, tmp_path / "second.log")
        try:
            second.wait_ready(port, 120)
        finally:
            second.ctrl_c()
        assert (var / "stack.env").read_text() == stack_env  # same ports, same cluster
        assert time.monotonic() - started < 60
    finally:
        subprocess.run(["make", "--no-print-directory", "stop"], cwd=ROOT, env=env, timeout=120)
        subprocess.run(stack + ["destroy"], cwd=ROOT, env=env, timeout=120)
