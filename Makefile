# Custos: `make run` starts a demo server, `make test` runs every check that CI runs.
# Both install what is missing first (scripts/bootstrap.sh), then build with CMake + Ninja.
#
# Variables (override on the command line, e.g. `make run PORT=9000`):
#   BUILD_DIR, ASAN_DIR  build directories (build/, build-asan/)
#   JOBS                 parallel compile and test jobs (2)
#   DATA_DIR, PORT       data directory and port of `make run` (data-dev/, 8080)
#   DEMO_TENANTS         tenants of the incident demo that `make run` makes first (400)

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
DATA_DIR ?= data-dev
PORT ?= 8080
DEMO_TENANTS ?= 400

# One compiler cache for every build directory and every run, kept across runs. Paths are
# rewritten relative to the checkout, so a fresh clone elsewhere (as CI makes) hits the cache.
export CCACHE_DIR ?= $(HOME)/.cache/ccache
export CCACHE_MAXSIZE ?= 5G
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1
# Sanitizer runs stop at the first report and say where.
export ASAN_OPTIONS ?= abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

CUSTOS := $(BUILD_DIR)/src/cli/custos

# Steps run in the order written, even under `make -j`.
.NOTPARALLEL:
.PHONY: run test bootstrap configure build web web-test check-format format unit pg-unit e2e pg-e2e \
  asan clean help

help:
	@echo "make run          install what is missing, build, replay the incident demo, start custos serve --demo"
	@echo "make test         format check, build, console build and unit tests, ctest, ctest on"
	@echo "                  PostgreSQL, end-to-end tests (the console's in Chromium), end-to-end"
	@echo "                  tests on PostgreSQL, ASan+UBSan unit tests"
	@echo "make build        build $(BUILD_DIR)/ only"
	@echo "make web          build the web console (web/ -> web/dist/, which custos serve serves)"
	@echo "make web-test     the web console's unit tests (vitest)"
	@echo "make pg-unit      the ctest suites labelled postgres, on a throwaway PostgreSQL server"
	@echo "make pg-e2e       the end-to-end tests, on a throwaway PostgreSQL server"
	@echo "make unit | e2e | asan | check-format | format | clean"

# The first `make run` on a new or empty $(DATA_DIR) fills it with `custos demo` (the January
# 2022 incident replayed at $(DEMO_TENANTS) tenants, scoped and notified; about half a minute);
# later runs show that demo's summary again and serve the same data. A $(DATA_DIR) from before
# the demo is served as it is.
run: bootstrap build web
	@if [ -f $(DATA_DIR)/demo-summary.txt ]; then \
	  echo "==> $(DATA_DIR)/ holds the incident demo (rm -rf $(DATA_DIR) to replay it):"; \
	  cat $(DATA_DIR)/demo-summary.txt; \
	elif [ -f $(DATA_DIR)/demo.json ]; then \
	  echo "==> custos demo did not finish in $(DATA_DIR)/: replaying it again"; \
	  $(CUSTOS) demo --force --data-dir $(DATA_DIR) --tenants $(DEMO_TENANTS) \
	    --set server.port=$(PORT) || exit 1; \
	elif [ ! -d $(DATA_DIR) ] || [ -z "$$(ls -A $(DATA_DIR))" ]; then \
	  echo "==> custos demo: replaying the January 2022 incident into $(DATA_DIR)/"; \
	  $(CUSTOS) demo --data-dir $(DATA_DIR) --tenants $(DEMO_TENANTS) \
	    --set server.port=$(PORT) || exit 1; \
	else \
	  echo "==> $(DATA_DIR)/ holds data from before the incident demo: serving it as it is"; \
	fi
	@echo "==> starting custos serve --demo (data in $(DATA_DIR)/; open the URL below; Ctrl-C stops)"
	exec $(CUSTOS) serve --demo --data-dir $(DATA_DIR) --port $(PORT)

test: bootstrap check-format build web web-test unit pg-unit e2e pg-e2e asan
	@echo "==> all checks passed"

bootstrap:
	@bash scripts/bootstrap.sh

$(BUILD_DIR)/build.ninja:
	@echo "==> configuring $(BUILD_DIR)/ ($(BUILD_TYPE))"
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD_DIR)/build.ninja

build: configure
	@echo "==> building $(BUILD_DIR)/"
	ninja -C $(BUILD_DIR) -j$(JOBS)

# The console (web/, TypeScript + Vite) builds to web/dist/, which `custos serve` serves at
# /console/ (console.dir; the binary's default is this checkout's web/dist). Its npm packages come
# from web/package-lock.json through scripts/bootstrap.sh.
web:
	@test -d web/node_modules || { echo "error: web/node_modules is missing (run: make bootstrap)" >&2; exit 1; }
	@echo "==> building the web console (web/ -> web/dist/)"
	npm --prefix web run build

web-test:
	@test -d web/node_modules || { echo "error: web/node_modules is missing (run: make bootstrap)" >&2; exit 1; }
	@echo "==> web console unit tests (vitest, web/)"
	npm --prefix web test

check-format:
	@echo "==> checking C++ formatting (clang-format)"
	@bash scripts/check-format.sh

format:
	@bash scripts/check-format.sh --fix

unit: build
	@echo "==> unit and integration tests (ctest, $(BUILD_DIR)/)"
	ctest --test-dir $(BUILD_DIR) --output-on-failure --no-tests=error -LE postgres -j$(JOBS)

# A throwaway PostgreSQL server (scripts/with-postgres.sh, docs/testing-postgres.md) for the
# tests labelled postgres; they read its admin URL from CUSTOS_TEST_POSTGRES and make their own
# databases. Elsewhere (unit, asan) they are skipped.
pg-unit: build
	@echo "==> tests on PostgreSQL (ctest -L postgres, $(BUILD_DIR)/)"
	bash scripts/with-postgres.sh ctest --test-dir $(BUILD_DIR) -L postgres --output-on-failure \
	  --no-tests=error -j$(JOBS)

e2e: build web
	@echo "==> end-to-end tests (node --test tests/e2e/)"
	CUSTOS_BIN=$(abspath $(CUSTOS)) bash scripts/run-e2e.sh

# The same tests with every data directory's store in a database of its own on a throwaway
# PostgreSQL server (tests/e2e/lib/server.mjs, docs/testing-postgres.md).
pg-e2e: build web
	@echo "==> end-to-end tests on PostgreSQL (node --test tests/e2e/)"
	bash scripts/with-postgres.sh env CUSTOS_BIN=$(abspath $(CUSTOS)) bash scripts/run-e2e.sh

$(ASAN_DIR)/build.ninja:
	@echo "==> configuring $(ASAN_DIR)/ (AddressSanitizer + UndefinedBehaviorSanitizer)"
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCUSTOS_SANITIZE=ON \
	  -DCUSTOS_BUILD_BENCH=OFF

asan: $(ASAN_DIR)/build.ninja
	@echo "==> building $(ASAN_DIR)/ (ASan+UBSan)"
	ninja -C $(ASAN_DIR) -j$(JOBS)
	@echo "==> unit and integration tests under ASan+UBSan (ctest, $(ASAN_DIR)/)"
	ctest --test-dir $(ASAN_DIR) --output-on-failure --no-tests=error -LE postgres -j$(JOBS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
