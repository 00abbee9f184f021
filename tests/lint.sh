#!/usr/bin/env bash
# make lint: clang-format check, cppcheck, shellcheck, and the banned-call greps
# (STYLE.md R5, R6, R7, R11.3). Run after `make deps` (the pinned clang-format is in .venv).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
status=0
# tracked files and new ones not yet added (but not ignored ones such as build/)
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.c' '*.h' | sort -u)

if ! .venv/bin/clang-format --dry-run -Werror "${files[@]}"; then
  echo "lint: clang-format would change the files above (run: make format)" >&2
  status=1
fi

if ! cppcheck -q --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
  --inline-suppr --suppress=missingIncludeSystem -I. "${files[@]}"; then
  echo "lint: cppcheck found problems" >&2
  status=1
fi

mapfile -t scripts < <(git ls-files --cached --others --exclude-standard '*.sh' .ci/run | sort -u)
if ! shellcheck -x "${scripts[@]}"; then
  echo "lint: shellcheck found problems" >&2
  status=1
fi

# ban PATTERN ALLOWED_FILES_REGEX WHY
ban() {
  local hits
  hits=$(grep -nE "$1" "${files[@]}" | grep -vE "^($2):" || true)
  if [ -n "$hits" ]; then
    printf '%s\n' "$hits" >&2
    echo "lint: $3" >&2
    status=1
  fi
}
ban '\bsprintf\(' '' 'sprintf( is banned: use snprintf or fl_buf_appendf'
ban '\bstrcpy\(' '' 'strcpy( is banned: use snprintf or memcpy with a known length'
ban '\batoi\(' '' 'atoi( is banned: it cannot report errors; use strtol and check'
ban '\bgetenv\(' 'core/config.c' 'getenv( is allowed only in core/config.c (R7.3)'
ban '\b(printf|fprintf|vprintf|vfprintf|puts|fputs)\(' 'core/log.c|cmd/.*|tests/.*' \
  'printing is allowed only in logging and the CLI output code (R6.2)'
ban '\b(malloc|calloc|realloc|strdup|strndup)\(' 'core/mem.c|tests/.*' \
  'raw allocation is banned outside core/mem.c: use fl_xmalloc and friends (R5.1)'
exit $status
