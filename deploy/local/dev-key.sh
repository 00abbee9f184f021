#!/usr/bin/env bash
# dev-key.sh CONFIG PORT -- the development API key of `make run` (run.sh calls it after
# `flowd migrate`): an admin key of tenant "dev", kept in $FLOWD_VAR/dev-api-key (mode
# 0600) and printed with a ready-to-paste curl example. Later runs reuse it while the
# database still holds it unrevoked; a revoked key or a destroyed database gets a new one.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEV_TENANT=dev
DEV_KEY_FILE="$FLOWD_VAR/dev-api-key"

# key_usable CONFIG KEY: true when the database has KEY's id, not revoked. The list is
# JSON lines of keys (never their secrets); the secret half is checked by the server.
key_usable() {
	local config="$1" key="$2" id list
	[[ "$key" =~ ^fk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$ ]] || return 1
	id="${BASH_REMATCH[1]}"
	list="$("$FLOWD_BIN" --config "$config" keys list --tenant "$DEV_TENANT" --format json)" ||
		return 1
	grep -F "\"id\":\"$id\"" <<<"$list" | grep -qF '"revoked_at":null'
}

# new_key CONFIG: creates the key and stores it readable by its owner only.
new_key() {
	local config="$1" key
	key="$("$FLOWD_BIN" --config "$config" keys create --tenant "$DEV_TENANT" \
		--name "make run (development)" --scopes admin)" || die "flowd keys create failed"
	mkdir -p "$FLOWD_VAR"
	(
		umask 077
		printf '%s\n' "$key" >"$DEV_KEY_FILE.tmp.$$"
	)
	mv -f "$DEV_KEY_FILE.tmp.$$" "$DEV_KEY_FILE"
	chmod 600 "$DEV_KEY_FILE"
}

main() {
	local config="$1" port="$2" key shown
	key="$(read_value "$DEV_KEY_FILE")"
	if [[ -z "$key" ]] || ! key_usable "$config" "$key"; then
		[[ -n "$key" ]] && say "the development API key in $DEV_KEY_FILE is gone or revoked; creating a new one"
		new_key "$config"
		key="$(read_value "$DEV_KEY_FILE")"
	fi
	# relative to the project root when it is the default var/, where `make run` was typed
	shown="$DEV_KEY_FILE"
	[[ "$FLOWD_VAR" == "$FLOWD_ROOT/var" ]] && shown="var/dev-api-key"
	say "development API key (tenant $DEV_TENANT, scope admin), kept in $shown:"
	printf '    %s\n' "$key"
	say "try it:"
	# shellcheck disable=SC2016 # $(cat ...) is for the user's shell, printed as is
	printf '    curl -H "Authorization: Bearer $(cat %s)" http://127.0.0.1:%s/api/v1/workflows\n' \
		"$shown" "$port"
}

main "$@"
