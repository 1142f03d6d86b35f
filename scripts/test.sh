#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis (started if needed) and the real
# pacer-api / pacer-worker binaries. Usage: scripts/test.sh [extra nextest/cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

# leftovers of interrupted runs
psql -h 127.0.0.1 -U postgres -Atc "select datname from pg_database where datname like 'pacer_test_%'" 2>/dev/null \
  | while read -r db; do dropdb --if-exists --force -h 127.0.0.1 -U postgres "$db" || true; done

cargo build --workspace --bins --tests --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
