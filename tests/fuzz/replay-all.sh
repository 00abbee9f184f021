#!/usr/bin/env bash
# Replays tests/fuzz/corpus/<target>/* through each <target>-replay binary.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
for bin in "$@"; do
  target=$(basename "$bin" -replay)
  corpus=tests/fuzz/corpus/${target#fuzz_}
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "fuzz: $target has no seed corpus in $corpus" >&2
    failed=$((failed + 1))
    continue
  fi
  if "$bin" "$corpus"/*; then
    passed=$((passed + 1))
  else
    echo "fuzz: $target failed on its seed corpus" >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ -n "${FLOWD_COUNTS:-}" ] && echo "$passed $failed" >>"$FLOWD_COUNTS"
[ "$failed" -eq 0 ]
