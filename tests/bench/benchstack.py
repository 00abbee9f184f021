"""The stack a benchmark runs on: the PostgreSQL and Kafka that deploy/local/stack.sh started
(their ports in stack.env), scratch databases cloned from a migrated template, the WAL
counters of pg_stat_wal, and the machine facts and library versions every result carries.

Everything here talks to 127.0.0.1 only. The superuser is used once, to let role `flowd`
checkpoint and reset the WAL counters (pg.sh creates `flowd` without those rights)."""

import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "tests" / "bench" / "workflows"

# The stack.env format and the like are the system tests' (tests/system/stack_common.py),
# so the two harnesses cannot drift apart; engineload.py imports from there too.
sys.path.insert(0, str(ROOT / "tests" / "system"))
from stack_common import read_env_file  # noqa: E402


def pg_bindir():
    """The server's tools (pgbench, pg_test_fsync): pg_config's bindir, else the newest
    installed server, as deploy/local/pg.sh chooses."""
    if shutil.which("pg_config"):
        d = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                check=True).stdout.strip())
        if (d / "pgbench").exists():
            return d
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("pgbench not found (the Debian postgresql package provides it)")
    return found[-1].parent


def run_text(args, **kw):
    """stdout of a command, stripped; '' when it fails or does not exist."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=30, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


class Stack:
    """The running stack of one FLOWD_VAR directory."""

    def __init__(self, env_file):
        self.var = Path(env_file).resolve().parent
        env = read_env_file(env_file)
        self.pg_url = env["PG_URL"]
        self.pg_port = int(env["PG_PORT"])
        self.kafka_bootstrap = env["KAFKA_BOOTSTRAP"]
        self.password = self.pg_url.split(":")[2].split("@")[0]
        self.bindir = pg_bindir()

    def db_url(self, name):
        return self.pg_url.rsplit("/", 1)[0] + "/" + name

    def connect(self, name="flowd"):
        return psycopg.connect(self.db_url(name), autocommit=True, connect_timeout=10)

    def sql(self, sql, *params, db="flowd"):
        with self.connect(db) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def sql1(self, sql, *params, db="flowd"):
        rows = self.sql(sql, *params, db=db)
        return rows[0][0] if rows else None

    # -- the superuser, once ------------------------------------------------------------
    def pg_location(self):
        return Path((self.var / "pg" / "location").read_text().strip())

    def grant_stats_rights(self):
        """CHECKPOINT and pg_stat_reset_shared for role flowd, as the cluster's owner over
        its Unix socket (pg.sh's as_pg: user postgres under root). A function's rights
        live in each database: the grant is made in `flowd`, where wal_reset calls it."""
        sql = ("GRANT pg_checkpoint TO flowd;\n"
               "GRANT EXECUTE ON FUNCTION pg_stat_reset_shared(text) TO flowd;\n")
        loc = self.pg_location()
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(loc),
               "-p", str(self.pg_port), "-d", "flowd"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd + ["-U", "postgres"]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, cwd="/", timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"could not grant the WAL statistics rights: {r.stderr.strip()}")

    # -- databases ----------------------------------------------------------------------
    def create_db(self, template=None):
        name = "bench_" + uuid.uuid4().hex[:12]
        with self.connect() as conn:
            tmpl = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return name

    def drop_db(self, name):
        """Drops a scratch database once the backends of a killed engine have gone. Not
        WITH (FORCE): that may not end the autovacuum workers a big run leaves behind,
        which a plain DROP DATABASE stops by itself."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with self.connect() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # -- WAL ----------------------------------------------------------------------------
    def wal_reset(self):
        """A checkpoint first, so every run starts with the same full-page-write debt."""
        with self.connect() as conn:
            conn.execute("CHECKPOINT")
            conn.execute("SELECT pg_stat_reset_shared('wal')")

    def wal_read(self):
        """pg_stat_wal after the writers have gone: backends flush their WAL counters when
        they exit, the WAL writer within its one-second stats interval."""
        time.sleep(1.1)
        row = self.sql("SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync "
                       "FROM pg_stat_wal")[0]
        return dict(zip(("records", "fpi", "bytes", "writes", "syncs"), map(int, row)))

    def settings(self):
        names = ("server_version", "synchronous_commit", "wal_sync_method", "fsync",
                 "full_page_writes", "shared_buffers", "max_wal_size", "checkpoint_timeout")
        rows = self.sql("SELECT name, setting || COALESCE(unit, '') FROM pg_settings "
                        "WHERE name = ANY(%s)", list(names))
        return dict(rows)


# ---- machine facts and versions ----------------------------------------------------------

def fsync_ops(stack, seconds=1):
    """pg_test_fsync's one-8kB-write fdatasync rate (Linux's default wal_sync_method) on the
    file system of the cluster's data. Only that line is needed, so the tool is stopped
    after it instead of running its dozen other tests."""
    path = stack.pg_location() / f"pg_test_fsync.{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([str(stack.bindir / "pg_test_fsync"), "-s", str(seconds), "-f",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    found = None
    try:
        for line in proc.stdout:
            m = re.match(r"\s*fdatasync\s+([\d.]+) ops/sec", line)
            if m:
                found = float(m.group(1))
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        path.unlink(missing_ok=True)
    return {"fdatasync_ops_per_s": found, "seconds_per_test": seconds, "file_system_of": str(
        stack.pg_location())}


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def mem_total_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine(stack, fsync_seconds=1):
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "mem_gib": mem_total_gib(),
        "kernel": platform.release(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "pg_test_fsync": fsync_ops(stack, fsync_seconds),
        "postgres": stack.settings(),
    }


def kafka_version():
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    m = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    return m.group(1) if m else None


def versions(stack, build):
    import confluent_kafka  # noqa: PLC0415 -- only for its version

    def pkg(name):
        return run_text(["pkg-config", "--modversion", name]) or None

    git = run_text(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = run_text(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return {
        "flowd_commit": git + ("-dirty" if dirty else ""),
        "flowd": run_text([str(build / "flowd"), "version"]) or None,
        "postgres_server": stack.sql1("SHOW server_version"),
        "pgbench": run_text([str(stack.bindir / "pgbench"), "--version"]) or None,
        "libpq": pkg("libpq"),
        "librdkafka": pkg("rdkafka"),
        "kafka_broker": kafka_version(),
        "civetweb": run_text(["dpkg-query", "-W", "-f", "${Version}", "libcivetweb-dev"]) or None,
        "jansson": pkg("jansson"),
        "lua": pkg("lua5.4"),
        "libyaml": pkg("yaml-0.1"),
        "gcc": run_text(["gcc", "-dumpfullversion"]) or None,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka_python": confluent_kafka.libversion()[0],
    }
