#!/usr/bin/env bash
# tests/bench/run.sh {full|quick} -- `make bench` and `make bench-quick`: a fresh stack of
# its own under var/bench (PostgreSQL and Kafka on free ports, 127.0.0.1 only), the harness
# (tests/bench/harness.py) against it, results in tests/bench/results/ and the table in
# docs/benchmarks.md; the stack is stopped (by PID, through stack.sh) whatever happens.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT" || exit 1

mode="${1:-quick}"
case "$mode" in
full | quick) ;;
*)
  echo "usage: tests/bench/run.sh {full|quick}" >&2
  exit 2
  ;;
esac

export FLOWD_VAR="$ROOT/var/bench"
# never reuse a developer's stack ports; nothing of the benchmark serves HTTP, but
# stack.sh writes a port into flowd.yaml: a free one, not 8080
unset FLOWD_PG_PORT FLOWD_KAFKA_PORT FLOWD_KAFKA_CONTROLLER_PORT
FLOWD_HTTP_PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export FLOWD_HTTP_PORT

teardown() {
  deploy/local/stack.sh stop >/dev/null 2>&1 || deploy/local/stack.sh stop
}
trap teardown EXIT

# a fresh cluster and broker every time, so no earlier run's data or bloat is measured
deploy/local/stack.sh stop >/dev/null 2>&1 || true
deploy/local/stack.sh destroy >/dev/null 2>&1 || true
mkdir -p "$FLOWD_VAR"
if ! deploy/local/stack.sh start >"$FLOWD_VAR/stack-start.log" 2>&1; then
  cat "$FLOWD_VAR/stack-start.log" >&2
  echo "bench: the stack (PostgreSQL + Kafka) did not start; see the messages above" >&2
  exit 1
fi

.venv/bin/python tests/bench/harness.py --mode "$mode" --stack-env "$FLOWD_VAR/stack.env" \
  --out tests/bench/results --docs docs/benchmarks.md
