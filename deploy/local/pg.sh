#!/usr/bin/env bash
# pg.sh {start|stop|status|destroy} -- a throwaway PostgreSQL cluster for development and
# tests, listening on 127.0.0.1 only.
#
# State in $FLOWD_VAR/pg/ (default var/pg/):
#   location   the cluster's directory under /tmp (see below)
#   port       the TCP port, reused by later starts while it stays free
#   password   the password of role `flowd` (mode 0600)
#   server.log a link to the server's log
#
# The data directory does NOT live under $FLOWD_VAR: the checkout may sit where user
# postgres cannot enter (CI clones under a 0700 /root), and initdb/postgres refuse to run
# as root. So the cluster lives in a postgres-owned directory made by mktemp under /tmp,
# whose short path also keeps the Unix socket under the 107-byte limit. /tmp is emptied
# by a reboot; start then notices and runs initdb again (the password is kept).
#
# Port: $FLOWD_PG_PORT, else the recorded one, else the first free from 15432.
# status exits 0 when running, 3 when stopped (like pg_ctl status).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Connection settings from the caller's environment must not redirect our admin commands
# to another server or database; every command below names its target explicitly.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGOPTIONS PGSERVICE PGSERVICEFILE

PG_STATE="$FLOWD_VAR/pg"
PG_START_TIMEOUT=60

pg_bindir() {
	local dir=""
	if command -v pg_config >/dev/null 2>&1; then
		dir="$(pg_config --bindir)"
	fi
	# pg_config comes from libpq-dev and may name a version whose server is not
	# installed; fall back to the newest installed server.
	if [[ ! -x "$dir/initdb" ]]; then
		dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
	fi
	[[ -x "$dir/initdb" ]] || die "PostgreSQL server binaries not found (run: make deps)"
	printf '%s\n' "$dir"
}

# as_pg CMD...: runs a PostgreSQL tool as the cluster's owner. Under root that is user
# postgres (the tools refuse root); otherwise the current user owns the cluster. The
# working directory becomes / because postgres may not be allowed into the caller's.
as_pg() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# The superuser initdb creates: the OS user running it, which peer authentication on the
# Unix socket then accepts without a password.
pg_superuser() {
	if ((EUID == 0)); then echo postgres; else id -un; fi
}

pg_location() { read_value "$PG_STATE/location"; }

# The postmaster's PID when our cluster runs, else nothing.
pg_running_pid() {
	local loc pid
	loc="$(pg_location)"
	[[ -n "$loc" && -r "$loc/data/postmaster.pid" ]] || return 0
	pid="$(head -n 1 "$loc/data/postmaster.pid")"
	if pid_alive "$pid" postgres; then printf '%s\n' "$pid"; fi
}

# Creates the cluster when there is none (first start, or /tmp was emptied).
pg_ensure_cluster() {
	local loc bindir
	loc="$(pg_location)"
	[[ -n "$loc" && -f "$loc/data/PG_VERSION" ]] && return 0
	if [[ -n "$loc" && -d "$loc" && "$loc" == /tmp/flowd-pg.* ]]; then
		rm -rf "$loc" # an initdb that did not finish
	fi
	bindir="$(pg_bindir)"
	mkdir -p "$PG_STATE"
	loc="$(mktemp -d /tmp/flowd-pg.XXXXXX)"
	if ((EUID == 0)); then chown postgres: "$loc"; fi
	say "creating a cluster in $loc (initdb)"
	if ! as_pg "$bindir/initdb" -D "$loc/data" --auth-local=peer --auth-host=scram-sha-256 \
		-E UTF8 --no-locale --no-instructions >"$PG_STATE/initdb.log" 2>&1; then
		show_log_tail "$PG_STATE/initdb.log"
		rm -rf "$loc"
		die "initdb failed"
	fi
	# Our settings go in their own file, rewritten at each start (the port may change).
	echo "include_if_exists = 'flowd.conf'" | as_pg tee -a "$loc/data/postgresql.conf" >/dev/null
	write_value "$PG_STATE/location" "$loc"
	ln -sfn "$loc/server.log" "$PG_STATE/server.log"
}

# pids_in_dir DIR: the live processes whose working directory is DIR (PostgreSQL
# processes chdir into the data directory).
pids_in_dir() {
	local proc pid
	for proc in /proc/[0-9]*; do
		pid="${proc#/proc/}"
		if [[ "$(readlink "$proc/cwd" 2>/dev/null)" == "$1" ]] && pid_alive "$pid"; then
			printf '%s\n' "$pid"
		fi
	done
}

# After a kill -9 the postmaster can linger as a zombie until PID 1 reaps it (slowly on
# some container inits), and postgres refuses to start while the PID in postmaster.pid
# exists. Once no live process works in the data directory any more (the postmaster's
# children exit when it dies), the lock files are stale and are removed.
pg_clear_stale_lock() {
	local data="$1" pid deadline=$((SECONDS + 30))
	[[ -f "$data/postmaster.pid" ]] || return 0
	pid="$(head -n 1 "$data/postmaster.pid")"
	[[ -d "/proc/$pid" ]] || return 0 # postgres itself handles a lock of a gone PID
	while [[ -n "$(pids_in_dir "$data")" ]]; do
		((SECONDS < deadline)) || die "processes still use $data: $(pids_in_dir "$data" | tr '\n' ' ')"
		sleep 0.2
	done
	warn "removing the stale lock files of a dead server (pid $pid)"
	as_pg rm -f "$data/postmaster.pid"
	# the socket's lock file names the same PID; the socket directory is ours alone
	as_pg find "$(dirname "$data")" -maxdepth 1 -name '.s.PGSQL.*' -delete
}

