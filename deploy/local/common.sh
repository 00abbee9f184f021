# shellcheck shell=bash disable=SC2034 # the variables set here are used by the scripts sourcing it
# common.sh -- helpers shared by the local-stack scripts (pg.sh, kafka.sh, stack.sh,
# run.sh) and deploy/deps.sh. Sourced, never run: it sets variables and defines
# functions only: sourcing it creates no file and starts nothing.
#
# Variables it sets:
#   FLOWD_ROOT     the project root, found from this file's location so the scripts
#                  work from any working directory
#   FLOWD_VAR      the state directory (env FLOWD_VAR, default $FLOWD_ROOT/var), absolute
#   KAFKA_VERSION  the broker version, read from deploy/kafka/pom.xml (one source of truth)
#   KAFKA_LIBS     where deps.sh puts the broker's jars (env FLOWD_KAFKA_LIBS overrides)
#   FLOWD_BIN      the flowd binary (env FLOWD_BIN, default $FLOWD_ROOT/build/flowd)

FLOWD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"

# The name that prefixes every message: the script that sourced us.
FLOWD_SCRIPT="$(basename "${BASH_SOURCE[1]:-$0}")"

FLOWD_VAR="${FLOWD_VAR:-$FLOWD_ROOT/var}"
# Absolute, because the path ends up in server.properties and flowd.yaml, which are
# read by processes with other working directories.
case "$FLOWD_VAR" in
/*) ;;
*) FLOWD_VAR="$PWD/$FLOWD_VAR" ;;
esac
export FLOWD_VAR

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' \
	"$FLOWD_ROOT/deploy/kafka/pom.xml" | head -n 1)"
KAFKA_LIBS="${FLOWD_KAFKA_LIBS:-$FLOWD_ROOT/var/cache/kafka/$KAFKA_VERSION/libs}"
FLOWD_BIN="${FLOWD_BIN:-$FLOWD_ROOT/build/flowd}"

# ---- messages ---------------------------------------------------------------------------

say() { printf '%s: %s\n' "$FLOWD_SCRIPT" "$*"; }
warn() { printf '%s: %s\n' "$FLOWD_SCRIPT" "$*" >&2; }
die() {
	warn "$*"
	exit 1
}

# Prints the last lines of a log to stderr, so a failed start shows its cause.
show_log_tail() {
	local file="$1" lines="${2:-40}"
	if [[ -r "$file" ]]; then
		warn "last $lines lines of $file:"
		tail -n "$lines" "$file" | sed 's/^/    /' >&2
	else
		warn "(no log at $file)"
	fi
}

# ---- small files holding one value --------------------------------------------------------

# read_value FILE: prints the file's first line, or nothing when it does not exist.
read_value() {
	[[ -r "$1" ]] || return 0
	head -n 1 "$1"
}

# write_value FILE VALUE: replaces the file atomically (a crash never leaves half a value).
write_value() {
	local file="$1" value="$2"
	mkdir -p "$(dirname "$file")"
	printf '%s\n' "$value" >"$file.tmp.$$"
	mv -f "$file.tmp.$$" "$file"
}

# ---- ports ----------------------------------------------------------------------------------

# port_in_use PORT: true when something listens on 127.0.0.1:PORT or on the wildcard
# address (either blocks our bind). ss sees listeners of every user; the /dev/tcp
# fallback only sees what accepts connections, which is good enough without iproute2.
port_in_use() {
	local port="$1"
	if command -v ss >/dev/null 2>&1; then
		[[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
}

# in_list WORD LIST...: true when WORD is one of LIST.
in_list() {
	local word="$1" item
	shift
	for item in "$@"; do [[ "$item" == "$word" ]] && return 0; done
	return 1
}

# free_port_from START [EXCLUDED...]: prints the first port >= START that nobody listens
# on and that is not in EXCLUDED (ports chosen for the stack's other servers, which may
# not be listening yet).
free_port_from() {
	local port="$1"
	shift
	local limit=$((port + 1000))
	while ((port < limit)); do
		if ! in_list "$port" "$@" && ! port_in_use "$port"; then
			printf '%s\n' "$port"
			return 0
		fi
		port=$((port + 1))
	done
	die "no free port in [$1, $limit)"
}

# choose_port NAME EXPLICIT RECORDED DEFAULT [EXCLUDED...]: the port for a server that is
# about to start. An explicit port (from the environment) is used as given, so a clash
# is an error the caller reports; a recorded port is kept while free so restarts reuse
# it; otherwise the first free one from DEFAULT.
choose_port() {
	local name="$1" explicit="$2" recorded="$3" default="$4"
	shift 4
	if [[ -n "$explicit" ]]; then
		[[ "$explicit" =~ ^[0-9]+$ ]] || die "$name port '$explicit' is not a number"
		port_in_use "$explicit" && die "$name port $explicit (from the environment) is in use"
		printf '%s\n' "$explicit"
		return 0
	fi
	if [[ -n "$recorded" ]]; then
		if ! port_in_use "$recorded" && ! in_list "$recorded" "$@"; then
			printf '%s\n' "$recorded"
			return 0
		fi
		warn "$name port $recorded is taken now; choosing another"
	fi
	free_port_from "$default" "$@"
}

# ---- processes --------------------------------------------------------------------------------

# pid_alive PID [COMM]: true when the process exists and is not a zombie (a killed server
# whose parent has not reaped it yet is dead to us), and, given COMM, has that name, so a
# recycled PID of an unrelated process is not mistaken for our server.
pid_alive() {
	local pid="$1" comm="${2:-}" stat
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
	# the state letter follows the ")" that closes the command name
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]] || return 1
	if [[ -n "$comm" ]]; then
		[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] || return 1
	fi
	return 0
}

# wait_gone PID SECONDS: waits until the process has exited; false on timeout.
wait_gone() {
	local pid="$1" deadline=$((SECONDS + $2))
	while pid_alive "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
	return 0
}

# random_hex BYTES: a random token, hex so it needs no quoting in URLs, YAML or shell.
random_hex() {
	head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
}
