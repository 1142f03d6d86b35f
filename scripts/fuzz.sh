#!/usr/bin/env bash
# Validates the OpenAPI document (GET /api-docs/openapi.json) as OpenAPI 3.1, then fuzzes the HTTP
# API with schemathesis against it: a pacer-api and a pacer-worker on a free port, with their own
# database (pacer_fuzz, recreated) and Redis prefix, an admin token, and fixtures that make the
# routes reachable (org_demo with coach_agent + ai_training, a library workout, a routine run, an
# athlete with activities, health metrics, a goal and a plan for the analytics routes).
#
# Checks: not_a_server_error, status_code_conformance, content_type_conformance,
# response_schema_conformance, over every documented operation, positive and negative data.
# The SSE routes are included: a stream stays open while its job runs, so the worker runs the
# rules provider with no step delay (jobs finish in milliseconds) and every stream ends with
# `done`; their event payloads are not schema-checked (text/event-stream is not JSON) and are
# covered by the end-to-end tests. Exits non-zero on any failure.
#
# env: FUZZ_MAX_EXAMPLES (20), FUZZ_WORKERS (2), FUZZ_SEED (fixed, for repeatable runs),
#      PACER_CACHE (~/.cache/pacer; the schemathesis venv lives there), SCHEMATHESIS_VERSION.
#      Extra arguments are passed to `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh

cache=${PACER_CACHE:-$HOME/.cache/pacer}
venv="$cache/schemathesis"
version=${SCHEMATHESIS_VERSION:-4.32.5}
validator=0.9.0
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version" \
  || ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -q "^Version: $validator"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" "openapi-spec-validator==$validator"
fi

export PACER_JWT_SECRET=fuzz-secret
cargo build --quiet --locked -p pacer-api -p pacer-worker
target=${CARGO_TARGET_DIR:-target}/debug

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
run=".run/fuzz"
mkdir -p "$run"
psql -h 127.0.0.1 -U postgres -qc "drop database if exists pacer_fuzz with (force)" >/dev/null
psql -h 127.0.0.1 -U postgres -qc "create database pacer_fuzz" >/dev/null
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/pacer_fuzz
export PACER_REDIS_PREFIX="pacer_fuzz_$$"
export PACER_BIND="127.0.0.1:$port"
export PACER_SYNC_TIMEOUT_SECS=${PACER_SYNC_TIMEOUT_SECS:-10}
export PACER_WORKER_METRICS_BIND=127.0.0.1:0
export PACER_RULES_STEP_DELAY_MS=0

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  redis-cli --scan --pattern "$PACER_REDIS_PREFIX*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$target/pacer-api" >"$run/api.log" 2>&1 &
pids+=($!)
"$target/pacer-worker" >"$run/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { echo "fuzz: pacer-api did not become ready; see $run/api.log" >&2; exit 1; }

