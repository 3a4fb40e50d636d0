#!/usr/bin/env bash
# Installs what the demo needs and runs `autovolt demo` on local defaults with a simulated campus.
set -euo pipefail
cd "$(dirname "$0")/.."
FERRETDB_BIN=$(bash scripts/setup-servers.sh | tail -n 1)
export AUTOVOLT_FERRETDB_BIN="$FERRETDB_BIN"
cargo run --release -- demo "$@"
