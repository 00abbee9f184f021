#!/usr/bin/env bash
# Runs each cmocka unit-test binary (built with ASan/UBSan) and totals the results.
# Writes "passed failed" to $FLOWD_COUNTS when set, so tests/run-all.sh can add them up.
set -uo pipefail

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
for bin in "$@"; do
  out=$("$bin" 2>&1)
  status=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  # a crash (sanitizer report, abort) prints no summary: count the binary as one failure
  if [ "$status" -ne 0 ] && [ -z "$f" ]; then
    echo "unit: $(basename "$bin") exited with status $status" >&2
    failed=$((failed + 1))
  fi
done
echo "unit: $passed passed, $failed failed"
[ -n "${FLOWD_COUNTS:-}" ] && echo "$passed $failed" >>"$FLOWD_COUNTS"
[ "$failed" -eq 0 ]
