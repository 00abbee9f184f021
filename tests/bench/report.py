"""Results: the JSON document of a run, its markdown table, and the table's place in
docs/benchmarks.md (between the marker comments, replaced on every full or quick run)."""

import json
import math
import re
import statistics
from pathlib import Path

START = "<!-- bench-results:start -->"
END = "<!-- bench-results:end -->"

# scenarios listed without numbers, name -> why (none at the moment)
SKIPPED = {}

TARGETS = {
    "S1": {"ratio": (0.35, 0.5, ">="), "p99_ms_at_70pct": (5.0, 5.0, "<=")},
    "S2": {"ratio": (0.6, 0.8, ">="), "fsyncs_per_transition": (0.3, 0.1, "<="),
           "wal_bytes_per_transition": (2048, 2048, "<=")},
    "S3": {"ratio": (2.0, 1.5, "<="), "p50_ms": (2.0, 2.0, "<="), "p99_ms": (10.0, 10.0, "<=")},
    "S4": {"ratio": (0.9, 0.9, ">="), "rss_peak_mb": (150, 150, "<"),
           "gateway_overhead_ms": (1.0, 1.0, "<"), "llm_threads": (4, 4, "<=")},
    "S5": {"ratio": (1.0, 1.0, ">="), "time_to_first_commit_s": (1.0, 1.0, "<=")},
    "S6": {"steps_per_s_without_guard": (2000000, 2000000, ">="),
           "steps_per_s_with_lua_guard": (500000, 500000, ">=")},
}

NAMES = {"S1": "S1 ingest", "S2": "S2 engine", "S3": "S3 end-to-end latency",
         "S4": "S4 LLM fan-out", "S5": "S5 recovery", "S6": "S6 pure step"}


def median_of(pairs, *path):
    values = []
    for p in pairs:
        v = p
        for key in path:
            v = v[key]
        values.append(v)
    return statistics.median(values)


def scenario(pairs, absolute, setup):
    ratios = [p["ratio"] for p in pairs]
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "pairs": pairs, "absolute": absolute, "setup": setup}


def s1_absolute(pairs):
    m = lambda *path: median_of(pairs, *path)  # noqa: E731 -- a short local alias
    return {
        "flowd_accepted_per_s": m("system", "accepted_per_s"),
        "baseline_per_s": m("baseline", "accepted_per_s"),
        "open_loop_rate_per_s": m("latency_at_70pct", "rate"),
        "p50_ms_at_70pct": m("latency_at_70pct", "p50_ms"),
        "p99_ms_at_70pct": m("latency_at_70pct", "p99_ms"),
        "p99_ms_at_70pct_max": max(p["latency_at_70pct"]["p99_ms"] for p in pairs),
    }


def s3_absolute(pairs):
    m = lambda *path: median_of(pairs, *path)  # noqa: E731 -- a short local alias
    return {
        "p50_ms": m("system", "p50_ms"),
        "p99_ms": m("system", "p99_ms"),
        "http_accept_p99_ms": m("baseline", "http_accept", "p99_ms"),
        "engine_p99_ms": m("baseline", "engine", "p99_ms"),
        "engine_p50_ms": m("baseline", "engine", "p50_ms"),
        "http_accept_p50_ms": m("baseline", "http_accept", "p50_ms"),
        "p99_sum_ms": m("baseline", "p99_sum_ms"),
    }


def s2_absolute(pairs):
    m = lambda *path: median_of(pairs, *path)  # noqa: E731 -- a short local alias
    return {
        "engine_transitions_per_s": m("system", "transitions_per_s"),
        "baseline_transitions_per_s": m("baseline", "transitions_per_s"),
        "baseline_pgbench_transitions_per_s": m("baseline", "pgbench_transitions_per_s"),
        "fsyncs_per_transition": m("system", "fsyncs_per_transition"),
        "wal_bytes_per_transition": m("system", "wal_bytes_per_transition"),
        "baseline_fsyncs_per_transition": m("baseline", "fsyncs_per_transition"),
        "baseline_wal_bytes_per_transition": m("baseline", "wal_bytes_per_transition"),
        "plain_insert_rows_per_s": m("plain_insert", "rows_per_s"),
        "plain_insert_fsyncs_per_row": m("plain_insert", "fsyncs_per_row"),
        "plain_insert_wal_bytes_per_row": m("plain_insert", "wal_bytes_per_row"),
    }


