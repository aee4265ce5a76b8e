#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server (scripts/pg-test-server.sh):
#   scripts/with-postgres.sh CMD [ARGS...]
# CMD sees the server's admin URL in CUSTOS_TEST_POSTGRES
# (postgresql://postgres@127.0.0.1:PORT/postgres). The server is stopped and its directory
# removed however CMD ends, also on Ctrl-C, SIGTERM or SIGHUP; the exit status is CMD's. With KEEP_PG=1
# the server is left running and its directory and URL are printed.
set -uo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

server=$(cd "$(dirname "$0")" && pwd)/pg-test-server.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/custos-pg.XXXXXX") || exit 1
child=

# shellcheck disable=SC2317  # run from a trap
cleanup() {
  if [[ ${KEEP_PG:-0} == 1 ]]; then
    echo "==> KEEP_PG=1: PostgreSQL keeps running in $dir" \
      "(${CUSTOS_TEST_POSTGRES:-not started}); stop it with: $server stop $dir" >&2
  else
    bash "$server" stop "$dir" || echo "with-postgres: could not stop the server in $dir" >&2
  fi
}

# Passes a signal on to CMD and everything it started, waits for CMD to end, then exits (the
# EXIT trap cleans up). A second signal meanwhile kills them outright.
# shellcheck disable=SC2317  # run from a trap
on_signal() {
  local signal=$1 code=$2
  if [[ -n $child ]]; then
    trap 'kill -KILL -- "-$child" 2>/dev/null' INT TERM HUP
    kill "-$signal" -- "-$child" 2>/dev/null || kill "-$signal" "$child" 2>/dev/null
    while kill -0 "$child" 2>/dev/null; do
      wait "$child"
    done
  fi
  exit "$code"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

CUSTOS_TEST_POSTGRES=$(bash "$server" start "$dir") || exit 1
export CUSTOS_TEST_POSTGRES
echo "==> PostgreSQL for the tests at $CUSTOS_TEST_POSTGRES ($dir)" >&2

# CMD runs in the background, so that this script handles a signal at once (bash runs a trap
# only after a foreground command ends), and in a process group of its own (setsid), so that
# on_signal reaches everything CMD started. A background command would ignore SIGINT and read
# /dev/null: env restores the default SIGINT/SIGQUIT handling, <&0 keeps our stdin.
env --default-signal=INT,QUIT setsid -- "$@" <&0 &
child=$!
wait "$child"
status=$?
child=
exit "$status"
