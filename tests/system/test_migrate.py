"""`flowd migrate`: ordered, transactional, safe to run twice at once; `flowd serve`
refuses a schema it does not match."""

import subprocess

import psycopg

from conftest import FLOWD


def migrate(flowd, timeout=60):
    return subprocess.Popen([str(FLOWD), "--config", str(flowd.config_path), "migrate"],
                            cwd=flowd.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def applied(db_url):
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT version, name, checksum FROM schema_migrations "
                            "ORDER BY version").fetchall()


def test_two_concurrent_migrations_leave_one_consistent_schema(flowd_factory, stack):
    db = stack.create_database()
    f = flowd_factory(db_url=db)
    procs = [migrate(f), migrate(f)]
    results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
    rows = applied(db)
    versions = [r[0] for r in rows]
    assert versions == sorted(set(versions)) and versions[0] == 1
    with psycopg.connect(db) as conn:
        tenants = [r[0] for r in conn.execute("SELECT id FROM tenants ORDER BY id")]
    assert tenants == ["default", "system"]


def test_migrate_twice_applies_nothing_new(flowd_factory, stack):
    db = stack.create_database()
    f = flowd_factory(db_url=db)
    assert f.run("migrate").returncode == 0
    before = applied(db)
    r = f.run("migrate")
    assert r.returncode == 0, r.stderr
    assert applied(db) == before


def test_serve_refuses_an_unmigrated_database(flowd_factory, stack):
    f = flowd_factory(db_url=stack.create_database())
    f.start()
    code = f.proc.wait(timeout=30)
    f.stderr.close()
    assert code == 1
    failed = [e for e in f.log_events() if e["event"] == "server.failed"]
    assert failed and "flowd migrate" in failed[0]["error"]


def test_serve_refuses_a_newer_schema(flowd_factory, stack):
    db = stack.create_database()
    f = flowd_factory(db_url=db)
    assert f.run("migrate").returncode == 0
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, checksum) "
                     "VALUES (999, '999_future', 'x')")
    f.start()
    code = f.proc.wait(timeout=30)
    f.stderr.close()
    assert code == 1
    failed = [e for e in f.log_events() if e["event"] == "server.failed"]
    assert failed and "newer" in failed[0]["error"]
