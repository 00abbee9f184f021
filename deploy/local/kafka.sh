#!/usr/bin/env bash
# kafka.sh {start|stop|status|ports|destroy} -- a single-node Apache Kafka broker in KRaft
# mode (broker and controller in one JVM) for development and tests, on 127.0.0.1 only.
#
# The jars come from deploy/deps.sh (Maven, deploy/kafka/pom.xml). State in
# $FLOWD_VAR/kafka/:
#   port, controller.port   the listeners' ports, reused by later starts while free
#   cluster.id              made once by StorageTool random-uuid
#   server.properties       regenerated at each start (ports may change)
#   data/                   the log directory, formatted once
#   server.log              the broker's output (the previous run's is server.log.1)
#   kafka.pid               the JVM's PID
#
# start returns once the broker answers and the topics in $FLOWD_VAR/flowd.yaml exist:
# it runs `flowd topics ensure`, so flowd must be built and stack.sh must have written
# flowd.yaml. Ports: $FLOWD_KAFKA_PORT (and $FLOWD_KAFKA_CONTROLLER_PORT), else the
# recorded ones, else the first free from 19092. `ports` chooses and records the ports
# without starting anything (stack.sh needs them to write flowd.yaml first).
# status exits 0 when running, 3 when stopped.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_STATE="$FLOWD_VAR/kafka"
KAFKA_LOG4J="$FLOWD_ROOT/deploy/kafka/log4j.properties"
KAFKA_START_TIMEOUT=60
KAFKA_STOP_TIMEOUT=30
# The broker's heap, fixed at 1 GiB; the rest are the JVM flags of the distribution's
# kafka-run-class.sh. The broker keeps about 175 MB live; with the old 256-512 MB heap
# that sat above G1's 35 % initiating occupancy, so a concurrent marking cycle ran every
# few seconds and took one of a 2-CPU machine's CPUs for ~100 ms each time: the API's
# latency tail (docs/benchmarks.md, S1). The GC log says when the broker paused.
KAFKA_JVM_OPTS=(-Xmx1g -Xms1g -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
	-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
	-Djava.awt.headless=true)

# The broker's PID when it runs, else nothing.
kafka_running_pid() {
	local pid
	pid="$(read_value "$KAFKA_STATE/kafka.pid")"
	if pid_alive "$pid" java; then printf '%s\n' "$pid"; fi
}

