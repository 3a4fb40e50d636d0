#!/usr/bin/env bash
# Installs what the tests need (FerretDB 1.24.2, Mosquitto) and runs the whole suite against private
# servers the harness starts on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
FERRETDB_BIN=$(bash scripts/setup-servers.sh | tail -n 1)
export AUTOVOLT_FERRETDB_BIN="$FERRETDB_BIN"
# Benchmarks are not run here (they take minutes); `cargo bench --bench NAME` runs one.
cargo test "$@"