def s4_absolute(pairs):
    m = lambda *path: median_of(pairs, *path)  # noqa: E731 -- a short local alias
    return {
        "calls_per_s": m("system", "calls_per_s"),
        "theoretical_per_s": m("baseline", "theoretical_per_s"),
        "fault_ceiling_ratio": m("system", "fault_ceiling_ratio"),
        "retries_total": m("system", "retries_total"),
        "failed": max(p["system"]["failed"] for p in pairs),
        "rss_peak_mb": max(p["system"]["rss_peak_mb"] for p in pairs),
        "threads_peak": max(p["system"]["threads_peak"] for p in pairs),
        "llm_threads": max(p["system"]["llm_threads"] for p in pairs),
        "gateway_overhead_ms": m("gateway", "overhead_ms"),
        "gateway_via_flowd_p50_ms": m("gateway", "via_flowd_p50_ms"),
        "gateway_direct_p50_ms": m("gateway", "direct_p50_ms"),
    }


def s5_absolute(pairs):
    ttfc = [p["system"]["time_to_first_commit_s"] for p in pairs]
    return {
        "time_to_first_commit_s": statistics.median(ttfc),
        "time_to_first_commit_max_s": max(ttfc),
        "drain_rate_after_restart": median_of(pairs, "system", "drain_rate_after_restart"),
        "steady_state_rate": median_of(pairs, "baseline", "steady_state_rate"),
        "events_redelivered": median_of(pairs, "events_redelivered"),
    }


def s6_absolute(pairs):
    return {
        "steps_per_s_with_lua_guard": median_of(pairs, "system", "steps_per_s_with_lua_guard"),
        "steps_per_s_without_guard": median_of(pairs, "baseline", "steps_per_s_without_guard"),
    }


def skipped(name):
    return {"skipped": SKIPPED[name], "targets": TARGETS[name]}


# ---- checks -----------------------------------------------------------------------------

def finite_positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0


def verdict(name, key, value):
    floor, goal, op = TARGETS[name][key]
    ok = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
          "<": lambda a, b: a < b}[op]
    if ok(value, goal):
        return "goal met" if goal != floor else "met"
    return "floor met" if ok(value, floor) else "MISSED"


# ---- markdown ------------------------------------------------------------------------------

def fmt(v):
    if isinstance(v, float) and v >= 100:
        return f"{v:,.0f}"
    if isinstance(v, float):
        return f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def s2_text(a):
    fs, wal = a["fsyncs_per_transition"], a["wal_bytes_per_transition"]
    return (f"engine {fmt(a['engine_transitions_per_s'])} transitions/s vs pgbench "
            f"{fmt(a['baseline_transitions_per_s'])}/s; fsyncs/transition {fs:.4f} "
            f"({verdict('S2', 'fsyncs_per_transition', fs)}); WAL {fmt(wal)} B/transition "
            f"({verdict('S2', 'wal_bytes_per_transition', wal)}; pgbench "
            f"{fmt(a['baseline_wal_bytes_per_transition'])}); plain INSERT "
            f"{fmt(a['plain_insert_rows_per_s'])} rows/s")


def s5_text(a):
    return (f"first commit {a['time_to_first_commit_s']:.3f} s after restart (max "
            f"{a['time_to_first_commit_max_s']:.3f} s; "
            f"{verdict('S5', 'time_to_first_commit_s', a['time_to_first_commit_s'])}); drain "
            f"{fmt(a['drain_rate_after_restart'])}/s after vs {fmt(a['steady_state_rate'])}/s "
            f"before; {fmt(a['events_redelivered'])} events redelivered")


def s6_text(a):
    g, p = a["steps_per_s_with_lua_guard"], a["steps_per_s_without_guard"]
    return (f"{fmt(p)} steps/s without guard ({verdict('S6', 'steps_per_s_without_guard', p)}), "
            f"{fmt(g)} with a Lua guard ({verdict('S6', 'steps_per_s_with_lua_guard', g)})")


def s1_text(a):
    p99 = a["p99_ms_at_70pct"]
    return (f"flowd {fmt(a['flowd_accepted_per_s'])} accepted/s vs baseline "
            f"{fmt(a['baseline_per_s'])}/s; at 70 % ({fmt(a['open_loop_rate_per_s'])}/s, open "
            f"loop) p50 {a['p50_ms_at_70pct']:.2f} ms, p99 {p99:.2f} ms "
            f"({verdict('S1', 'p99_ms_at_70pct', p99)})")


def s4_text(a):
    rss, thr, gw = a["rss_peak_mb"], a["llm_threads"], a["gateway_overhead_ms"]
    return (f"{fmt(a['calls_per_s'])} calls/s vs {fmt(a['theoretical_per_s'])}/s theoretical "
            f"(a perfect worker would reach {a['fault_ceiling_ratio']:.3f} with these faults); "
            f"{fmt(a['retries_total'])} retries, {fmt(a['failed'])} failed; peak RSS "
            f"{rss:.0f} MB ({verdict('S4', 'rss_peak_mb', rss)}); {thr} LLM threads "
            f"({verdict('S4', 'llm_threads', thr)}; {a['threads_peak']} in the process); "
            f"gateway overhead {gw:.3f} ms per call "
            f"({verdict('S4', 'gateway_overhead_ms', gw)}; p50 "
            f"{a['gateway_via_flowd_p50_ms']:.2f} ms vs {a['gateway_direct_p50_ms']:.2f} ms direct)")


