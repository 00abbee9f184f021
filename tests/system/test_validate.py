"""`flowd validate FILE...`: the real binary, no configuration, no Postgres, no Kafka.

Problems are lines `FILE:LINE:COL: error: MESSAGE` on stderr, sorted; valid files get
`FILE: ok` on stdout; exit 0 / 1 (problems) / 2 (usage, unreadable file)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOWD = ROOT / "build" / "flowd"
DATA = ROOT / "tests" / "data" / "workflows"
LINE = re.compile(r"^[^:]+:\d+:\d+: error: .+$")


def validate(*files, cwd=None):
    return subprocess.run([str(FLOWD), "validate", *map(str, files)], capture_output=True,
                          text=True, timeout=30, cwd=cwd, env={"PATH": "/usr/bin:/bin"})


def test_valid_set_exits_0_and_says_ok():
    files = sorted((DATA / "valid").glob("*.yaml"))
    r = validate(*files)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == [f"{f}: ok" for f in files]


def test_shipped_workflows_are_valid():
    files = sorted((ROOT / "workflows").glob("*.yaml"))
    r = validate(*files)
    assert r.returncode == 0, r.stderr


def test_invalid_cases_print_the_expected_lines():
    for case in sorted((DATA / "invalid").iterdir()):
        r = validate("input.yaml", cwd=case)
        assert r.returncode == 1, case.name
        want = (case / "expected").read_text().splitlines()
        got = r.stderr.splitlines()
        assert len(got) == len(want), (case.name, got)
        for w, g in zip(want, got):
            assert LINE.match(g), g
            assert g.startswith(w[:-3]) if w.endswith("...") else g == w, (case.name, g)


def test_problems_of_several_files_are_sorted_and_ok_files_listed():
    bad = DATA / "invalid" / "many_errors" / "input.yaml"
    good = DATA / "valid" / "cleanup.yaml"
    r = validate(good, bad)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines and all(l.startswith(f"{bad}:") for l in lines)
    assert lines == sorted(lines, key=lambda l: [int(x) for x in l.split(":")[1:3]])
    assert r.stdout == f"{good}: ok\n"


def test_start_names_a_sibling_only_when_given_together():
    r = validate(DATA / "valid" / "parent.yaml")
    assert r.returncode == 1
    assert 'start: workflow "test.child" is not among the definitions' in r.stderr
    assert validate(DATA / "valid" / "parent.yaml", DATA / "valid" / "child.yaml").returncode == 0


def test_duplicate_name_and_version_across_files(tmp_path):
    a = DATA / "valid" / "child.yaml"
    b = tmp_path / "copy.yaml"
    b.write_text(a.read_text())
    r = validate(a, b)
    assert r.returncode == 1
    assert f'{b}:2:11: error: workflow "test.child" version 1 is also defined in {a}:2:11' \
        in r.stderr


def test_missing_file_exits_2_and_others_are_still_checked(tmp_path):
    missing = tmp_path / "nope.yaml"
    r = validate(missing, DATA / "valid" / "cleanup.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith(f"{missing}: error: could not open file")
    assert "cleanup.yaml: ok" in r.stdout


def test_no_file_is_a_usage_error():
    r = validate()
    assert r.returncode == 2
    assert "usage" in r.stderr
