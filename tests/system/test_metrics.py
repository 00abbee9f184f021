"""Observability (issue 7): GET /metrics against the real stack, checked by promtool; a real
Prometheus (Debian's, loopback, its own data dir) scrapes flowd while a small workload runs
through Kafka and HTTP, then every PromQL expression of the shipped dashboards and alert
rules is evaluated through Prometheus's HTTP API: none errors and every dashboard query
returns data. The LLM chain is [fake-primary, fake-stream, local] against the fake provider
(fake_llm.py): the primary answers 500 (a fallback), the streaming one answers (time to first
token, tokens, cost), and JSON calls it cannot answer fall back to local. Also: dashboard
JSON and the rules' promtool checks and unit tests."""

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from conftest import ROOT, free_port, wait_for
from engine_harness import EngineEnv, Producer
from fake_llm import FakeLLM

DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DATASOURCE_UID = "flowd-prometheus"

# issue 7's list: every family must be exposed (HELP + TYPE) from the first scrape
FAMILIES = {
    "flowd_build_info": "gauge",
    "flowd_http_requests_total": "counter",
    "flowd_http_request_duration_seconds": "histogram",
    "flowd_sse_streams": "gauge",
    "flowd_events_received_total": "counter",
    "flowd_kafka_produced_total": "counter",
    "flowd_kafka_produce_errors_total": "counter",
    "flowd_kafka_consumer_lag": "gauge",
    "flowd_engine_transitions_total": "counter",
    "flowd_engine_step_duration_seconds": "histogram",
    "flowd_event_end_to_end_seconds": "histogram",
    "flowd_workflow_instances": "gauge",
    "flowd_workflow_completed_total": "counter",
    "flowd_timers_pending": "gauge",
    "flowd_timer_lateness_seconds": "histogram",
    "flowd_outbox_backlog": "gauge",
    "flowd_dead_letters_total": "counter",
    "flowd_activity_duration_seconds": "histogram",
    "flowd_activity_retries_total": "counter",
    "flowd_db_pool_connections": "gauge",
    "flowd_db_query_duration_seconds": "histogram",
    "flowd_llm_requests_total": "counter",
    "flowd_llm_request_duration_seconds": "histogram",
    "flowd_llm_time_to_first_token_seconds": "histogram",
    "flowd_llm_tokens_total": "counter",
    "flowd_llm_cost_total": "counter",
    "flowd_llm_fallbacks_total": "counter",
    "flowd_llm_circuit_open": "gauge",
    "flowd_conversations_active": "gauge",
    "flowd_conversation_stage_total": "counter",
}


def dashboard_queries():
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                out.append((f"{path.name}#{panel['id']} {panel['title']}", t["expr"]))
    return out


def rule_queries():
    out = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((f"{path.name} {rule.get('alert') or rule.get('record')}",
                            rule["expr"]))
    return out