def s3_text(a):
    p50, p99 = a["p50_ms"], a["p99_ms"]
    return (f"1-step p50 {p50:.2f} ms ({verdict('S3', 'p50_ms', p50)}), p99 {p99:.2f} ms "
            f"({verdict('S3', 'p99_ms', p99)}); alone: HTTP accept p99 "
            f"{a['http_accept_p99_ms']:.2f} ms + engine p99 {a['engine_p99_ms']:.2f} ms")


TEXT = {"S1": s1_text, "S2": s2_text, "S3": s3_text, "S4": s4_text, "S5": s5_text,
        "S6": s6_text}
RATIO_MEANING = {"S1": "flowd / civetweb handler", "S2": "engine / pgbench",
                 "S3": "e2e p99 / sum of p99s", "S4": "calls/s / in-flight cap ÷ mean latency",
                 "S5": "after restart / steady state",
                 "S6": "with guard / without"}


def target_text(name):
    if "ratio" not in TARGETS[name] or name == "S6":
        return "none (the targets are absolute)"
    floor, goal, op = TARGETS[name]["ratio"]
    return f"{op} {floor}" + (f" / {goal}" if goal != floor else "")


def row(name, sc):
    if "skipped" in sc:
        return (f"| {NAMES[name]} | — | — | — | {target_text(name)} | "
                f"skipped: {sc['skipped']} |")
    median = sc["ratio_median"]
    met = verdict(name, "ratio", median) if "ratio" in TARGETS[name] else ""
    return (f"| {NAMES[name]} ({RATIO_MEANING[name]}) | **{median:.3f}** {met} | "
            f"{sc['ratio_min']:.3f} | {sc['ratio_max']:.3f} | {target_text(name)} | "
            f"{TEXT[name](sc['absolute'])} |")


def markdown(doc):
    m, v = doc["machine"], doc["versions"]
    fs = m["pg_test_fsync"]["fdatasync_ops_per_s"]
    lines = [
        f"Run `{doc['run']['mode']}` on {doc['run']['date']} at commit "
        f"`{v['flowd_commit']}`, {doc['run']['pairs']} pair(s) per scenario, "
        f"{doc['run']['seconds']:.0f} s.",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), load {m['loadavg_start']} at the start, "
        f"pg_test_fsync fdatasync {fmt(fs) if fs else '?'} ops/s. PostgreSQL "
        f"{v['postgres_server']} (synchronous_commit {m['postgres'].get('synchronous_commit')}),"
        f" librdkafka {v['librdkafka']}, Kafka {v['kafka_broker']}, civetweb {v['civetweb']}, "
        f"jansson {v['jansson']}, Lua {v['lua']}, gcc {v['gcc']}.",
        "",
        "| scenario (ratio) | median ratio | min | max | target (floor / goal) | "
        "absolute figures (medians) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [row(name, doc["scenarios"][name]) for name in sorted(doc["scenarios"])]
    lines += ["", instructions_text(doc.get("instructions_per_event") or {})]
    return "\n".join(lines) + "\n"


def instructions_text(ipe):
    if "api" not in ipe:
        return f"Instructions per event (callgrind): {ipe.get('skipped', 'not measured')}."
    api, eng, base = ipe["api"], ipe["engine"], ipe["baseline_http"]
    return (f"Instructions per event (callgrind, all threads, idle subtracted): API path "
            f"(POST /api/v1/events, 202) **{fmt(api['instructions_per_event'])}** over "
            f"{api['events']} requests (S1's baseline handler: "
            f"{fmt(base['instructions_per_event'])}); engine path (one durable transition) "
            f"**{fmt(eng['instructions_per_event'])}** over {eng['events']} events.")


def embed(docs_path, table, results_name):
    path = Path(docs_path)
    text = path.read_text()
    if START not in text or END not in text:
        raise RuntimeError(f"{path} lacks the markers {START} / {END}")
    block = f"{START}\n<!-- generated by tests/bench/harness.py from tests/bench/results/" \
            f"{results_name}; do not edit by hand -->\n{table}{END}"
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
    path.write_text(text)


def write(doc, out_dir, name):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    table = markdown(doc)
    (out / f"{name}.md").write_text(table)
    return out / f"{name}.json", table
