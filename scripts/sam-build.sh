#!/usr/bin/env bash
# `sam build` offline for one architecture, with cargo-lambda and zig from the pinned
# tools venv (PyPI) instead of a toolchain download.
#
#   scripts/sam-build.sh [arm64|x86_64]      (default arm64, the deployed architecture)
#
# Output: .aws-sam/build/ConsumerFunction/bootstrap and .aws-sam/build/template.yaml.
# Rust's BuildMethod builds in the source tree only, and the Lambda builder points cargo at
# the project's own target directory (or $CARGO_TARGET_DIR when set), so the compiled AWS
# SDK in target/<triple>/release is reused by every later build, here and in CI.
set -euo pipefail

arch=${1:-arm64}
case $arch in
  arm64|x86_64) ;;
  *) echo "usage: $0 [arm64|x86_64]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/venvs.sh tools

# cargo-lambda finds zig through the venv's python (`python3 -m ziglang`) or a `zig` on PATH.
export PATH="$root/.venv/tools/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

start=$(date +%s)
sam build --beta-features --parameter-overrides "Architecture=$arch" "${@:2}"
end=$(date +%s)

bootstrap=.aws-sam/build/ConsumerFunction/bootstrap
file "$bootstrap" 2>/dev/null || true
# The deployment package `sam deploy` uploads is this file deflated into a zip.
zip_bytes=$(python3 - "$bootstrap" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()))
PY
)
echo "sam-build: $arch bootstrap $(stat -c %s "$bootstrap") bytes, zip $zip_bytes bytes, built in $((end - start)) s" >&2
