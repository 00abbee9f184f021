#!/usr/bin/env bash
# A coverage-guided libFuzzer campaign: tests/fuzz/campaign.sh SECONDS fuzz_x.c ...
# Needs clang (installed here on demand); new interesting inputs land in var/fuzz/<target>,
# crashes in var/fuzz/crashes. Copy a crash into tests/fuzz/corpus/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=$1
shift
if ! command -v clang >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    sudo apt-get install -y -q clang >/dev/null
  else
    apt-get install -y -q clang >/dev/null
  fi
fi
make --no-print-directory build/gen/migrations.c build/gen/openapi.c
pkgs=(libpq jansson yaml-0.1 rdkafka libcurl lua5.4 libcrypto)
read -ra cflags <<<"$(pkg-config --cflags "${pkgs[@]}")"
read -ra libs <<<"$(pkg-config --libs "${pkgs[@]}")"
shopt -s nullglob
lib_src=(core/*.c api/*.c engine/*.c engine/*/*.c consumers/*.c)
mkdir -p var/fuzz/crashes build/fuzz
for src in "$@"; do
  target=$(basename "$src" .c)
  corpus=tests/fuzz/corpus/${target#fuzz_}
  clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. -Ibuild/gen \
    "${cflags[@]}" -o "build/fuzz/$target" "$src" "${lib_src[@]}" build/gen/migrations.c build/gen/openapi.c \
    "${libs[@]}" -lcivetweb -lpthread -lm
  mkdir -p "var/fuzz/$target"
  "build/fuzz/$target" -max_total_time="$seconds" -artifact_prefix=var/fuzz/crashes/ \
    "var/fuzz/$target" "$corpus"
done
