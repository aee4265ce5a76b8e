#!/usr/bin/env bash
# Runs the end-to-end tests (tests/e2e/*.test.mjs) against a built custos binary:
#   scripts/run-e2e.sh [extra node --test arguments]
# CUSTOS_BIN names the binary (default build/src/cli/custos). One test file at a time: each
# starts its own servers, and the timing checks want a quiet machine.
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

flags=()
node_help=$(node --help)
[[ $node_help == *--test-concurrency* ]] && flags+=(--test-concurrency=1)
[[ $node_help == *--test-timeout* ]] && flags+=(--test-timeout=600000)

exec node --test "${flags[@]}" "$@" tests/e2e/