admin=$("$target/pacer-api" token --role admin --sub usr_fuzz_admin --org org_demo --ttl-secs 7200)
api() { # method path [body]
  curl -fsS -X "$1" "$base$2" -H "Authorization: Bearer $admin" -H 'content-type: application/json' ${3:+-d "$3"}
}
# fixtures: the demo organization with both features, a library workout, a plan with a run, a
# client template and a job; the operations that name them get their ids (schemathesis.toml)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
api PUT /api/v1/admin/orgs/org_demo '{"name": "Demo Running Club", "features": ["coach_agent", "ai_training"]}' >/dev/null
api PUT /api/v1/admin/users/usr_fuzz_admin '{"org_id": "org_demo", "role": "admin", "timezone": "Europe/London"}' >/dev/null
workout=$(api POST /api/v1/ai-coach/workouts '{"workout_name": "Easy 30", "workout_sub_type": "easy", "target_duration_in_seconds": 1800}' | json '["data"]["id"]')
api POST /api/ai-training/my-plan/generate '{"goal": "balance", "frequency": 3, "equipmentAvailability": ["chair"]}' >/dev/null
instance=$(api GET /api/ai-training/my-routine-queue | json '["routineInstances"][0]["routineInstanceId"]')
deferrable=$(api GET /api/ai-training/my-routine-queue | json '["routineInstances"][-1]["routineInstanceId"]')
run_id=$(api POST /api/ai-training/routine-runs "{\"routineInstanceId\": \"$instance\", \"startedFrom\": \"fuzz\"}" | json '["routineRun"]["routineRunId"]')
template=$(api POST /api/b2b/ai-training/routine-templates '{"name": "Fuzz Balance", "goal": "balance", "intensity": "low", "durationMinutes": 10, "exerciseSteps": [{"exerciseId": "march-basic", "durationSeconds": 60}]}' | json '["routineTemplate"]["routineTemplateId"]')
# analytics: an athlete of org_demo with a few runs, health metrics, a race goal and a plan
api PUT /api/v1/admin/users/usr_fuzz_athlete '{"org_id": "org_demo", "role": "athlete", "display_name": "Fuzz Athlete", "timezone": "Europe/London"}' >/dev/null
activities=$(python3 -c '
import json, datetime
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
print(json.dumps({"athlete_id": "usr_fuzz_athlete", "activities": [
    {"external_id": f"fuzz-{i}", "sport_type": "Run", "distance": 5000 + 1000 * i, "moving_time": 1500 + 300 * i,
     "average_heartrate": 140 + i, "start_date": (now - datetime.timedelta(days=2 * i + 1)).isoformat().replace("+00:00", "Z")}
    for i in range(5)]}))')
api POST /api/v1/activities "$activities" >/dev/null
api POST /api/v1/health_metrics "{\"athlete_id\": \"usr_fuzz_athlete\", \"health_metrics\": [{\"date\": \"$(date -u +%F)\", \"resting_hr\": 50, \"hrv_rmssd\": 60, \"vo2_max\": 50, \"recovery_score\": 70}]}" >/dev/null
goal=$(api POST /api/v1/athletes/usr_fuzz_athlete/goals "{\"race_name\": \"Fuzz 10K\", \"race_date\": \"$(date -u -d '+60 days' +%F)\", \"goal_time\": \"45:00\"}" | json '["data"]["goal_id"]')
plan=$(api POST /api/v1/athletes/usr_fuzz_athlete/plans "{\"name\": \"Fuzz Plan\", \"status\": \"active\", \"start_date\": \"$(date -u +%F)\", \"total_weeks\": 8}" | json '["data"]["plan_instance_id"]')
job=$(api POST /api/v1/jobs '{"kind": "generate_draft", "input": {"weeks": 2, "level": "beginner", "org_id": "org_demo"}}' | json '["data"]["job_id"]')
cat >"$run/schemathesis.toml" <<TOML
# written by scripts/fuzz.sh: fixture ids for the operations that need existing records
[[operations]]
include-path-regex = "^/api/v1/jobs/[{]job_id[}]"
parameters = { "path.job_id" = "$job" }

[[operations]]
include-path-regex = "^/api/v1/ai-coach/(workouts|training-principle)"
parameters = { "path.workout_id" = "$workout", "path.org_id" = "org_demo", "query.org_id" = "org_demo" }

[[operations]]
include-path-regex = "^/api/ai-training/routine-runs/"
parameters = { "path.routineRunId" = "$run_id" }

[[operations]]
include-path-regex = "^/api/ai-training/routine-instances/"
parameters = { "path.routineInstanceId" = "$deferrable" }

[[operations]]
include-path-regex = "^/api/(b2b/ai-training|ai-training/records)"
parameters = { "path.routineTemplateId" = "$template", "query.clientId" = "org_demo" }

[[operations]]
include-path-regex = "^/api/v1/athletes/"
parameters = { "path.user_id" = "usr_fuzz_athlete", "path.goal_id" = "$goal", "path.plan_id" = "$plan" }

[[operations]]
include-path-regex = "^/api/v1/analytics/"
parameters = { "query.user_id" = "usr_fuzz_athlete", "query.org_id" = "org_demo" }

# admin upserts write elsewhere, so the fixtures above stay as they are
[[operations]]
include-path-regex = "^/api/v1/admin/"
parameters = { "path.org_id" = "org_fuzz_other", "path.user_id" = "usr_fuzz_other" }

[[operations]]
include-path-regex = "^/api/client/"
parameters = { "path.clientId" = "org_demo", "path.userId" = "usr_fuzz_user" }
TOML

# the document itself must be valid OpenAPI 3.1
curl -fsS "$base/api-docs/openapi.json" >"$run/openapi.json"
"$venv/bin/python" - "$run/openapi.json" <<'PY'
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.1"), doc["openapi"]
validate(doc, cls=OpenAPIV31SpecValidator)
print(f"fuzz: the document is valid OpenAPI {doc['openapi']} ({sum(len(v) for v in doc['paths'].values())} operations)")
PY

echo "fuzz: schemathesis $version against $base (logs, report and schemathesis' caches in $run/)"
cd "$run"
fuzz() {
  "$venv/bin/schemathesis" run "$base/api-docs/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $admin" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --mode all \
    --max-examples "${FUZZ_MAX_EXAMPLES:-20}" \
    --workers "${FUZZ_WORKERS:-2}" \
    --seed "${FUZZ_SEED:-7}" \
    --request-timeout 30 \
    --no-color \
    --report-dir report \
    "$@"
}
# Hypothesis (inside schemathesis) sometimes crashes on its own ("Runtime Error: AST constructor
# recursion depth mismatch") while every case passed. Only that is retried, once; a failed check
# never is.
if ! fuzz "$@" 2>&1 | tee schemathesis.out; then
  # "N generated, N passed": every generated case passed its checks
  if grep -q "Runtime Error" schemathesis.out && grep -qE "^ +([0-9]+) generated, \1 passed *$" schemathesis.out; then
    echo "fuzz: schemathesis crashed internally with no failed check; running it once more" >&2
    fuzz "$@"
  else
    exit 1
  fi
fi
