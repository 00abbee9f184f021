"""The benchmark harness (tests/bench/harness.py, `make bench`) works: one pair of every
measured scenario (S1 .. S6) and the instructions per event at a tiny size against the
test stack, its results written to a
temporary directory (never tests/bench/results), in the documented shape (issue 8) with
positive, finite figures. The numbers themselves mean nothing at this size."""

import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT

HARNESS = ROOT / "tests" / "bench" / "harness.py"

# the figures a tiny run must still produce as positive numbers
POSITIVE = {
    "S1": ["flowd_accepted_per_s", "baseline_per_s", "p99_ms_at_70pct"],
    "S3": ["p50_ms", "p99_ms", "http_accept_p99_ms", "engine_p99_ms"],
    "S2": ["engine_transitions_per_s", "baseline_transitions_per_s", "fsyncs_per_transition",
           "wal_bytes_per_transition", "plain_insert_rows_per_s"],
    "S5": ["time_to_first_commit_s", "drain_rate_after_restart", "steady_state_rate"],
    "S6": ["steps_per_s_with_lua_guard", "steps_per_s_without_guard"],
    "S4": ["calls_per_s", "theoretical_per_s", "rss_peak_mb", "llm_threads", "threads_peak",
           "gateway_via_flowd_p50_ms", "gateway_direct_p50_ms"],
}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def run_tiny(stack, out):
    r = subprocess.run([sys.executable, str(HARNESS), "--mode", "tiny", "--stack-env",
                        str(stack.var / "stack.env"), "--out", str(out)],
                       capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert r.returncode == 0, f"harness failed:\n{r.stderr[-6000:]}"
    files = list(out.glob("*.json"))
    assert len(files) == 1, f"expected one results file, got {files}"
    assert files[0].with_suffix(".md").exists(), "the markdown table was not written"
    return json.loads(files[0].read_text()), files[0].with_suffix(".md").read_text()


def check_measured(name, sc):
    for key in ("ratio_median", "ratio_min", "ratio_max"):
        assert is_number(sc[key]) and sc[key] > 0, f"{name}.{key} = {sc[key]!r}"
    assert sc["ratio_min"] <= sc["ratio_median"] <= sc["ratio_max"], name
    assert len(sc["pairs"]) == 1, f"{name}: tiny mode runs one pair"
    pair = sc["pairs"][0]
    assert {"system", "baseline", "ratio"} <= set(pair), f"{name} pair: {sorted(pair)}"
    assert is_number(pair["ratio"]) and pair["ratio"] > 0
    for key, value in sc["absolute"].items():
        assert is_number(value) and value >= 0, f"{name}.absolute.{key} = {value!r}"
    for key in POSITIVE[name]:
        assert sc["absolute"][key] > 0, f"{name}.absolute.{key} = {sc['absolute'][key]!r}"


def check_s1_s3_pairs(s1, s3):
    """Every request of the open-loop runs was answered 202, every S3 event committed."""
    lat = s1["latency_at_70pct"]
    assert lat["status"] == {"202": lat["scheduled"]}, f"S1 open loop: {lat}"
    assert s3["system"]["missing"] == 0 and s3["baseline"]["engine"]["missing"] == 0, s3
    assert s3["baseline"]["p99_sum_ms"] == pytest.approx(
        s3["baseline"]["http_accept"]["p99_ms"] + s3["baseline"]["engine"]["p99_ms"])


def check_s4_pair(s4):
    """Every logical call finished, each completed one had a 200 from the fake, and the
    LLM threads were found by their names."""
    sysr = s4["system"]
    assert sysr["completed"] + sysr["failed"] == sysr["calls"], sysr
    assert sysr["provider"]["ok"] >= sysr["completed"], sysr
    assert sysr["provider"]["bad_requests"] == 0, sysr["provider"]
    assert sysr["thread_names"].get("fl-activities") == 1, sysr["thread_names"]
    assert sysr["thread_names"].get("fl-http") == 1, sysr["thread_names"]
    assert 0 < s4["gateway"]["via_flowd_p50_ms"] and 0 < s4["gateway"]["direct_p50_ms"]


def check_instructions(ipe):
    for path in ("api", "engine", "baseline_http"):
        n = ipe[path]["instructions_per_event"]
        assert is_number(n) and n > 1000, f"instructions per event, {path}: {n!r}"
        assert ipe[path]["top_functions"]["functions"], path
    assert ipe["api"]["top_functions"]["flowd_inclusive"], "flowd's own functions are named"


def test_bench_harness_tiny_run_writes_results_in_the_documented_shape(stack, tmp_path):
    published = ROOT / "tests" / "bench" / "results"
    before = sorted(published.glob("*")) if published.exists() else []
    doc, table = run_tiny(stack, tmp_path / "results")

    assert {"machine", "versions", "scenarios"} <= set(doc)
    m = doc["machine"]
    assert m["nproc"] >= 1 and len(m["loadavg_start"]) == 3
    assert is_number(m["pg_test_fsync"]["fdatasync_ops_per_s"])
    assert m["pg_test_fsync"]["fdatasync_ops_per_s"] > 0
    assert m["postgres"]["synchronous_commit"] == "on"
    for lib in ("postgres_server", "librdkafka", "kafka_broker", "civetweb", "jansson", "lua",
                "gcc"):
        assert doc["versions"].get(lib), f"version of {lib} missing: {doc['versions']}"

    scenarios = doc["scenarios"]
    assert sorted(scenarios) == ["S1", "S2", "S3", "S4", "S5", "S6"]
    for name in ("S1", "S2", "S3", "S4", "S5", "S6"):
        check_measured(name, scenarios[name])
    check_s1_s3_pairs(scenarios["S1"]["pairs"][0], scenarios["S3"]["pairs"][0])
    check_s4_pair(scenarios["S4"]["pairs"][0])
    check_instructions(doc["instructions_per_event"])

    assert "| scenario (ratio) | median ratio | min | max |" in table
    after = sorted(published.glob("*")) if published.exists() else []
    assert after == before, "a tiny run must not write to tests/bench/results"
