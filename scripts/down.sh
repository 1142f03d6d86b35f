#!/usr/bin/env bash
# Stops what scripts/up.sh started (SIGTERM: workers finish or hand back their jobs).
cd "$(dirname "$0")/.." || exit 1
for f in .run/*.pid; do
  [ -f "$f" ] || continue
  kill "$(cat "$f")" 2>/dev/null && echo "stopped $(basename "$f" .pid)"
  rm -f "$f"
done
