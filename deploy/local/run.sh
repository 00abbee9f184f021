#!/usr/bin/env bash
# run.sh -- what `make run` does after building: bring up the local stack, migrate the
# database, make sure the development API key exists (deploy/local/dev-key.sh: tenant dev,
# admin, kept in var/dev-api-key and printed with a curl example), then run `flowd serve`
# in the foreground. Ctrl-C stops flowd only; the stack keeps running with its data under
# $FLOWD_VAR (stop it with `make stop`), so the next `make run` starts in seconds with
# everything still there.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# How to watch this flowd with the shipped Prometheus and Grafana files (docs/observability.md).
grafana_hint() {
	local port="$1" dir="$FLOWD_ROOT/deploy"
	say "metrics: http://127.0.0.1:$port/metrics; Grafana: docker compose -f $dir/docker-compose.grafana.yml up (http://127.0.0.1:3000)"
	say "  or point your own Grafana at $dir/grafana/provisioning and Prometheus at $dir/prometheus/prometheus.yml"
}

main() {
	local config="$FLOWD_VAR/flowd.yaml" port
	[[ -x "$FLOWD_BIN" ]] || die "$FLOWD_BIN not found: build flowd first (make build)"
	"$FLOWD_ROOT/deploy/local/stack.sh" start
	"$FLOWD_BIN" --config "$config" migrate || die "flowd migrate failed"
	port="$(read_value "$FLOWD_VAR/http.port")"
	# the development admin key (tenant dev), created on the first run, reused after
	"$FLOWD_ROOT/deploy/local/dev-key.sh" "$config" "$port" ||
		die "could not set up the development API key"
	# the demo business directory (tenant dev) the chat flows search; idempotent
	"$FLOWD_ROOT/deploy/local/seed-directory.sh" || warn "could not load the demo directory"
	say "flowd listens on http://127.0.0.1:$port (readiness: http://127.0.0.1:$port/readyz)"
	say "stop the stack with: make stop; Ctrl-C stops flowd"
	grafana_hint "$port"
	# exec: flowd becomes this process, so Ctrl-C and SIGTERM reach it directly. The
	# servers of the stack run in sessions of their own and are not touched.
	exec "$FLOWD_BIN" --config "$config" serve
}

main "$@"
