#!/usr/bin/env bash
# Starts Pacer on this machine: PostgreSQL and Redis on their default local ports (started or
# installed if they do not answer), then pacer-api and one pacer-worker in the background.
# Prints a working token and a curl line. Stop with scripts/down.sh.
#
# env: PACER_JWT_SECRET (default: dev-secret-change-me), PACER_BIND (127.0.0.1:8080),
#      WORKERS (1), and every setting of `pacer-api --help` / `pacer-worker --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

export PACER_JWT_SECRET=${PACER_JWT_SECRET:-dev-secret-change-me}
export PACER_BIND=${PACER_BIND:-127.0.0.1:8080}
WORKERS=${WORKERS:-1}
cargo build --bins --quiet
target=${CARGO_TARGET_DIR:-target}/debug
mkdir -p .run
scripts/down.sh >/dev/null 2>&1 || true

nohup "$target/pacer-api" >.run/api.log 2>&1 &
echo $! >.run/api.pid
for i in $(seq 1 "$WORKERS"); do
  nohup "$target/pacer-worker" >".run/worker-$i.log" 2>&1 &
  echo $! >".run/worker-$i.pid"
done

base="http://$PACER_BIND"
for _ in $(seq 1 150); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { echo "pacer-api did not become ready; see .run/api.log" >&2; tail -5 .run/api.log >&2; exit 1; }

# a demo organization with every feature, and a coach token for it
admin=$("$target/pacer-api" token --role admin --sub usr_admin --org org_demo)
curl -fsS -X PUT "$base/api/v1/admin/orgs/org_demo" -H "Authorization: Bearer $admin" \
  -d '{"name": "Demo Running Club", "features": ["coach_agent", "ai_training"]}' >/dev/null
token=$("$target/pacer-api" token --role coach --sub usr_demo_coach --org org_demo)

cat <<TXT
Pacer is running: API on $base ($WORKERS worker(s)); logs in .run/, stop with scripts/down.sh

export TOKEN=$token

curl -s -X POST $base/api/v1/jobs -H "Authorization: Bearer \$TOKEN" \\
  -d '{"kind": "generate_draft", "input": {"weeks": 8, "level": "beginner", "org_id": "org_demo", "additional_prompt": "5K race, 3 days per week"}}'
TXT
