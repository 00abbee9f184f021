#!/usr/bin/env bash
# deploy/gen-readme-config.sh FLOWD README: replaces the configuration reference in README
# (between the config-reference markers) with `flowd config reference`, so the table is
# generated from core/config.c's table and never written twice.
set -euo pipefail
flowd=$1
readme=$2
table=$(mktemp)
trap 'rm -f "$table" "$readme.tmp"' EXIT
"$flowd" config reference >"$table"
awk -v table="$table" '
  /<!-- config-reference:start -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- config-reference:end -->/ { skip = 0 }
  !skip { print }
' "$readme" >"$readme.tmp"
mv "$readme.tmp" "$readme"
