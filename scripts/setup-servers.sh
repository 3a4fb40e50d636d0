#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently:
#   - FerretDB 1.24.2 built from its Go module into a per-user cache (outside the clone);
#   - Mosquitto (and its clients) and tmux from Debian when missing;
#   - Prometheus from Debian when promtool is missing (its rules and metrics checks; the service
#     itself is not needed and is stopped).
# Prints the FerretDB binary's path on its last line.
set -euo pipefail

FERRETDB_VERSION=v1.24.2
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/autovolt"
FERRETDB_BIN="$CACHE_DIR/ferretdb-$FERRETDB_VERSION/ferretdb"

log() { echo "setup-servers: $*" >&2; }

# Mosquitto is the broker the tests run; tmux drives the dashboard's end-to-end test.
install_debian_packages() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto mosquitto-clients)
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! command -v promtool >/dev/null 2>&1; then
    log "installing prometheus (for promtool) from Debian"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    $sudo systemctl stop prometheus >/dev/null 2>&1 || true
    $sudo service prometheus stop >/dev/null 2>&1 || true
  fi
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]} from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  # The package starts a system-wide broker on 1883; tests run their own, so stop it if it came up.
  $sudo systemctl stop mosquitto >/dev/null 2>&1 || true
  $sudo service mosquitto stop >/dev/null 2>&1 || true
}

build_ferretdb() {
  if [ -x "$FERRETDB_BIN" ]; then
    return
  fi
  command -v go >/dev/null 2>&1 || { log "Go is needed to build FerretDB; install it first"; exit 1; }
  log "building FerretDB $FERRETDB_VERSION (first time only; takes a few minutes)"
  local dir work
  dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || { log "go mod download did not give a source directory"; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp -r "$dir" "$work/src"
  chmod -R u+w "$work/src"
  # The module lacks this generated file, without which the binary panics at start.
  mkdir -p "$work/src/build/version"
  echo "$FERRETDB_VERSION" > "$work/src/build/version/version.txt"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

install_debian_packages
build_ferretdb
echo "$FERRETDB_BIN"
