"""HTTP load for S1 and S3: the request every run sends (POST /api/v1/events, a 1 KB JSON
body, CloudEvents binary mode: the attributes in ce-* headers, the data as the body),
`flowd serve` with the API role, the baseline server (tests/bench/baseline_http.c), and
the two load generators: wrk (closed loop, for the maximum rate) and
tests/bench/loadgen.c (open loop, constant rate, for latency without coordinated
omission).

civetweb holds one worker thread per keep-alive connection for as long as it stays
open, so 64 connections need 64 workers: flowd runs with http.threads 32 plus its
default api.max_streams 32 (its default 16 + 32 = 48 would leave 16 of the 64
connections waiting for a worker), and the baseline with the same 64 threads."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import yaml

from engineload import Engine, free_port

CONNECTIONS = 64
HTTP_THREADS = 32  # + api.max_streams (32) = 64 civetweb workers, as many as connections
WORKERS = 64
BODY_BYTES = 1024
PATH = "/api/v1/events"
BENCH_TENANT = "bench"


def body_bytes():
    """A 1 KB JSON object shaped like an order event (the same bytes every request)."""
    data = {"order": "o-0001", "customer": "c-0042", "currency": "EUR",
            "items": [{"sku": f"sku-{i:04d}", "qty": i % 5 + 1, "price_cents": 1000 + 37 * i}
                      for i in range(10)]}
    text = json.dumps(data, separators=(",", ":"))
    data["note"] = "n" * (BODY_BYTES - len(text) - len(',"note":""'))
    body = json.dumps(data, separators=(",", ":")).encode()
    assert len(body) == BODY_BYTES, len(body)
    return body


def ce_headers(ce_type, key=None):
    """The fixed headers of a binary-mode CloudEvent (ce-id and ce-subject vary)."""
    h = {"Content-Type": "application/json", "ce-specversion": "1.0", "ce-type": ce_type,
         "ce-source": "flowd-bench"}
    if key:
        h["Authorization"] = f"Bearer {key}"
    return h


# ---- servers ------------------------------------------------------------------------------

def wait_ready(port, proc_alive, timeout=60.0, path="/readyz"):
    """Polls GET path until 200; fails early when the process exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc_alive():
            raise RuntimeError(f"the server on port {port} exited while starting")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"port {port} not ready in {timeout:.0f} s: {last}")


def flowd_api(setup, db, roles, group, api=None):
    """`flowd serve` with `roles` on a free port, the rate limit off, 64 workers; `api`
    adds api.* settings."""
    cfg = {"http": {"listen": "127.0.0.1", "port": free_port(), "threads": HTTP_THREADS},
           "api": {"rate_limit": 0, **(api or {})}, "roles": roles}
    return FlowdServer(setup.flowd, setup.config(db, group, group, cfg))


class FlowdServer(Engine):
    """An Engine (engineload.py) that also serves HTTP; its port is in its config.
    `wrapper` runs it under another program (valgrind)."""

    wrapper = ()

    def start(self):
        with open(self.log, "ab") as log:
            log.write(f"---- start at {time.time():.3f}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([*self.wrapper, str(self.flowd), "--config",
                                          str(self.config), "serve"], env=config_only_env(),
                                         stdout=subprocess.DEVNULL, stderr=log)
        return self

    @property
    def port(self):
        return int(yaml.safe_load(self.config.read_text())["http"]["port"])

    def start_ready(self, timeout=90.0):
        self.start()
        try:
            wait_ready(self.port, self.alive, timeout)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{e}\n{self.tail()}") from None
        return self


def config_only_env():
    """The environment without FLOWD_* variables, which override the config file (run.sh
    exports FLOWD_HTTP_PORT for the stack; a server here must listen where its config
    says)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLOWD_")}


def api_key(setup, config):
    """A write key for tenant `bench`, made by the CLI against the same database."""
    out = setup.flowd_cmd(config, "keys", "create", "--tenant", BENCH_TENANT, "--name",
                          "bench", "--scopes", "write")
    return out.strip().splitlines()[-1]


class Baseline:
    """tests/bench/baseline_http.c on a free port, 64 threads."""

    def __init__(self, build, port):
        self.cmd = [str(build / "bench" / "baseline_http"), str(port), str(WORKERS)]
        self.port = port
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL)
        wait_ready_tcp(self.port, lambda: self.proc.poll() is None)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wait_ready_tcp(port, alive, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"baseline_http did not listen on {port}")


# ---- load generators ------------------------------------------------------------------------

WRK_LUA = """-- written by tests/bench/httpload.py: POST the body file with unique ce-id/ce-subject
local n, tid = 0, 0
local counter = 1
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function init(args)
  local f = assert(io.open(args[1], "rb")); wrk.body = f:read("*a"); f:close()
  wrk.method = "POST"
  for i = 2, #args, 2 do wrk.headers[args[i]] = args[i + 1] end
end
function request()
  n = n + 1
  local id = args_tag .. "-" .. tid .. "-" .. n
  wrk.headers["ce-id"] = id
  wrk.headers["ce-subject"] = id
  return wrk.format()
end
"""


def write_wrk_script(path, tag):
    path.write_text(f'args_tag = "{tag}"\n' + WRK_LUA)
    return path


def wrk(port, seconds, script, body_file, headers, threads=2):
    """Closed loop, 64 connections: (accepted 2xx per second, details)."""
    args = [str(body_file)]
    for k, v in headers.items():
        args += [k, v]
    cmd = ["wrk", "-t", str(threads), "-c", str(CONNECTIONS), "-d", f"{seconds}s",
           "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}{PATH}", "--", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{r.stdout}\n{r.stderr}")
    return parse_wrk(r.stdout)


def parse_wrk(out):
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    total = int(m.group(1))
    secs = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    return {"requests": total, "seconds": secs, "non_2xx": bad,
            "socket_errors": sum(map(int, errs.groups())) if errs else 0,
            "accepted_per_s": (total - bad) / secs}


def loadgen(build, port, rate, seconds, body_file, headers, tag=None, settle=0.0):
    """Open loop at `rate`/s over 64 connections: loadgen.c's JSON report. The first
    `settle` seconds run at the same rate but are not in the percentiles."""
    cmd = [str(build / "bench" / "loadgen"), "-p", str(port), "-r", f"{rate:.1f}", "-d",
           f"{seconds}", "-c", str(CONNECTIONS), "-b", str(body_file), "-w", f"{settle}"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if tag:
        cmd += ["-t", tag]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=settle + seconds + 60)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{r.stdout}\n{r.stderr}")
    return json.loads(r.stdout)
