# flowd -- `make run` and `make test` do all set-up on a fresh Debian 12 machine.
# Objects go to build/ (release) and build/asan/ (unit tests, fuzz replay).

CC       ?= gcc
BUILD    := build
PKGS     := libpq jansson yaml-0.1 rdkafka libcurl lua5.4 libcrypto
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcivetweb -lpthread -lm

# Messages live in fixed buffers (fl_err.msg) and are cut on purpose, so gcc's
# "may be truncated" analysis (which varies with -O level) is off.
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
            -Wmissing-prototypes -Wvla -Wno-format-truncation -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -I. -I$(BUILD)/gen $(PKG_CFLAGS) -MMD -MP
ASAN     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(wildcard core/*.c api/*.c engine/*.c engine/*/*.c consumers/*.c)
GEN_SRC  := $(BUILD)/gen/migrations.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations.o
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o) $(BUILD)/asan/gen/migrations.o
MIGRATIONS := $(sort $(wildcard schemas/sql/[0-9][0-9][0-9]_*.sql))
# The OpenAPI document is compiled in too (api/docs.h): /openapi.json and /docs serve it.
LIB_OBJ  += $(BUILD)/obj/gen/openapi.o
ASAN_OBJ += $(BUILD)/asan/gen/openapi.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/asan/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
# Small drivers of core/ and engine/ modules that the system tests run against the real
# Kafka, PostgreSQL and a local HTTP server: tests/system/<name>.c -> build/tests/<name>.
PROBES   := $(patsubst tests/system/%.c,$(BUILD)/tests/%,$(wildcard tests/system/*_probe.c))
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/asan/fuzz/%-replay)

.PHONY: all build deps run stop stack-start stack-stop stack-status test unit fuzz-replay \
        fuzz system lint format docs clean

all: build
build: $(BUILD)/flowd

# ---- set-up ---------------------------------------------------------------------------
deps:
	@deploy/deps.sh

# ---- the binary -----------------------------------------------------------------------
CMD_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/*.c))

# --whole-archive: every module is in the binary, so a symbol defined twice is a link
# error instead of the archive silently picking whichever member it met first.
$(BUILD)/flowd: $(CMD_OBJ) $(BUILD)/libflowd.a
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $(CMD_OBJ) -Wl,--whole-archive $(BUILD)/libflowd.a \
		-Wl,--no-whole-archive $(PKG_LIBS)

$(BUILD)/libflowd.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/asan/libflowd.a: $(ASAN_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) $(ASAN) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) $(ASAN) -c -o $@ $<

# The migrations are compiled into the binary, so `flowd serve` knows the schema
# version it needs without reading files at run time.
$(GEN_SRC): $(MIGRATIONS) deploy/embed-migrations.sh
	@mkdir -p $(@D)
	deploy/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/openapi.c: api/openapi.yaml deploy/embed-openapi.sh
	@mkdir -p $(@D)
	deploy/embed-openapi.sh api/openapi.yaml > $@.tmp && mv $@.tmp $@

# ---- the local stack ------------------------------------------------------------------
run: deps build
	@deploy/local/run.sh

stop:
	@deploy/local/stack.sh stop

stack-start: deps build
	@deploy/local/stack.sh start
stack-stop:
	@deploy/local/stack.sh stop
stack-status:
	@deploy/local/stack.sh status

# ---- tests ----------------------------------------------------------------------------
test: deps build $(PROBES)
	@tests/run-all.sh

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/libflowd.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) $(ASAN) -o $@ $< $(BUILD)/asan/libflowd.a $(PKG_LIBS) -lcmocka

fuzz-replay: $(FUZZ_REPLAY)
	@tests/fuzz/replay-all.sh $(FUZZ_REPLAY)

$(BUILD)/asan/fuzz/%-replay: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/asan/libflowd.a
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(ALL_CFLAGS) $(ASAN) -o $@ $< tests/fuzz/replay.c $(BUILD)/asan/libflowd.a $(PKG_LIBS)

# A coverage-guided campaign (clang's libFuzzer): make fuzz FUZZ_SECONDS=300
FUZZ_SECONDS ?= 60
fuzz:
	@tests/fuzz/campaign.sh $(FUZZ_SECONDS) $(FUZZ_SRC)

system: deps build $(PROBES)
	@tests/system/run.sh

$(BUILD)/tests/%: tests/system/%.c $(BUILD)/libflowd.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libflowd.a $(PKG_LIBS)

# ---- benchmarks (issue 8; docs/benchmarks.md) -- never part of `make test` -------------
# bench / bench-quick: the harness (tests/bench/run.sh) on its own stack under var/bench:
# S1 ingest vs a trivial civetweb handler, S2 engine vs pgbench running the engine's own
# SQL, S3 end-to-end latency, S4 LLM fan-out against a fake provider, S5 recovery, S6
# pure step, instructions per event (callgrind); results in tests/bench/results/ and the
# table in docs/benchmarks.md. At most 30 / about 3.5 minutes.
# baseline_http, loadgen and fake_provider (S4) use no flowd code: the same compiler
# options, civetweb (and jansson) only.
BENCH_TOOLS := $(BUILD)/bench/baseline_http $(BUILD)/bench/loadgen $(BUILD)/bench/fake_provider
BENCH_BIN := $(BUILD)/bench/bench_step $(BUILD)/bench/pgbench_script $(BENCH_TOOLS)

.PHONY: bench bench-quick bench-step
bench: deps build $(BENCH_BIN)
	@tests/bench/run.sh full

bench-quick: deps build $(BENCH_BIN)
	@tests/bench/run.sh quick

# The pure step function's speed (issue 3): steps/s without and with a Lua guard.
bench-step: $(BUILD)/bench/bench_step
	@$<

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libflowd.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -O2 -o $@ $< $(BUILD)/libflowd.a $(PKG_LIBS)

$(BENCH_TOOLS): $(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(PKG_LIBS)

# tests/system/test_bench_harness.py runs the harness once at a tiny size
test system: $(BENCH_BIN)

-include $(BENCH_BIN:=.d)

# ---- hygiene --------------------------------------------------------------------------
lint: deps
	@tests/lint.sh

format: deps
	.venv/bin/clang-format -i $(shell git ls-files '*.c' '*.h')

# README's configuration reference is generated from the config table.
docs: $(BUILD)/flowd
	@deploy/gen-readme-config.sh $(BUILD)/flowd README.md

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(PROBES:=.d)
