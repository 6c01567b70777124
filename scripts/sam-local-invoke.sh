#!/usr/bin/env bash
# Runs the functions with `sam local invoke` against every sample event in events/ and
# compares each response with events/<name>.expected.json (scripts/expect.py): `api-*` events
# go to the sync API (ApiFunction) with a real access token of a sample user of the provisioned
# user pool (moto's Cognito) in place of `{{ACCESS_TOKEN}}`, the others to the consumer.
#
#   scripts/sam-local-invoke.sh [event-name...]      (no argument: every event)
#
# What it does, and what it leaves as it found it:
#   1. `sam build` for x86_64 (scripts/sam-build.sh x86_64); SKIP_BUILD=1 reuses .aws-sam/.
#   2. A Docker daemon: uses a running one; otherwise installs Debian's docker.io if needed and
#      starts dockerd (no iptables, no bridge), stopping it again at the end.
#   3. The Lambda base image public.ecr.aws/lambda/provided:al2023(-x86_64): used if present, else
#      pulled; only when it cannot be pulled (no internet, as on the CI machine) a stand-in is
#      built: the host's dynamic loader and glibc, a static busybox as /bin/sh, /etc/passwd,
#      CA certificates. SAM layers its own Runtime Interface Emulator on top of either.
#   4. The emulators (scripts/emulators.sh up + provision), stopped at the end if started here.
#   5. The Lambda container runs in the host's network namespace, through
#      scripts/sam-local-hostnet.py (SAM ignores --docker-network host), so the consumer reaches
#      the emulators on 127.0.0.1: SQS at :4566 (LocalStack), DynamoDB at :5000 (moto).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=$root/.local
mkdir -p "$state"

# SAM CLI 1.170 builds its emulation image FROM the architecture-suffixed tag.
base_image=public.ecr.aws/lambda/provided:al2023-x86_64
region=us-east-1
account=000000000000
sqs_endpoint=http://127.0.0.1:4566
dynamodb_endpoint=http://127.0.0.1:5000

export SAM_CLI_TELEMETRY=0
# The emulators accept any credentials; never hand real ones to the local container.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=$region AWS_REGION=$region
unset AWS_SESSION_TOKEN AWS_PROFILE

log() { echo "sam-local-invoke: $*" >&2; }

started_dockerd=""
started_emulators=""
proxy_pid=""
cleanup() {
  local rc=$?
  [[ -n $proxy_pid ]] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
  if [[ -n $started_emulators ]]; then scripts/emulators.sh down || true; fi
  if [[ -n $started_dockerd ]]; then
    log "stopping the dockerd it started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.1; done
    rm -f "$state/dockerd.pid"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)

# 1. build ---------------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-} != 1 ]]; then
  scripts/sam-build.sh x86_64
fi
for fn in ConsumerFunction ApiFunction; do
  [[ -x .aws-sam/build/$fn/bootstrap ]] || { log "no x86_64 build of $fn in .aws-sam/build"; exit 1; }
done
t_build=$(date +%s)

# 2. docker daemon -------------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    log "installing Debian's docker.io"
    apt-get install -y -q docker.io >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; }
  fi
  log "starting dockerd (log $state/dockerd.log)"
  # No iptables rules and no docker0 bridge: the Lambda container uses the host's network.
  dockerd --iptables=false --ip6tables=false --bridge=none >"$state/dockerd.log" 2>&1 &
  started_dockerd=$!
  echo "$started_dockerd" >"$state/dockerd.pid"
  for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start"; tail -20 "$state/dockerd.log" >&2; exit 1; }
fi

# 3. base image ----------------------------------------------------------------------------
build_stand_in() {
  local rootfs lib
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs"/{bin,etc/ssl/certs,tmp,var/task,var/runtime,opt,lib64,root}
  chmod 1777 "$rootfs/tmp"
  # Every shared library the built bootstrap loads, at the same path, plus the loader.
  for lib in $(ldd .aws-sam/build/ConsumerFunction/bootstrap .aws-sam/build/ApiFunction/bootstrap | grep -o '^\s*/[^ ]*\|=> /[^ ]*' | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  local busybox
  busybox=$(command -v busybox || true)
  if [[ -z $busybox ]] || ! file -L "$busybox" | grep -q 'statically linked'; then
    apt-get install -y -q busybox-static >/dev/null
    busybox=$(command -v busybox)
  fi
  cp -L "$busybox" "$rootfs/bin/busybox"
  ln -s busybox "$rootfs/bin/sh"
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/" 2>/dev/null || true
  printf 'root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:993:990::/tmp:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nsbx_user1051:x:990:\n' >"$rootfs/etc/group"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' \
    -c 'ENV LAMBDA_TASK_ROOT=/var/task' -c 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
    -c 'WORKDIR /var/task' -c 'LABEL notes-sync.stand-in=true' - "$base_image" >/dev/null
  docker tag "$base_image" "${base_image%-x86_64}"
  rm -rf "$rootfs"
  # The RIE image SAM layered on an older base would otherwise be reused.
  docker image rm -f "${base_image%%:*}:al2023-rapid-x86_64" >/dev/null 2>&1 || true
}

if docker image inspect "$base_image" >/dev/null 2>&1; then
  kind=$(docker image inspect -f '{{index .Config.Labels "notes-sync.stand-in"}}' "$base_image" 2>/dev/null || true)
  if [[ $kind == true ]]; then log "base image present (the offline stand-in)"; else log "base image present"; fi
elif timeout "${PULL_TIMEOUT:-120}" docker pull -q --platform linux/amd64 "$base_image" >/dev/null 2>&1; then
  log "pulled the real base image $base_image"
else
  log "cannot pull $base_image (offline?): building the stand-in base image"
  build_stand_in
fi

# 4. emulators -----------------------------------------------------------------------------
# Already serving (started by `make emulators-up`, the tests or another run): use them as they are.
if ! scripts/emulators.sh running; then
  started_emulators=1
  scripts/emulators.sh up
fi
scripts/emulators.sh provision >"$state/provisioned.json"
provisioned() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["standard"][sys.argv[2]])' "$state/provisioned.json" "$1"; }
token=$(.venv/scripts/bin/python scripts/sample_token.py --endpoint "$dynamodb_endpoint" \
  --pool-id "$(provisioned user_pool_id)" --client-id "$(provisioned user_pool_client_id)")

