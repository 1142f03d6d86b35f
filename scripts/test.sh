#!/usr/bin/env bash
# Runs the whole test suite against real PostgreSQL and Redis (started if needed) and the real
# pacer-api / pacer-worker binaries. Usage: scripts/test.sh [extra nextest/cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

# leftovers of interrupted runs
psql -h 127.0.0.1 -U postgres -Atc "select datname from pg_database where datname like 'pacer_test_%'" 2>/dev/null \
  | while read -r db; do dropdb --if-exists --force -h 127.0.0.1 -U postgres "$db" || true; done

# a real OpenAI-compatible server (llama.cpp + SmolLM2-135M from PyPI) for the openai provider's
# end-to-end test, unless one is given in PACER_TEST_OPENAI_BASE_URL
peer_script=../shared/tools/llm-peer.sh
peer_dir=${PACER_CACHE:-$HOME/.cache/pacer}/llm-peer
if [ -z "${PACER_TEST_OPENAI_BASE_URL:-}" ] && [ -f "$peer_script" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  bash "$peer_script" --stop "$peer_dir" >/dev/null 2>&1 || true
  if LLM_PEER_THREADS=1 bash "$peer_script" "$peer_dir" "$port" >/dev/null; then
    export PACER_TEST_OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
    trap 'bash "$peer_script" --stop "$peer_dir" >/dev/null 2>&1 || true' EXIT
  elif [ "${CI:-}" = "true" ]; then
    echo "test: could not start the local model server (llm-peer.sh)" >&2
    exit 1
  else
    echo "test: no local model server; the real-model test will be skipped" >&2
  fi
fi

cargo build --workspace --bins --tests --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
