#!/usr/bin/env bash
# The test command: builds what is missing (Node, Pulumi CLI + Kubernetes provider,
# etcd + kube-apiserver + controller-manager + scheduler + kwok), compiles, checks
# formatting, types and the import layers (scripts/check-layers.mjs), then runs the
# unit, program and integration suites.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
t0=$SECONDS
. scripts/env.sh all
echo "[test] toolchain ready in $((SECONDS - t0))s"
npm run --silent build
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
node scripts/check-layers.mjs
out=$(mktemp); trap 'rm -f "$out"' EXIT
status=0
for suite in unit program integration; do
  echo "[test] suite: $suite"
  npm run --silent "test:$suite" 2>&1 | tee -a "$out" || status=1
done
# (awk, not grep: no match must not end the script under errexit/pipefail)
passed=$(awk '/^ +[0-9]+ passing/ {s += $1} END {print s + 0}' "$out")
failed=$(awk '/^ +[0-9]+ failing/ {s += $1} END {print s + 0}' "$out")
echo "[test] total time $((SECONDS - t0))s"
echo "${passed} passed, ${failed} failed"
[ "$status" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
