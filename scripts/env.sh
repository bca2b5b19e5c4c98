# Sourced by the project's scripts: puts Node LTS and the built toolchain on PATH
# (building what is missing) and installs npm dependencies when they are stale.
# usage: . scripts/env.sh STEP... (toolchain steps: node, all, pulumi, …; at least one,
# since a sourced script without arguments would see its caller's)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for step in "$@"; do bash "$ROOT/scripts/toolchain.sh" "$step" || return 1; done
eval "$(bash "$ROOT/scripts/toolchain.sh" env)"
# Offline hygiene for every Pulumi process we start (see docs/toolchain.md).
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
  echo "[env] npm ci" >&2
  (cd "$ROOT" && npm ci --ignore-scripts --no-audit --no-fund >&2) || return 1
fi
