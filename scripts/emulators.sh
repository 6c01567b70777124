#!/usr/bin/env bash
# Local stand-ins for AWS, on this machine's loopback only:
#   LocalStack (SQS, SNS, CloudWatch, SSM) on 127.0.0.1:4566 and moto (DynamoDB) on 127.0.0.1:5000.
#
#   scripts/emulators.sh up          start both in the background (pid files and logs in .local/)
#   scripts/emulators.sh provision   create the demo queues and the notes table
#   scripts/emulators.sh down        stop what `up` started
#   scripts/emulators.sh running     exit 0 if both ports already serve (by `up` or anyone else)
#
# The Rust integration tests do not use this script: they start emulators of their own on free
# ports (both start them with scripts/run-emulator.sh). This one serves `make demo`,
# `make invoke`, `make sam-local-invoke` and manual exploration.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
state="$root/.local"
venvs="${VENV_DIR:-$root/.venv}"
mkdir -p "$state"

serving() { # port: exit 0 if something accepts connections on 127.0.0.1:port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() { # name, log file, pattern, port, seconds
  local i pid why="did not become ready in $5 s"
  pid=$(cat "$state/$1.pid")
  for ((i = 0; i < $5 * 10; i++)); do
    # The log line alone is not enough: the port must answer too.
    grep -q "$3" "$2" 2>/dev/null && serving "$4" && return 0
    kill -0 "$pid" 2>/dev/null || { why="exited before it was ready"; break; }
    sleep 0.1
  done
  echo "emulators: $1 $why; see $2" >&2
  tail -20 "$2" >&2
  return 1
}

start_bg() { # name, log, command...
  local name=$1 log=$2; shift 2
  if [[ -f "$state/$name.pid" ]] && kill -0 "$(cat "$state/$name.pid")" 2>/dev/null; then
    echo "emulators: $name already running (pid $(cat "$state/$name.pid"))" >&2
    return 0
  fi
  # Empty the log here, not in the background child: a previous run's "Ready." must not be
  # read before the child gets round to truncating it.
  : >"$log"
  setsid "$@" >>"$log" 2>&1 < /dev/null &
  echo $! > "$state/$name.pid"
}

up() {
  "$root/scripts/venvs.sh" localstack moto scripts
  mkdir -p "$state/localstack-fs"
  start_bg localstack "$state/localstack.log" "$root/scripts/run-emulator.sh" localstack 4566 "$state/localstack-fs"
  start_bg moto "$state/moto.log" "$root/scripts/run-emulator.sh" moto 5000
  wait_for localstack "$state/localstack.log" 'Ready\.' 4566 90
  wait_for moto "$state/moto.log" 'Running on' 5000 30
  echo "emulators: LocalStack http://127.0.0.1:4566, moto http://127.0.0.1:5000" >&2
}

down() {
  local name pid
  for name in localstack moto; do
    [[ -f "$state/$name.pid" ]] || continue
    pid=$(cat "$state/$name.pid")
    # setsid made each emulator a process-group leader: stop the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$state/$name.pid"
  done
}

provision() {
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    "$venvs/scripts/bin/python" "$root/scripts/provision.py" "${@:2}"
}

running() {
  serving 4566 && serving 5000
}

case "${1:-}" in
  up) up ;;
  running) running ;;
  down) down ;;
  provision) provision "$@" ;;
  *) echo "usage: scripts/emulators.sh up|provision|down|running" >&2; exit 2 ;;
esac
