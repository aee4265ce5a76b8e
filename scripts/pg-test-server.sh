#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL server for the tests:
#   scripts/pg-test-server.sh start DIR   prints (and writes to DIR/url) its admin URL,
#                                         postgresql://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-test-server.sh stop DIR    stops it and removes DIR; fine if already stopped
# Uses the newest Debian server binaries (/usr/lib/postgresql/*/bin). The server listens on
# 127.0.0.1 only, on a free port, with its unix socket in DIR/sock, trusts every local
# connection and keeps nothing it is not asked to: it is for tests, never for data.
# initdb and postgres refuse to run as root; as root they run as the `postgres` user.
set -euo pipefail

readonly kMarker=.custos-pg-test-server
readonly kStartTimeout=60
readonly kStopTimeout=30
readonly kPortAttempts=20

die() {
  echo "pg-test-server: error: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}

find_bindir() {
  local best='' version dir
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] || continue
    version=${dir#/usr/lib/postgresql/}
    version=${version%/bin}
    [[ $version =~ ^[0-9]+$ ]] || continue
    if [[ -z $best ]] || ((version > ${best#*:})); then
      best="$dir:$version"
    fi
  done
  [[ -n $best ]] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin" \
    "(install Debian's postgresql package: scripts/bootstrap.sh)"
  echo "${best%:*}"
}

# Runs a server program as the user that owns the cluster: `postgres` when we are root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A port that nothing listens on now, outside the kernel's range for outgoing connections.
# Two runs may still draw the same one; start_server sees the bind fail and draws again.
pick_port() {
  local low=32768 high=60999 port tries
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  local first=15000 last=$((low - 1))
  if ((last - first < 1000)); then
    first=$((high + 1))
    last=65535
  fi
  for ((tries = 0; tries < 1000; tries++)); do
    port=$((first + (RANDOM * 32768 + RANDOM) % (last - first + 1)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "found no free port in $first-$last on 127.0.0.1"
}

start_server() {
  local dir=$1
  local bindir
  bindir=$(find_bindir)

  if [[ -e $dir && -n $(ls -A "$dir") ]]; then
    die "$dir is not empty (stop a server there first: $0 stop $dir)"
  fi
  mkdir -p "$dir"
  touch "$dir/$kMarker"
  # A unix socket path holds at most 107 bytes: DIR/sock/.s.PGSQL.NNNNN must fit.
  ((${#dir} + 20 <= 107)) || die "$dir is too long for a unix socket path; use a shorter one"
  mkdir -p "$dir/sock"

  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 ||
      die "no postgres user (install Debian's postgresql package: scripts/bootstrap.sh)"
    chown -R postgres: "$dir"
    runuser -u postgres -- test -w "$dir" ||
      die "the postgres user cannot write to $dir; use a directory under /tmp"
  fi
  # The server programs run from a directory every user can enter (not root's home).
  cd /

  if ! as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres --locale=C -E UTF8 \
    --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed in $dir/data"
  fi
  # A test server: speed over durability. A crash loses the data, which no test keeps anyway.
  cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/pg-test-server.sh: a throwaway server for the tests.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

  local attempt port log="$dir/postgres.log"
  for ((attempt = 1; attempt <= kPortAttempts; attempt++)); do
    port=$(pick_port)
    : >"$log"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$log"
    if as_owner "$bindir/pg_ctl" start -D "$dir/data" -l "$log" -o "-p $port" -w \
      -t "$kStartTimeout" -s >/dev/null 2>"$dir/pg_ctl.log" &&
      "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres -U postgres; then
      local url="postgresql://postgres@127.0.0.1:$port/postgres"
      echo "$port" >"$dir/port"
      echo "$url" >"$dir/url"
      echo "$url"
      return
    fi
    stop_postmaster "$dir" >/dev/null 2>&1 || true
    grep -q 'Address already in use' "$log" || break
    echo "pg-test-server: port $port was taken meanwhile; trying another" >&2
  done
  echo "pg-test-server: PostgreSQL did not start; pg_ctl said:" >&2
  cat "$dir/pg_ctl.log" >&2
  echo "pg-test-server: server log ($log):" >&2
  cat "$log" >&2
  stop_postmaster "$dir" >/dev/null 2>&1 || true
  die "PostgreSQL did not start in $dir (waited at most ${kStartTimeout}s)"
}

# Stops the server whose data directory is DIR/data, if one runs; fails if it will not stop.
stop_postmaster() {
  local dir=$1
  [[ -f $dir/data/postmaster.pid ]] || return 0
  local bindir
  bindir=$(find_bindir)
  cd /
  as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m fast -w -t "$kStopTimeout" -s && return 0
  # pg_ctl status exits 3 when no server runs (a stale pid file after a crash).
  local status=0
  as_owner "$bindir/pg_ctl" status -D "$dir/data" >/dev/null 2>&1 || status=$?
  ((status != 3)) || return 0
  as_owner "$bindir/pg_ctl" stop -D "$dir/data" -m immediate -w -t "$kStopTimeout" -s
}

stop_server() {
  local dir=$1
  [[ -e $dir ]] || return 0
  # Only ever remove a directory this script made.
  [[ -f $dir/$kMarker ]] || die "$dir was not made by $0; not removing it"
  stop_postmaster "$dir" || die "the server in $dir does not stop; see $dir/postgres.log"
  rm -rf "$dir"
}

[[ $# -eq 2 && -n $2 ]] || usage
# Absolute, since the server programs run from /.
dir=$(realpath -m -- "$2")
case $1 in
  start) start_server "$dir" ;;
  stop) stop_server "$dir" ;;
  *) usage ;;
esac
