#!/usr/bin/env bash
# Runs one emulator in the foreground on 127.0.0.1:PORT from the pinned venvs: the one place
# that says how each is started. scripts/emulators.sh (fixed ports) and the Rust tests'
# launcher (tests/common/emulators.rs, free ports) both run it. It `exec`s, so the emulator
# takes this process's place: signals, the tests' parent-death signal and pid files reach it.
#
#   scripts/run-emulator.sh localstack PORT STATE_DIR   SQS, SNS, CloudWatch, SSM (LocalStack, host mode)
#   scripts/run-emulator.sh moto PORT                   DynamoDB (moto's server)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venvs="${VENV_DIR:-$root/.venv}"

usage() {
  echo "usage: scripts/run-emulator.sh localstack PORT STATE_DIR | moto PORT" >&2
  exit 2
}

case "${1:-}" in
  localstack)
    [[ $# -eq 3 ]] || usage
    # Host mode, no Docker; the gateway and the URLs it hands out (queue URLs among them)
    # both on 127.0.0.1:PORT, path-style (`/<account>/<queue>`), so any port works.
    export OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$3"
    export GATEWAY_LISTEN="127.0.0.1:$2" LOCALSTACK_HOST="127.0.0.1:$2" SQS_ENDPOINT_STRATEGY=path
    export SERVICES=sqs,sns,cloudwatch,ssm
    # SQS's queue-depth metrics every 5 s (default 60): the DLQ-depth alarm fires in seconds.
    export SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL=5
    # Offline: no DNS server, no analytics events, no certificate download.
    export DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1
    exec "$venvs/localstack/bin/python" -m localstack.runtime.main
    ;;
  moto)
    [[ $# -eq 2 ]] || usage
    exec "$venvs/moto/bin/moto_server" -H 127.0.0.1 -p "$2"
    ;;
  *) usage ;;
esac
