#!/usr/bin/env bash
# Installs what building and testing Custos needs on Debian 12, and nothing more:
#   - the Debian packages below, with one `apt-get update` and one `apt-get install -y`, only
#     when `dpkg -s` reports one of them missing (so a second run costs a second); `postgresql`
#     brings the server and the `postgres` user that scripts/pg-test-server.sh runs it as;
#   - Debian's `chromium`, the browser that the console's end-to-end test drives with
#     playwright-core (tests/e2e/console.test.mjs); no test tool ever downloads a browser of its own;
#   - the npm packages of the end-to-end tests (repository root) and of the web console (web/)
#     with `npm ci` from their committed lock files, each only when its node_modules was not
#     installed from that very lock file.
# Runs as root (or with sudo), needs no input, and is safe to run any number of times.
set -euo pipefail

cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost-dev libssl-dev libsodium-dev libsqlite3-dev libpq-dev nlohmann-json3-dev libabsl-dev
  libspdlog-dev libcli11-dev libtomlplusplus-dev libqrencode-dev libcurl4-openssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format wrk sqlite3
  postgresql
  chromium fonts-dejavu-core
)
# Node.js may come from elsewhere (a newer release than Debian's); only bring Debian's when
# there is none, so that an existing one is never replaced by an older one.
if ! command -v node >/dev/null 2>&1; then
  DEBIAN_PACKAGES+=(nodejs npm)
fi

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: installing packages needs root (or sudo): $*" >&2
    exit 1
  fi
}

install_debian_packages() {
  if dpkg -s "${DEBIAN_PACKAGES[@]}" >/dev/null 2>&1; then
    echo "==> Debian packages: all ${#DEBIAN_PACKAGES[@]} present"
    return
  fi
  local missing=()
  local pkg
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update
  as_root apt-get install -y --no-install-recommends "${missing[@]}"
}

# `npm ci` in DIR (the repository root or web/), unless DIR/node_modules came from DIR's lock file.
install_npm_packages() {
  local dir=$1
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: node is installed but npm is not; install npm for this Node.js" >&2
    exit 1
  fi
  # npm ci wipes and reinstalls node_modules; skip it while node_modules came from this lock.
  local stamp=$dir/node_modules/.custos-lock-sha256
  local want
  want=$(sha256sum "$dir/package.json" "$dir/package-lock.json" | sed 's| .*||' | sha256sum |
    cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "==> npm packages ($dir): node_modules matches package-lock.json"
    return
  fi
  echo "==> installing npm packages in $dir (npm ci, node $(node --version), npm $(npm --version))"
  (cd "$dir" && npm ci --no-audit --no-fund)
  echo "$want" >"$stamp"
}

install_debian_packages
install_npm_packages .
if [[ -f web/package-lock.json ]]; then
  install_npm_packages web
fi
