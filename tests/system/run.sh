#!/usr/bin/env bash
# The system tests: a real PostgreSQL and a real Kafka broker started for this run under
# var/test (or $FLOWD_TEST_VAR, so several runs can share a machine) on free ports, pytest
# against them, and the stack torn down whatever happens.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT" || exit 1

export FLOWD_VAR="${FLOWD_TEST_VAR:-$ROOT/var/test}"
export FLOWD_TEST_VAR="$FLOWD_VAR"
# never reuse a developer's stack ports or a stale test stack
unset FLOWD_PG_PORT FLOWD_KAFKA_PORT FLOWD_HTTP_PORT

teardown() {
  deploy/local/stack.sh stop >/dev/null 2>&1 || deploy/local/stack.sh stop
  deploy/local/stack.sh destroy >/dev/null 2>&1 || true
}
trap teardown EXIT

deploy/local/stack.sh stop >/dev/null 2>&1 || true
deploy/local/stack.sh destroy >/dev/null 2>&1 || true
if ! deploy/local/stack.sh start; then
  echo "system: the local stack (PostgreSQL + Kafka) did not start; see the messages above" >&2
  [ -n "${FLOWD_COUNTS:-}" ] && echo "0 1" >>"$FLOWD_COUNTS"
  exit 1
fi

junit="$FLOWD_VAR/junit.xml"
# the whole suite unless the arguments name test files or directories themselves
targets=(tests/system)
for arg in "$@"; do
  [[ "$arg" == tests/* ]] && targets=()
done
.venv/bin/python -m pytest "${targets[@]}" -p no:cacheprovider -q -ra --junitxml="$junit" "$@"
status=$?
if [ -f "$junit" ] && [ -n "${FLOWD_COUNTS:-}" ]; then
  .venv/bin/python - "$junit" >>"$FLOWD_COUNTS" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad)
PY
fi
# pytest exits 5 when it collected nothing: that is a failure here, not a pass
[ "$status" -eq 0 ]