def families_in(expr):
    """The flowd families an expression reads (suffixes _bucket/_sum/_count dropped)."""
    out = set()
    for n in re.findall(r"\bflowd_[a-z0-9_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        out.add(base if base in FAMILIES else n)
    return out


# ---- static checks ------------------------------------------------------------------------

def test_dashboards_are_valid_with_unique_ids_and_the_provisioned_datasource():
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/flowd.yml").read_text())
    assert [d["uid"] for d in ds["datasources"]] == [DATASOURCE_UID]
    assert {p.stem for p in DASHBOARDS} == {"overview", "engine", "conversations-llm"}
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        assert d["schemaVersion"] >= 36 and d["uid"] not in uids, path
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids {ids}"
        for p in d["panels"]:
            assert p["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, p["title"]
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == DATASOURCE_UID, p["title"]
                used = families_in(t["expr"])
                assert used and used <= set(FAMILIES) | {"flowd_ready"}, (p["title"], used)


def test_promtool_check_and_test_rules():
    r = subprocess.run(["promtool", "check", "rules", *map(str, RULES)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", *map(str, RULE_TESTS)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- the live stack ------------------------------------------------------------------------

class Prometheus:
    """Debian's prometheus on a free loopback port with its data under tmp; stopped by PID."""

    def __init__(self, workdir, target):
        self.dir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
               "rule_files": [str(p) for p in RULES],
               "scrape_configs": [{"job_name": "flowd",
                                   "static_configs": [{"targets": [target]}]}]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.log = open(self.dir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self):
        try:
            return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def query(self, expr):
        r = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        return r.json()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def live(stack, tmp_path_factory):
    """flowd (all roles) on a scratch database and topic prefix, scraped by Prometheus."""
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is not installed (deploy/deps.sh installs Debian's package)")
    tmp = tmp_path_factory.mktemp("metrics")
    env = EngineEnv(stack, tmp, ["timer", "http_call", "counter", "conversation", "appointment",
                                 "order", "metrics_llm", "metrics_timer"],
                    kafka_extra={"statistics.interval.ms": 1000}).prepare()
    fake = FakeLLM()
    fake.script("fake-primary", {"status": 500})
    proc = start_with_llm(env, fake)
    first = requests.get(proc.url + "/metrics", timeout=10)
    prom = Prometheus(tmp, f"127.0.0.1:{proc.port}")
    try:
        wait_for(prom.ready, 60, what="prometheus /-/ready")
        yield env, proc, prom, first, fake
    finally:
        prom.stop()
        env.cleanup()
        fake.close()


def start_with_llm(env, fake):
    """flowd serve with the chain [fake-primary (fails), fake-stream (streams), local]."""
    def provider(name, kind, **kw):
        return {"kind": kind, "base_url": fake.base(name, kind), "model": f"{kind}-model",
                "timeout": "5s", "max_retries": 0, "breaker_failures": 0,
                "price_in_per_1k": 1.0, "price_out_per_1k": 2.0, **kw}
    proc = env.proc()
    cfg = yaml.safe_load(proc.config_path.read_text())
    cfg["llm"] = {"chain": ["fake-primary", "fake-stream", "local"], "providers": {
        "fake-primary": provider("fake-primary", "openai"),
        "fake-stream": provider("fake-stream", "anthropic", stream=True)}}
    proc.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc.start()
    proc.wait_ready()
    return proc


def run_workload(env, proc):
    """Events through Kafka (starts, a timer, a retried activity, a conversation with an
    LLM turn, LLM calls through the fake chain, a dead letter) and HTTP requests (2xx,
    4xx)."""
    p = Producer(env.stack.kafka_bootstrap)
    t = env.topics
    closed_port = free_port()  # nothing listens: the http activity fails and is retried
    for i in range(3):
        p.event(t["flowd_events"], "timer.start", f"tm-{env.tag}-{i}", {})
        p.event(t["flowd_events"], "count.start", f"ct-{env.tag}-{i}", {"key": i})
        p.event(t["flowd_events"], "count.tick", f"ct-{env.tag}-{i}", {"r": 0})
    p.event(t["flowd_events"], "metrics_timer.start", f"mt-{env.tag}", {})  # stays pending
    p.event(t["flowd_events"], "http_call.start", f"hc-{env.tag}",
            {"url": f"http://127.0.0.1:{closed_port}/hook"})
    conv = f"cv-{env.tag}"
    p.event(t["conversation_events"], "conversation.started", conv,
            {"flow_type": "restaurant", "channel": "web"})
    p.event(t["conversation_events"], "conversation.message.received", conv,
            {"content": "a table for two tonight", "message_id": "m1"})
    for i in range(2):
        p.event(t["flowd_events"], "metrics_llm.start", f"llm-{env.tag}-{i}",
                {"prompt": "Hello, can you help me?"})
    p.event(t["flowd_events"], "no.subject", None, {}, key=None)  # dead-lettered
    p.event(t["flowd_events"], "nobody.listens", f"x-{env.tag}", {})  # type "other"
    p.flush()
    for path in ["/livez", "/readyz", "/metrics", "/no/such/path", "/api/v1/instances"]:
        for _ in range(3):
            requests.get(proc.url + path, timeout=10)
    wait_for(lambda: env.q1("SELECT count(*) FROM instances WHERE workflow = 'timer' "
                            "AND status = 'completed'") == 3, 60, what="timers to fire")
    wait_for(lambda: env.q1("SELECT count(*) FROM instances WHERE workflow = 'http_call' "
                            "AND status <> 'running'") == 1, 60, what="http_call to fail")
    wait_for(lambda: env.q1("SELECT count(*) FROM dead_letters") >= 1, 60,
             what="a dead letter")
    wait_for(lambda: env.q1("SELECT count(*) FROM instances WHERE workflow = 'metrics_llm' "
                            "AND status = 'completed'") == 2, 60, what="the LLM calls")


def test_metrics_first_scrape_exposes_every_family(live):
    _, _, _, first, _ = live
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for name, kind in FAMILIES.items():
        assert f"# HELP {name} " in first.text, name
        assert f"# TYPE {name} {kind}\n" in first.text, name
    # every configured provider's breaker is shown closed before any call
    for provider in ["fake-primary", "fake-stream", "local"]:
        assert f'flowd_llm_circuit_open{{provider="{provider}"}} 0\n' in first.text, provider


def test_metrics_workload_then_promtool_and_every_query(live):
    env, proc, prom, _, fake = live
    run_workload(env, proc)
    # the chain did what the LLM panels need: a fallback, a streamed answer, local answers
    assert fake.requests("fake-primary") and fake.requests("fake-stream"), fake.requests()
    assert all(r["body"].get("stream") for r in fake.requests("fake-stream"))
    text = requests.get(proc.url + "/metrics", timeout=10).text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr

    # the workload's facts reached Prometheus: wait for the slowest ones (the stored-state
    # gauges are refreshed at most every 5 s, lag statistics every second)
    def scraped(expr):
        return lambda: prom.query(expr).get("data", {}).get("result")
    for expr in ["flowd_timer_lateness_seconds_count", "flowd_dead_letters_total",
                 "flowd_activity_retries_total", "flowd_kafka_consumer_lag",
                 "flowd_timers_pending", "flowd_workflow_completed_total",
                 'flowd_http_requests_total{code="404"}', "flowd_llm_fallbacks_total",
                 'flowd_llm_requests_total{provider="fake-stream",outcome="ok"}',
                 'flowd_llm_requests_total{provider="local",outcome="ok"}',
                 'flowd_llm_time_to_first_token_seconds_count{provider="fake-stream"}']:
        wait_for(scraped(expr), 60, interval=0.5, what=f"Prometheus to have {expr}")
    time.sleep(3)  # a few more scrapes, so rate() windows hold two samples of everything

    errors, empty = [], []
    queries = [(w, e, True) for w, e in dashboard_queries()] + \
        [(w, e, False) for w, e in rule_queries()]
    for where, expr, needs_data in queries:
        body = prom.query(expr)
        if body.get("status") != "success":
            errors.append(f"{where}: {expr}: {body.get('error')}")
            continue
        # alert rules only need to evaluate: they are quiet while all is well
        if not needs_data or body["data"]["result"]:
            continue
        empty.append(f"{where}: {expr}")
    assert not errors, "queries that do not evaluate:\n" + "\n".join(errors)
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
