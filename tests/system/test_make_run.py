"""The README's first command: `make run` serves a ready flowd within 120 s."""

import os
import signal
import subprocess

import requests

from conftest import ROOT, free_port, wait_for


def test_make_run_answers_readyz(tmp_path):
    var = ROOT / "var" / "test-make-run"
    port = free_port()
    env = dict(os.environ, FLOWD_VAR=str(var), FLOWD_HTTP_PORT=str(port))
    for k in ("FLOWD_PG_PORT", "FLOWD_KAFKA_PORT", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(k, None)
    log = open(tmp_path / "make-run.log", "wb")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def ready():
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(ready, 120, interval=0.5, what="make run to serve /readyz with 200")
        output = (tmp_path / "make-run.log").read_text()
        assert f"http://127.0.0.1:{port}" in output
        assert "make stop" in output
        # `flowd migrate` from the project root finds var/flowd.yaml by default
        r = subprocess.run([str(ROOT / "build" / "flowd"), "migrate"], cwd=ROOT,
                           env=dict(env, FLOWD_CONFIG=str(var / "flowd.yaml")),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=30)
        log.close()
        subprocess.run(["make", "--no-print-directory", "stop"], cwd=ROOT, env=env, timeout=120)
        subprocess.run([str(ROOT / "deploy/local/stack.sh"), "destroy"], cwd=ROOT, env=env,
                       timeout=120)
    assert code in (0, 2, 130, -signal.SIGINT), (tmp_path / "make-run.log").read_text()
