"""S2 engine: durable transitions per second (synchronous_commit on) of the engine draining
a backlog of bench5 events, against pgbench running the engine's own batch SQL (written
out by the engine itself: build/bench/pgbench_script -> fl_store_script_format) at the
same batch size, pipeline depth (one pipeline per batch) and concurrency (one connection).

Both sides are measured the same way: from the history rows they committed (see
engineload.commit_rate), with pg_stat_wal reset after a checkpoint before each run. A plain
single-row INSERT pgbench run is reported beside them for context (one fsync per commit)."""

import re
import subprocess
import uuid

from engineload import (NEXT_TYPE, SOURCE, START_TYPE, STEPS, WORKFLOW, commit_rate,
                        wait_history)

TENANT = "default"  # engine.default_tenant: the backlog's events carry no ce_tenant
PLAIN_SCRIPT = ("\\set k random(1, 1000000000)\n"
                "INSERT INTO bench_plain (k, v) VALUES (:k, 'a plain single-row insert');\n")


def per_wal(result, wal, rows):
    result["fsyncs_per_transition"] = wal["syncs"] / rows
    result["wal_bytes_per_transition"] = wal["bytes"] / rows
    result["wal"] = wal
    return result


class S2:
    def __init__(self, stack, setup, build, instances):
        self.stack = stack
        self.setup = setup
        self.build = build
        self.instances = instances
        self.batch_size = setup.batch_size()
        self.script = setup.dir / "engine_batch.pgbench"
        self.per_txn = max(1, self.batch_size // STEPS) * STEPS
        # both sides leave out their first five transactions when there are enough (the
        # baseline's statements are custom-planned for their first five runs)
        self.skip = 5 if instances * STEPS // self.per_txn >= 12 else 1

    def prepare(self):
        self.setup.prepare()
        self.setup.produce(self.instances)
        text = subprocess.run(
            [str(self.build / "bench" / "pgbench_script"), str(self.batch_size), str(STEPS),
             TENANT, WORKFLOW, SOURCE, self.setup.topics["workflow_events"], START_TYPE,
             NEXT_TYPE], capture_output=True, text=True, check=True).stdout
        self.script.write_text(text)
        return self

    def transitions(self):
        return self.instances * STEPS

    # -- the system ---------------------------------------------------------------------
    def engine_run(self):
        stack, db = self.stack, self.stack.create_db(self.setup.template)
        run = uuid.uuid4().hex[:8]
        engine = self.setup.engine(db, f"s2-{run}", f"s2-{run}")
        try:
            stack.wal_reset()
            engine.start()
            with stack.connect(db) as conn:
                wait_history(conn, self.transitions(), self.timeout(), engine)
                # its backends flush their WAL counters as they exit; SIGKILL is as good
                # as a stop here (everything is committed) and does not wait for Kafka
                engine.kill9()
                wal = stack.wal_read()
                rate, rows, seconds, xacts = commit_rate(conn, skip=self.skip)
        finally:
            engine.kill9()
            stack.drop_db(db)
        return per_wal({"transitions_per_s": rate, "transitions": rows, "seconds": seconds,
                        "transactions": xacts}, wal, rows)

    def timeout(self):
        return 120 + self.transitions() / 500

    # -- the baselines ------------------------------------------------------------------
    def pgbench(self, db, script, *args):
        cmd = [str(self.stack.bindir / "pgbench"), "-n", "-M", "prepared", "-c", "1", "-j",
               "1", *args, "-f", str(script), "-h", "127.0.0.1", "-p", str(self.stack.pg_port),
               "-U", "flowd", db]
        env = {"PGPASSWORD": self.stack.password, "PATH": "/usr/bin:/bin"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=self.timeout())
        m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout)
        if r.returncode != 0 or not m or "aborted" in r.stdout + r.stderr:
            raise RuntimeError(f"pgbench failed:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
        return float(m.group(1))

    def baseline_run(self):
        stack, db = self.stack, self.stack.create_db(self.setup.template)
        txns = -(-self.transitions() // self.per_txn)
        try:
            stack.wal_reset()
            tps = self.pgbench(db, self.script, "-t", str(txns))
            wal = stack.wal_read()
            with stack.connect(db) as conn:
                rate, rows, seconds, xacts = commit_rate(conn, skip=self.skip)
        finally:
            stack.drop_db(db)
        return per_wal({"transitions_per_s": rate, "transitions": rows, "seconds": seconds,
                        "transactions": xacts, "pgbench_tps": tps,
                        "pgbench_transitions_per_s": tps * self.per_txn}, wal, rows)

    def plain_run(self, seconds):
        stack, db = self.stack, self.stack.create_db()
        script = self.setup.dir / "plain_insert.pgbench"
        script.write_text(PLAIN_SCRIPT)
        try:
            stack.sql("CREATE TABLE bench_plain (id bigint GENERATED ALWAYS AS IDENTITY "
                      "PRIMARY KEY, k bigint NOT NULL, v text NOT NULL)", db=db)
            stack.wal_reset()
            tps = self.pgbench(db, script, "-T", str(seconds))
            wal = stack.wal_read()
            rows = stack.sql1("SELECT count(*) FROM bench_plain", db=db)
        finally:
            stack.drop_db(db)
        return {"rows_per_s": tps, "rows": rows, "fsyncs_per_row": wal["syncs"] / rows,
                "wal_bytes_per_row": wal["bytes"] / rows}

    # -- the pairs ----------------------------------------------------------------------
    def pair(self, plain_seconds):
        system = self.engine_run()
        baseline = self.baseline_run()
        plain = self.plain_run(plain_seconds)
        return {"system": system, "baseline": baseline, "plain_insert": plain,
                "ratio": system["transitions_per_s"] / baseline["transitions_per_s"]}

    def describe(self):
        return {"instances": self.instances, "steps": STEPS, "transitions": self.transitions(),
                "batch_size": self.batch_size, "transitions_per_transaction": self.per_txn,
                "concurrency": 1, "workflow": WORKFLOW, "event_layout": "key by key",
                "transactions_left_out_at_start": self.skip,
                "baseline": "pgbench -M prepared -c 1 running build/bench/pgbench_script's "
                            "script (the engine's batch statements, one pipeline per batch)"}
