#!/usr/bin/env bash
# stack.sh {start|stop|status|destroy} -- the local stack flowd runs against: a throwaway
# PostgreSQL (pg.sh) and a single-node Kafka (kafka.sh), plus the files that tell flowd
# and the tests where they are:
#   $FLOWD_VAR/stack.env   shell-sourceable: FLOWD_VAR PG_PORT PG_URL KAFKA_PORT
#                          KAFKA_BOOTSTRAP HTTP_PORT
#   $FLOWD_VAR/flowd.yaml  flowd's effective config (mode 0600: it holds the DB password)
#
# start while the stack is up reuses it: same ports, same data. The HTTP port (for
# `flowd serve`) is $FLOWD_HTTP_PORT, else the recorded one, else 8080 or the next free.
#
# FLOWD_KAFKA=mock skips the broker and writes bootstrap "mock" (librdkafka's in-process
# mock cluster) -- for a quick look outside CI only. It is refused under CI=true: the
# mock keeps ~5 MB per partition, has no disk and joins groups slowly, so tests against
# it prove little. flowd's config then sets librdkafka's `test.mock.num.brokers`.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HERE="$FLOWD_ROOT/deploy/local"

kafka_mode() {
	case "${FLOWD_KAFKA:-}" in
	"" | broker) echo broker ;;
	mock)
		if [[ "${CI:-}" == true ]]; then
			die "FLOWD_KAFKA=mock is never allowed under CI: CI runs against the real broker"
		fi
		echo mock
		;;
	*) die "FLOWD_KAFKA='$FLOWD_KAFKA' is not understood (unset it, or 'mock' outside CI)" ;;
	esac
}

# The port `flowd serve` will listen on. Nothing listens there while the stack starts,
# so a recorded port is kept unless another program took it (a running flowd of ours
# keeps its port too).
http_port() {
	local recorded port
	recorded="$(read_value "$FLOWD_VAR/http.port")"
	if [[ -z "${FLOWD_HTTP_PORT:-}" && -n "$recorded" ]] && port_in_use "$recorded" &&
		ss -Htlnp "sport = :$recorded" 2>/dev/null | grep -q '"flowd"'; then
		port="$recorded"
	else
		port="$(choose_port http "${FLOWD_HTTP_PORT:-}" "$recorded" 8080)"
	fi
	write_value "$FLOWD_VAR/http.port" "$port"
	printf '%s\n' "$port"
}

# write_private FILE: writes stdin to FILE with mode 0600, atomically.
write_private() {
	local file="$1"
	(
		umask 077
		cat >"$file.tmp.$$"
	)
	mv -f "$file.tmp.$$" "$file"
}

write_files() {
	local pg_port="$1" kafka_port="$2" bootstrap="$3" http="$4" pw url kafka_line
	pw="$(read_value "$FLOWD_VAR/pg/password")"
	[[ -n "$pw" ]] || die "no password in $FLOWD_VAR/pg/password"
	url="postgresql://flowd:$pw@127.0.0.1:$pg_port/flowd"
	# mock: librdkafka starts an in-process mock cluster in each flowd process
	kafka_line="bootstrap.servers: \"$bootstrap\""
	[[ "$bootstrap" == mock ]] && kafka_line='test.mock.num.brokers: "1"'

	write_private "$FLOWD_VAR/stack.env" <<EOF
# written by deploy/local/stack.sh -- source it: . $FLOWD_VAR/stack.env
FLOWD_VAR='$FLOWD_VAR'
PG_PORT='$pg_port'
PG_URL='$url'
KAFKA_PORT='$kafka_port'
KAFKA_BOOTSTRAP='$bootstrap'
HTTP_PORT='$http'
EOF

	write_private "$FLOWD_VAR/flowd.yaml" <<EOF
# written by deploy/local/stack.sh -- the local stack's effective config
http:
  listen: 127.0.0.1
  port: $http
db:
  url: "$url"
kafka:
  $kafka_line
engine:
  workflows_dir: "$FLOWD_ROOT/workflows"
EOF
}

stack_start() {
	local mode pg_port kafka_port="" bootstrap http
	mode="$(kafka_mode)"
	if [[ "$mode" == broker && ! -x "$FLOWD_BIN" ]]; then
		# kafka.sh needs `flowd topics ensure`; fail before starting anything
		die "$FLOWD_BIN not found: build flowd first (make build)"
	fi
	mkdir -p "$FLOWD_VAR"
	"$HERE/pg.sh" start
	pg_port="$(read_value "$FLOWD_VAR/pg/port")"
	if [[ "$mode" == mock ]]; then
		warn "FLOWD_KAFKA=mock: no broker; flowd runs librdkafka's in-process mock cluster"
		bootstrap=mock
	else
		read -r kafka_port _ < <("$HERE/kafka.sh" ports)
		[[ -n "$kafka_port" ]] || die "kafka.sh ports chose no port"
		bootstrap="127.0.0.1:$kafka_port"
	fi
	http="$(http_port)"
	write_files "$pg_port" "$kafka_port" "$bootstrap" "$http"
	if [[ "$mode" == broker ]]; then
		"$HERE/kafka.sh" start
	fi
	say "up: postgres 127.0.0.1:$pg_port, kafka $bootstrap, http port $http" \
		"(env: $FLOWD_VAR/stack.env, config: $FLOWD_VAR/flowd.yaml)"
}

# Stops both halves even when one of them fails, and reports the failure at the end.
stack_stop() {
	local rc=0
	"$HERE/kafka.sh" stop || rc=1
	"$HERE/pg.sh" stop || rc=1
	return "$rc"
}

# Exits 0 only when both run (3 otherwise; with FLOWD_KAFKA=mock, postgres alone), so scripts can ask "is the stack up?".
stack_status() {
	local rc=0
	"$HERE/pg.sh" status || rc=3
	if [[ "${FLOWD_KAFKA:-}" == mock ]]; then
		say "kafka: mock (no broker)"
	else
		"$HERE/kafka.sh" status || rc=3
	fi
	return "$rc"
}

stack_destroy() {
	local rc=0
	"$HERE/kafka.sh" destroy || rc=1
	"$HERE/pg.sh" destroy || rc=1
	rm -f "$FLOWD_VAR/stack.env" "$FLOWD_VAR/flowd.yaml" "$FLOWD_VAR/http.port"
	return "$rc"
}

main() {
	case "${1:-}" in
	start) stack_start ;;
	stop) stack_stop ;;
	status) stack_status ;;
	destroy) stack_destroy ;;
	*) die "usage: $FLOWD_SCRIPT {start|stop|status|destroy}" ;;
	esac
}

main "$@"
