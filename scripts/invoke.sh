#!/usr/bin/env bash
# Runs every sample event in events/ through its function under `cargo lambda watch` (the
# Lambda runtime API emulated locally, no Docker) against the local emulators, and compares
# each response with events/<name>.expected.json (scripts/expect.py). `api-*` events go to the
# sync API, with a real access token of a sample user of the provisioned user pool (moto's
# Cognito) in place of `{{ACCESS_TOKEN}}`; the others to the consumer. Exits non-zero on any
# difference.
#
#   scripts/invoke.sh [event-name...]      (no argument: every event)
#   INVOKE_PORT=9057                        where `cargo lambda watch` listens
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=$root/.local
mkdir -p "$state"
port=${INVOKE_PORT:-9057}
sqs=http://127.0.0.1:4566
log() { echo "invoke: $*" >&2; }
answers() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

scripts/venvs.sh tools localstack moto scripts
venvs=${VENV_DIR:-$root/.venv}
export PATH="$venvs/tools/bin:$PATH"
# The emulators take any credentials; real ones must never reach them.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE

watch_pid="" started_emulators=""
cleanup() {
  local rc=$?
  [[ -n $watch_pid ]] && { kill -TERM -- "-$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; }
  [[ -n $started_emulators ]] && scripts/emulators.sh down
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! scripts/emulators.sh running; then
  started_emulators=1
  scripts/emulators.sh up
fi
scripts/emulators.sh provision >"$state/provisioned.json"
dlq_url=$sqs/000000000000/notes-sync-dlq
provisioned() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["standard"][sys.argv[2]])' "$state/provisioned.json" "$1"; }
pool_id=$(provisioned user_pool_id)
client_id=$(provisioned user_pool_client_id)
token=$("$venvs/scripts/bin/python" scripts/sample_token.py --endpoint http://127.0.0.1:5000 \
  --pool-id "$pool_id" --client-id "$client_id")

cargo build --quiet --bin consumer --bin api
# Another server answering there would be taken for the watcher.
if answers "$port"; then
  log "port $port is already taken; set INVOKE_PORT to another"
  exit 1
fi
setsid cargo lambda watch --quiet --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
  --env-var TABLE_NAME=notes-sync-notes --env-var DLQ_URL="$dlq_url" \
  --env-var AWS_ENDPOINT_URL="$sqs" --env-var AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:5000 \
  --env-var BACKOFF_BASE_SECONDS=1 \
  --env-var QUEUE_URL="$(provisioned queue_url)" --env-var USER_POOL_ID="$pool_id" \
  --env-var USER_POOL_CLIENT_IDS="$client_id" --env-var JWKS_URL="$(provisioned jwks_url)" \
  >"$state/cargo-lambda-watch.log" 2>&1 </dev/null &
watch_pid=$!
for _ in $(seq 300); do
  answers "$port" && break
  kill -0 "$watch_pid" 2>/dev/null || break
  sleep 0.1
done
if ! kill -0 "$watch_pid" 2>/dev/null; then
  log "cargo lambda watch exited:"
  tail -20 "$state/cargo-lambda-watch.log" >&2
  exit 1
fi

dlq_depth() {
  "$venvs/scripts/bin/python" - "$dlq_url" <<'PY'
import sys, boto3
sqs = boto3.client("sqs", endpoint_url="http://127.0.0.1:4566")
print(sqs.get_queue_attributes(QueueUrl=sys.argv[1], AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
PY
}

events=()
if [[ $# -gt 0 ]]; then
  for name in "$@"; do events+=("events/${name%.json}.json"); done
else
  for f in events/*.json; do [[ $f == *.expected.json ]] || events+=("$f"); done
fi

failed=0
before=$(dlq_depth)
printf '%-18s %-8s %s\n' event result response
for event in "${events[@]}"; do
  name=$(basename "$event" .json)
  function=consumer data=$event
  if [[ $name == api-* ]]; then
    function=api data=$state/invoke-$name.json
    sed "s|{{ACCESS_TOKEN}}|$token|" "$event" >"$data"
  fi
  cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$data" \
    --output-format json >"$state/invoke-$name.out" 2>&1 || true
  if line=$(python3 scripts/expect.py "$state/invoke-$name.out" "events/$name.expected.json"); then
    printf '%-18s %-8s %s\n' "$name" ok "$line"
  else
    printf '%-18s %-8s %s\n' "$name" FAIL "$line"
    failed=1
  fi
done
# Beyond the responses: the malformed records of events/mixed.json are in the DLQ.
dead=$(( $(dlq_depth) - before ))
expected_dead=0
for event in "${events[@]}"; do [[ $event == events/mixed.json ]] && expected_dead=3; done
if [[ $dead == "$expected_dead" ]]; then
  log "dead-lettered: $dead (expected $expected_dead)"
else
  log "dead-lettered: $dead, expected $expected_dead; consumer log: $state/cargo-lambda-watch.log"
  failed=1
fi
exit $failed