kafka_check_install() {
	command -v java >/dev/null 2>&1 || die "java not found (run: make deps)"
	[[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
		die "Kafka $KAFKA_VERSION jars missing in $KAFKA_LIBS (run: make deps)"
}

# kafka_tool MAIN-CLASS ARGS...: runs one of Kafka's command-line tools in a small JVM.
kafka_tool() {
	java -Xmx256m -Dlog4j.configuration="file:$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*" "$@"
}

# Chooses the two ports (unless the broker runs, which keeps its own) and records them.
kafka_choose_ports() {
	local port cport recorded_cport
	if [[ -n "$(kafka_running_pid)" ]]; then return 0; fi
	recorded_cport="$(read_value "$KAFKA_STATE/controller.port")"
	# Each choice avoids the other's port: neither listens yet.
	port="$(choose_port kafka "${FLOWD_KAFKA_PORT:-}" "$(read_value "$KAFKA_STATE/port")" 19092 \
		${recorded_cport:+"$recorded_cport"} ${FLOWD_KAFKA_CONTROLLER_PORT:+"$FLOWD_KAFKA_CONTROLLER_PORT"})"
	cport="$(choose_port "kafka controller" "${FLOWD_KAFKA_CONTROLLER_PORT:-}" \
		"$recorded_cport" $((port + 1)) "$port")"
	[[ "$port" != "$cport" ]] || die "kafka and its controller cannot share port $port"
	write_value "$KAFKA_STATE/port" "$port"
	write_value "$KAFKA_STATE/controller.port" "$cport"
}

kafka_write_properties() {
	local port="$1" cport="$2"
	cat >"$KAFKA_STATE/server.properties" <<EOF
# written by deploy/local/kafka.sh at each start -- edits are lost
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_STATE/data

# one node: every replication factor and ISR is 1
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# fewer internal partitions than the default 50: the first group join and the first
# transaction on a fresh broker come seconds sooner, which tests notice
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10

# flowd creates its topics itself (flowd topics ensure), with the partition counts the
# engine's co-partitioning needs; a typo in a topic name must fail, not create a topic
auto.create.topics.enable=false
# a single consumer should not wait 3 s for company before its first assignment
group.initial.rebalance.delay.ms=0

# dev-sized logs: segments small enough for retention to act, a day or 256 MiB per
# partition (16 MiB segments rolled several times a second under S1's load, each roll
# a few milliseconds in the produce path)
log.segment.bytes=67108864
log.retention.hours=24
log.retention.bytes=268435456
log.retention.check.interval.ms=60000
num.network.threads=2
num.io.threads=4
EOF
}

# Formats the log directory once; a formatted one keeps its data across restarts.
kafka_format() {
	local id
	[[ -f "$KAFKA_STATE/data/meta.properties" ]] && return 0
	id="$(read_value "$KAFKA_STATE/cluster.id")"
	if [[ -z "$id" ]]; then
		# random-uuid prints the id after any log lines; the id is the line of 22
		# base64url characters.
		id="$(kafka_tool kafka.tools.StorageTool random-uuid 2>/dev/null |
			grep -E '^[A-Za-z0-9_-]{22}$' | tail -n 1 || true)"
		[[ -n "$id" ]] || die "StorageTool random-uuid printed no cluster id"
		write_value "$KAFKA_STATE/cluster.id" "$id"
	fi
	say "formatting $KAFKA_STATE/data (cluster id $id)"
	if ! kafka_tool kafka.tools.StorageTool format -t "$id" \
		-c "$KAFKA_STATE/server.properties" >"$KAFKA_STATE/format.log" 2>&1; then
		show_log_tail "$KAFKA_STATE/format.log"
		die "formatting the Kafka log directory failed"
	fi
}

# Starts the JVM in its own session (setsid), so a Ctrl-C aimed at a foreground flowd
# does not reach it, with the PID written by the process itself before exec: the PID
# file then names the JVM, not a wrapper.
kafka_launch() {
	if [[ -f "$KAFKA_STATE/server.log" ]]; then
		mv -f "$KAFKA_STATE/server.log" "$KAFKA_STATE/server.log.1"
	fi
	rm -f "$KAFKA_STATE/kafka.pid"
	# shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
	setsid bash -c 'echo $$ >"$1"; shift; exec nohup "$@"' _ "$KAFKA_STATE/kafka.pid" \
		java "${KAFKA_JVM_OPTS[@]}" -Dlog4j.configuration="file:$KAFKA_LOG4J" \
		-Xlog:gc:file="$KAFKA_STATE/gc.log":uptime:filecount=2,filesize=4m \
		-Dkafka.logs.dir="$KAFKA_STATE/logs" -cp "$KAFKA_LIBS/*" \
		kafka.Kafka "$KAFKA_STATE/server.properties" \
		</dev/null >>"$KAFKA_STATE/server.log" 2>&1 &
	local deadline=$((SECONDS + 5))
	until [[ -s "$KAFKA_STATE/kafka.pid" ]]; do
		((SECONDS < deadline)) || die "the broker's PID file did not appear"
		sleep 0.05
	done
}

# Waits until the broker accepts TCP connections, failing fast (with the log) when the
# JVM exits. This is only the first gate: flowd's metadata request is the real one.
kafka_wait_port() {
	local pid="$1" port="$2" deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		if ! pid_alive "$pid"; then
			show_log_tail "$KAFKA_STATE/server.log"
			die "the broker exited during start-up"
		fi
		if ((SECONDS >= deadline)); then
			show_log_tail "$KAFKA_STATE/server.log"
			die "the broker does not listen on 127.0.0.1:$port after ${KAFKA_START_TIMEOUT}s"
		fi
		sleep 0.2
	done
}

# The readiness check: flowd asks the broker for metadata and creates missing topics
# with the configured partition counts; exits 0 only when every topic is there.
kafka_ensure_topics() {
	local config="$FLOWD_VAR/flowd.yaml"
	if ! "$FLOWD_BIN" --config "$config" topics ensure --wait "${KAFKA_START_TIMEOUT}s"; then
		show_log_tail "$KAFKA_STATE/server.log" 20
		die "the broker does not answer metadata requests, or the topics could not be created"
	fi
}

kafka_start() {
	local pid port cport
	[[ -x "$FLOWD_BIN" ]] || die "$FLOWD_BIN not found: build flowd first (make build)"
	[[ -r "$FLOWD_VAR/flowd.yaml" ]] ||
		die "$FLOWD_VAR/flowd.yaml missing: start the stack with deploy/local/stack.sh start"
	pid="$(kafka_running_pid)"
	if [[ -n "$pid" ]]; then
		port="$(read_value "$KAFKA_STATE/port")"
		say "already running (pid $pid, 127.0.0.1:$port)"
	else
		kafka_check_install
		mkdir -p "$KAFKA_STATE"
		kafka_choose_ports
		port="$(read_value "$KAFKA_STATE/port")"
		cport="$(read_value "$KAFKA_STATE/controller.port")"
		kafka_write_properties "$port" "$cport"
		kafka_format
		kafka_launch
		pid="$(read_value "$KAFKA_STATE/kafka.pid")"
		kafka_wait_port "$pid" "$port"
	fi
	kafka_ensure_topics
	say "running (pid $pid, 127.0.0.1:$port, log $KAFKA_STATE/server.log)"
}

kafka_stop() {
	local pid
	pid="$(kafka_running_pid)"
	if [[ -z "$pid" ]]; then
		say "already stopped"
		rm -f "$KAFKA_STATE/kafka.pid"
		return 0
	fi
	# SIGTERM = controlled shutdown: the broker flushes and closes its logs, so the next
	# start skips log recovery.
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" "$KAFKA_STOP_TIMEOUT"; then
		warn "the broker did not stop within ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL to $pid"
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 10 || die "the broker ($pid) does not exit"
	fi
	rm -f "$KAFKA_STATE/kafka.pid"
	say "stopped"
}

kafka_status() {
	local pid
	pid="$(kafka_running_pid)"
	if [[ -n "$pid" ]]; then
		say "running (pid $pid, 127.0.0.1:$(read_value "$KAFKA_STATE/port"))"
		return 0
	fi
	say "stopped"
	return 3
}

# Stops the broker and deletes its data and state (a fresh format next time).
kafka_destroy() {
	kafka_stop
	rm -rf "$KAFKA_STATE"
	say "destroyed"
}

main() {
	case "${1:-}" in
	start) kafka_start ;;
	stop) kafka_stop ;;
	status) kafka_status ;;
	ports)
		mkdir -p "$KAFKA_STATE"
		kafka_choose_ports
		printf '%s %s\n' "$(read_value "$KAFKA_STATE/port")" \
			"$(read_value "$KAFKA_STATE/controller.port")"
		;;
	destroy) kafka_destroy ;;
	*) die "usage: $FLOWD_SCRIPT {start|stop|status|ports|destroy}" ;;
	esac
}

main "$@"