pg_write_conf() {
	local loc="$1" port="$2"
	as_pg tee "$loc/data/flowd.conf" >/dev/null <<EOF
# written by deploy/local/pg.sh at each start
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$loc'
shared_buffers = 32MB
max_connections = 200
EOF
}

pg_password() {
	local pw
	pw="$(read_value "$PG_STATE/password")"
	if [[ -z "$pw" ]]; then
		pw="$(random_hex 24)"
		(umask 077 && write_value "$PG_STATE/password" "$pw")
	fi
	chmod 600 "$PG_STATE/password"
	printf '%s\n' "$pw"
}

# Role `flowd` (LOGIN, CREATEDB so tests can make scratch databases) with the recorded
# password, and database `flowd` owned by it. Run at every start: cheap, and it repairs a
# cluster whose password file was lost. The password travels on stdin, not argv (ps).
pg_ensure_role() {
	local loc="$1" port="$2" bindir="$3" pw
	pw="$(pg_password)"
	as_pg "$bindir/psql" -X -q -h "$loc" -p "$port" -U "$(pg_superuser)" -d postgres \
		-v ON_ERROR_STOP=1 >/dev/null <<EOF
\\set pw '$pw'
SELECT 'CREATE ROLE flowd' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flowd') \\gexec
ALTER ROLE flowd LOGIN CREATEDB PASSWORD :'pw';
SELECT 'CREATE DATABASE flowd OWNER flowd'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'flowd') \\gexec
EOF
}

pg_start() {
	local pid loc port bindir deadline
	pid="$(pg_running_pid)"
	if [[ -n "$pid" ]]; then
		say "already running (pid $pid, 127.0.0.1:$(read_value "$PG_STATE/port"))"
		return 0
	fi
	bindir="$(pg_bindir)"
	pg_ensure_cluster
	loc="$(pg_location)"
	port="$(choose_port postgres "${FLOWD_PG_PORT:-}" "$(read_value "$PG_STATE/port")" 15432)"
	write_value "$PG_STATE/port" "$port"
	pg_write_conf "$loc" "$port"
	pg_clear_stale_lock "$loc/data"
	# one run per log file, so a failed start's tail shows that start only
	if [[ -f "$loc/server.log" ]]; then as_pg mv -f "$loc/server.log" "$loc/server.log.1"; fi

	# pg_ctl detaches the postmaster into its own session, so a Ctrl-C aimed at a
	# foreground flowd (make run) does not reach it.
	if ! as_pg "$bindir/pg_ctl" -D "$loc/data" -l "$loc/server.log" -w -t "$PG_START_TIMEOUT" \
		-s start >/dev/null; then
		show_log_tail "$loc/server.log"
		die "PostgreSQL did not start"
	fi
	deadline=$((SECONDS + PG_START_TIMEOUT))
	until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; do
		if ((SECONDS >= deadline)); then
			show_log_tail "$loc/server.log"
			die "PostgreSQL does not answer on 127.0.0.1:$port after ${PG_START_TIMEOUT}s"
		fi
		sleep 0.2
	done
	pg_ensure_role "$loc" "$port" "$bindir"
	say "running (pid $(pg_running_pid), 127.0.0.1:$port, data $loc/data)"
}

pg_stop() {
	local pid loc
	pid="$(pg_running_pid)"
	if [[ -z "$pid" ]]; then
		say "already stopped"
		return 0
	fi
	loc="$(pg_location)"
	# fast = roll back open transactions and shut down cleanly; immediate (SIGQUIT) is
	# only for a server that does not finish that in time.
	if ! as_pg "$(pg_bindir)/pg_ctl" -D "$loc/data" -m fast -w -t 60 -s stop; then
		warn "fast shutdown timed out; sending SIGQUIT to $pid"
		kill -QUIT "$pid" 2>/dev/null || true
		wait_gone "$pid" 30 || die "postmaster $pid does not exit"
	fi
	say "stopped"
}

pg_status() {
	local pid
	pid="$(pg_running_pid)"
	if [[ -n "$pid" ]]; then
		say "running (pid $pid, 127.0.0.1:$(read_value "$PG_STATE/port"), data $(pg_location)/data)"
		return 0
	fi
	say "stopped"
	return 3
}

# Stops the server and deletes the cluster and its state (a fresh start next time).
pg_destroy() {
	local loc
	pg_stop
	loc="$(pg_location)"
	if [[ "$loc" == /tmp/flowd-pg.* ]]; then rm -rf "$loc"; fi
	rm -rf "$PG_STATE"
	say "destroyed"
}

main() {
	case "${1:-}" in
	start) pg_start ;;
	stop) pg_stop ;;
	status) pg_status ;;
	destroy) pg_destroy ;;
	*) die "usage: $FLOWD_SCRIPT {start|stop|status|destroy}" ;;
	esac
}

main "$@"
