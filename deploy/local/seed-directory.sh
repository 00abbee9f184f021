#!/usr/bin/env bash
# seed-directory.sh -- loads the demo business directory (deploy/local/seed-directory.sql,
# tenant dev) into the local stack's database; run.sh calls it after `flowd migrate`.
# Idempotent: running it again adds nothing and keeps edits made through the API.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

main() {
	local env="$FLOWD_VAR/stack.env" psql url
	[[ -r "$env" ]] || die "$env not found: start the stack first (deploy/local/stack.sh start)"
	# PG_URL only, read in a subshell so the rest of stack.env stays out of this one
	# shellcheck disable=SC1090
	url="$(source "$env" && printf '%s' "$PG_URL")"
	psql="$(command -v psql || true)"
	if [[ -z "$psql" ]] && command -v pg_config >/dev/null 2>&1; then
		psql="$(pg_config --bindir)/psql"
	fi
	[[ -x "$psql" ]] || die "psql not found (run: make deps)"
	"$psql" -X -q -v ON_ERROR_STOP=1 -d "$url" \
		-f "$FLOWD_ROOT/deploy/local/seed-directory.sql" >/dev/null
	say "demo directory loaded for tenant dev ($(
		"$psql" -X -q -t -A -d "$url" -c "SELECT count(*) FROM businesses WHERE tenant = 'dev'"
	) businesses)"
}

main "$@"