# 5. host-network proxy --------------------------------------------------------------------
sock=$state/sam-docker.sock
upstream=${DOCKER_HOST:-unix:///var/run/docker.sock}
# A socket left by an earlier run must not pass for this proxy being ready.
rm -f "$sock"
.venv/tools/bin/python scripts/sam-local-hostnet.py --listen "$sock" --upstream "${upstream#unix://}" \
  --env "AWS_ENDPOINT_URL=$sqs_endpoint" --env "AWS_ENDPOINT_URL_DYNAMODB=$dynamodb_endpoint" \
  2>"$state/sam-local-hostnet.log" &
proxy_pid=$!
for _ in $(seq 50); do [[ -S $sock ]] && break; kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
[[ -S $sock ]] || { log "the host-network proxy did not start"; cat "$state/sam-local-hostnet.log" >&2; exit 1; }

# 6. invoke each event ---------------------------------------------------------------------
events=()
if [[ $# -gt 0 ]]; then
  for name in "$@"; do events+=("events/${name%.json}.json"); done
else
  for f in events/*.json; do [[ $f == *.expected.json ]] || events+=("$f"); done
fi
[[ ${#events[@]} -gt 0 ]] || { log "no events in events/"; exit 1; }

results=()
failed=0
for event in "${events[@]}"; do
  name=$(basename "$event" .json)
  expected=events/$name.expected.json
  out=$state/sam-invoke-$name
  if [[ $name == api-* ]]; then
    function=ApiFunction data=$out.event.json
    sed "s|{{ACCESS_TOKEN}}|$token|" "$event" >"$data"
  else
    function=ConsumerFunction data=$event
  fi
  # A FIFO event (its source ARN ends in .fifo) dead-letters to the FIFO DLQ.
  suffix=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])).get("Records") or [{}]; print(".fifo" if r[0].get("eventSourceARN","").endswith(".fifo") else "")' "$event")
  cat >"$out.env.json" <<JSON
{"ConsumerFunction": {
  "TABLE_NAME": "notes-sync-notes",
  "DLQ_URL": "$sqs_endpoint/queue/$region/$account/notes-sync-dlq$suffix"
},
"ApiFunction": {
  "TABLE_NAME": "notes-sync-notes",
  "QUEUE_URL": "$(provisioned queue_url)",
  "USER_POOL_ID": "$(provisioned user_pool_id)",
  "USER_POOL_CLIENT_IDS": "$(provisioned user_pool_client_id)",
  "JWKS_URL": "$(provisioned jwks_url)"
}}
JSON
  start=$(date +%s.%N)
  set +e
  DOCKER_HOST=unix://$sock .venv/tools/bin/sam local invoke "$function" \
    --template .aws-sam/build/template.yaml --event "$data" --env-vars "$out.env.json" \
    --skip-pull-image --docker-network host --container-host 127.0.0.1 \
    --parameter-overrides Architecture=x86_64 >"$out.stdout" 2>"$out.stderr"
  rc=$?
  set -e
  secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  if [[ ! -f $expected ]]; then
    verdict="FAIL (no expected file)"
  elif shown=$(python3 scripts/expect.py "$out.stdout" "$expected"); then
    verdict=pass
  else
    verdict="FAIL (sam exit $rc; got ${shown:0:200})"
  fi
  [[ $verdict == pass ]] || failed=1
  results+=("$(printf '%-34s %-6s %6ss' "$name" "${verdict%% *}" "$secs")")
  if [[ $verdict != pass ]]; then
    results+=("    $verdict; logs: $out.stderr")
  fi
done

t_end=$(date +%s)
echo
printf '%-34s %-6s %7s\n' event result time
printf '%s\n' "${results[@]}"
echo "build $((t_build - t0)) s, total $((t_end - t0)) s"
exit $failed
