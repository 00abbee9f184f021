#!/usr/bin/env bash
# `make test` after deps and build: lint, unit tests, fuzz seed replay, system tests.
# Every stage runs even when an earlier one failed; the last line is the total
# ("N passed, M failed") and the exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

counts=$(mktemp)
trap 'rm -f "$counts"' EXIT
export FLOWD_COUNTS=$counts
status=0

stage() {
  echo "== $1"
  shift
  if ! "$@"; then
    status=1
    echo "== stage failed: $*" >&2
  fi
}

lint() {
  if tests/lint.sh; then
    echo "lint: 1 passed, 0 failed"
    echo "1 0" >>"$counts"
  else
    echo "0 1" >>"$counts"
    return 1
  fi
}

stage "lint (clang-format, cppcheck, shellcheck, banned calls)" lint
stage "unit tests (cmocka, ASan/UBSan)" make --no-print-directory unit
stage "fuzz seed corpus replay (ASan/UBSan)" make --no-print-directory fuzz-replay
stage "system tests (pytest, real PostgreSQL and Kafka)" tests/system/run.sh

read -r passed failed < <(awk '{p += $1; f += $2} END {print p + 0, f + 0}' "$counts")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a stage broke before it could count (build error, stack did not start)
fi
echo "$passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
