#!/usr/bin/env bash
# run.sh -- what `make run` does after building: bring up the local stack, migrate the
# database, then run `flowd serve` in the foreground. Ctrl-C stops flowd only; the stack
# keeps running with its data under $FLOWD_VAR (stop it with `make stop`), so the next
# `make run` starts in seconds with everything still there.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

main() {
	local config="$FLOWD_VAR/flowd.yaml" port
	[[ -x "$FLOWD_BIN" ]] || die "$FLOWD_BIN not found: build flowd first (make build)"
	"$FLOWD_ROOT/deploy/local/stack.sh" start
	"$FLOWD_BIN" --config "$config" migrate || die "flowd migrate failed"
	port="$(read_value "$FLOWD_VAR/http.port")"
	say "flowd listens on http://127.0.0.1:$port (readiness: http://127.0.0.1:$port/readyz)"
	say "stop the stack with: make stop; Ctrl-C stops flowd"
	# exec: flowd becomes this process, so Ctrl-C and SIGTERM reach it directly. The
	# servers of the stack run in sessions of their own and are not touched.
	exec "$FLOWD_BIN" --config "$config" serve
}

main "$@"
