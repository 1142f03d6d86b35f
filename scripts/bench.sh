#!/usr/bin/env bash
# The benchmark suite (issue 5, BENCHMARKS.md): builds the release binaries, then runs every
# scenario against fresh state (its own database and Redis key prefix) plus the BullMQ peer
# harness (../shared/peer-bench, REPS=1, reduced set) and prints the table. Under 15 minutes on
# a 2-core machine once built. Results: bench-results/<timestamp>.{json,md}.
#   scripts/bench.sh                 # full suite with peers
#   scripts/bench.sh --only 1,2      # some items (add --peers for the peer harness)
#   scripts/bench.sh --smoke         # seconds; what CI runs (with debug binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pacer/target}
scripts/services.sh
# 10,000 SSE clients need ~10,000 descriptors in this process and in pacer-api
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "${1:-}" = "--smoke" ]; then
  cargo build --bins --locked
  exec "$CARGO_TARGET_DIR/debug/pacer-bench" "$@"
fi
cargo build --release --bins --locked
if [ $# -eq 0 ]; then set -- --peers; fi
exec "$CARGO_TARGET_DIR/release/pacer-bench" "$@"
