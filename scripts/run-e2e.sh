#!/usr/bin/env bash
# Runs the end-to-end tests (tests/e2e/*.test.mjs) against a built custos binary:
#   scripts/run-e2e.sh [extra node --test arguments]
# CUSTOS_BIN names the binary (default build/src/cli/custos). One test file at a time: each
# starts its own servers, and the timing checks want a quiet machine. The console's test needs
# the built console (web/dist, `make web`) and Debian's chromium (CHROMIUM overrides its path;
# docs/testing-console.md).
# With CUSTOS_TEST_POSTGRES set to a PostgreSQL server's admin URL (scripts/with-postgres.sh sets
# it), every data directory gets a database of its own there instead of a SQLite file
# (tests/e2e/lib/server.mjs).
set -euo pipefail

cd "$(dirname "$0")/.."

export CUSTOS_BIN=${CUSTOS_BIN:-$PWD/build/src/cli/custos}
if [[ ! -x $CUSTOS_BIN ]]; then
  echo "error: no custos binary at $CUSTOS_BIN (run: make build)" >&2
  exit 1
fi
if [[ ! -d node_modules ]]; then
  echo "error: node_modules is missing (run: scripts/bootstrap.sh)" >&2
  exit 1
fi
# tests/e2e/console.test.mjs drives Debian's chromium against the built console.
if [[ ! -f web/dist/index.html ]]; then
  echo "error: the web console is not built: web/dist/index.html is missing (run: make web)" >&2
  exit 1
fi
if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
  echo "error: no browser at ${CHROMIUM:-/usr/bin/chromium} (run: scripts/bootstrap.sh)" >&2
  exit 1
fi

if [[ -n ${CUSTOS_TEST_POSTGRES:-} ]]; then
  if ! command -v psql >/dev/null; then
    echo "error: CUSTOS_TEST_POSTGRES is set but psql is missing (run: scripts/bootstrap.sh)" >&2
    exit 1
  fi
  echo "==> end-to-end tests on PostgreSQL ($CUSTOS_TEST_POSTGRES), a database per data directory" >&2
else
  echo "==> end-to-end tests on SQLite" >&2
fi

flags=()
node_help=$(node --help)
[[ $node_help == *--test-concurrency* ]] && flags+=(--test-concurrency=1)
[[ $node_help == *--test-timeout* ]] && flags+=(--test-timeout=600000)

exec node --test "${flags[@]}" "$@" tests/e2e/
