"""A bad configuration stops flowd before anything starts, and says where the problem is."""

import time

import pytest

from conftest import port_open


CASES = {
    "unknown_key": ("http:\n  port: {port}\n  prot: 1\n", ":3:3: error: unknown key \"http.prot\""),
    "bad_port": ("http:\n  port: 99999\n", ":2:9: error: invalid value for \"http.port\""),
    "malformed": ("http:\n  port: {port}\n listen: [127.0.0.1\n", ":3:"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_serve_refuses_bad_config_with_location(flowd_factory, case):
    text, expected = CASES[case]
    f = flowd_factory(config="")
    f.config_path.write_text(text.format(port=f.port))
    started = time.monotonic()
    f.start()
    code = f.proc.wait(timeout=20)
    f.stderr.close()

    assert code == 1
    assert time.monotonic() - started < 10
    events = f.log_events()
    assert [e["event"] for e in events] == ["config.invalid"]  # nothing was started
    assert events[0]["error"].startswith(f"{f.config_path}{expected}")
    assert not port_open(f.port)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_check_prints_file_line_col(flowd_factory, case):
    text, expected = CASES[case]
    f = flowd_factory(config="")
    f.config_path.write_text(text.format(port=f.port))
    r = f.run("config", "check", str(f.config_path))
    assert r.returncode == 1
    assert r.stderr.startswith(f"{f.config_path}{expected}")


def test_config_check_accepts_a_good_file(flowd_factory):
    f = flowd_factory()
    r = f.run("config", "check")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{f.config_path}: ok"


def test_config_dump_redacts_the_database_url(flowd_factory, stack):
    f = flowd_factory()
    r = f.run("config", "dump")
    assert r.returncode == 0, r.stderr
    assert stack.password not in r.stdout
    assert "url: <redacted>" in r.stdout
    assert f"port: {f.port}" in r.stdout


def test_environment_overrides_file_and_flags_override_environment(flowd_factory):
    f = flowd_factory(env={"FLOWD_HTTP_THREADS": "7", "FLOWD_LOG_LEVEL": "warn"})
    r = f.run("--log.level=debug", "config", "dump")
    assert r.returncode == 0, r.stderr
    assert "threads: 7" in r.stdout
    assert "level: debug" in r.stdout


def test_secret_from_file(flowd_factory, tmp_path, stack):
    secret = tmp_path / "db-url"
    secret.write_text(stack.pg_url + "\n")
    f = flowd_factory(env={"FLOWD_DB_URL_FILE": str(secret)})
    f.config_path.write_text(f.config_path.read_text().replace(stack.pg_url, ""))
    r = f.run("config", "dump")
    assert r.returncode == 0, r.stderr
    assert "url: <redacted>" in r.stdout


def test_unknown_command_is_a_usage_error(flowd_factory):
    r = flowd_factory().run("frobnicate")
    assert r.returncode == 2
    assert "unknown command" in r.stderr


def test_readme_configuration_reference_is_generated_from_the_table(flowd_factory):
    from conftest import ROOT
    r = flowd_factory().run("config", "reference")
    assert r.returncode == 0, r.stderr
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- config-reference:start -->\n") + len(
        "<!-- config-reference:start -->\n")
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end] == r.stdout, "README is stale: run `make docs`"
