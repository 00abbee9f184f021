#!/usr/bin/env bash
# deps.sh -- installs what building, running and testing flowd needs on Debian 12:
#   1. Debian packages (apt-get; only when one is missing)
#   2. the Kafka broker's jars (Maven) into var/cache/kafka/<version>/libs
#   3. the system tests' Python venv at .venv/ from tests/system/requirements.txt
# `make deps` runs it before every build, so when everything is present it must print
# nothing and finish in a fraction of a second: each step checks first (dpkg-query, and
# stamp files holding the checksum of what the step was done for).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/local/common.sh"

# "a|b" means: satisfied when any of them is installed, and install a when none is.
# (The image may carry openjdk-17-jre-headless or postgresql-client-15 without the
# default-* / unversioned metapackages, which would otherwise cost an apt-get update.)
APT_PACKAGES=(
	gcc make pkg-config
	libcivetweb-dev librdkafka-dev libpq-dev libcurl4-openssl-dev libjansson-dev
	libyaml-dev liblua5.4-dev libcmocka-dev libssl-dev
	postgresql "postgresql-client|postgresql-client-15"
	"default-jre-headless|openjdk-17-jre-headless" maven
	python3-venv
	cppcheck shellcheck
	curl procps iproute2
	prometheus
	wrk
	valgrind
)

# Prints the packages (the first name of each alternative) that are not installed.
missing_packages() {
	local installed entry name found names
	mapfile -t names < <(printf '%s\n' "${APT_PACKAGES[@]}" | tr '|' '\n')
	# One dpkg-query for all names; unknown names only print to stderr.
	installed="$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null |
		awk '$2 == "ii" { print $1 }' || true)"
	for entry in "${APT_PACKAGES[@]}"; do
		found=0
		for name in ${entry//|/ }; do
			if grep -qxF "$name" <<<"$installed"; then found=1; fi
		done
		((found)) || printf '%s\n' "${entry%%|*}"
	done
}

# as_root CMD...: root runs it directly; others through sudo.
as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "not root and no sudo: install as root: $*"
	fi
}

install_packages() {
	local missing log
	command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs Debian or Ubuntu"
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) && return 0
	say "installing Debian packages: ${missing[*]}"
	log="$(mktemp /tmp/flowd-apt.XXXXXX)"
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
		! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
		show_log_tail "$log"
		die "apt-get failed (full log: $log)"
	fi
	rm -f "$log"
}

# sha256 of the given files together, plus any extra words (paths, versions), so a stamp
# goes stale when any of them changes.
checksum() {
	local words=()
	while (($#)) && [[ "$1" != -- ]]; do
		words+=("$1")
		shift
	done
	shift || true
	{
		printf '%s\n' "${words[@]}"
		cat "$@"
	} | sha256sum | cut -d' ' -f1
}

kafka_jars() {
	local pom="$FLOWD_ROOT/deploy/kafka/pom.xml" stamp sum log
	stamp="$(dirname "$KAFKA_LIBS")/.flowd-resolved"
	sum="$(checksum "$KAFKA_LIBS" -- "$pom")"
	if [[ "$(read_value "$stamp")" == "$sum" && -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
		return 0
	fi
	say "resolving the Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS"
	# A fresh directory, so jars of a former pom do not stay on the broker's classpath.
	rm -rf "$KAFKA_LIBS"
	mkdir -p "$KAFKA_LIBS"
	log="$(mktemp /tmp/flowd-mvn.XXXXXX)"
	if ! mvn -q -B -Dstyle.color=never -f "$pom" -Dkafka.libs="$KAFKA_LIBS" \
		dependency:copy-dependencies >"$log" 2>&1; then
		show_log_tail "$log"
		die "mvn failed (full log: $log)"
	fi
	rm -f "$log"
	[[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "mvn did not produce the broker jar"
	write_value "$stamp" "$sum"
}

# Debian's python3 first: its venv module comes from python3-venv, installed above. A
# pyenv shim may be first on PATH and may change under us; it has venv built in, so it
# is the fallback.
venv_python() {
	local py
	for py in /usr/bin/python3 "$(command -v python3 || true)"; do
		if [[ -n "$py" && -x "$py" ]] && "$py" -c 'import venv, ensurepip' 2>/dev/null; then
			printf '%s\n' "$py"
			return 0
		fi
	done
	die "no python3 with a working venv module (install python3-venv)"
}

python_venv() {
	local req="$FLOWD_ROOT/tests/system/requirements.txt" venv="$FLOWD_ROOT/.venv"
	local stamp="$venv/.flowd-requirements" py sum log
	py="$(venv_python)"
	sum="$(checksum "$py" "$("$py" -c 'import sys; print(sys.version)')" -- "$req")"
	if [[ "$(read_value "$stamp")" == "$sum" && -x "$venv/bin/python" ]]; then
		return 0
	fi
	say "creating the test venv at $venv from $req"
	log="$(mktemp /tmp/flowd-venv.XXXXXX)"
	# --clear: a venv from another interpreter or older pins is rebuilt, not patched.
	if ! "$py" -m venv --clear "$venv" >"$log" 2>&1 ||
		! "$venv/bin/python" -m pip install -q --disable-pip-version-check \
			-r "$req" >>"$log" 2>&1; then
		show_log_tail "$log"
		die "creating the venv failed (full log: $log)"
	fi
	rm -f "$log"
	write_value "$stamp" "$sum"
}

main() {
	install_packages
	kafka_jars
	python_venv
}

main "$@"
