#!/usr/bin/env bash
# CI preview of a pull request, with no cluster: renders the manifests at BASE and in
# the work tree and writes the difference as markdown (for a PR comment).
# usage: scripts/ci-preview.sh BASE_REV OUT_FILE [MANIFEST_PATH...]   (default path: examples)
# exit: 0 no change, 2 changes, 1 error (invalid manifests)
set -uo pipefail
base=$1; out=$2; shift 2
paths=("${@:-examples}")
args=(); for p in "${paths[@]}"; do args+=(-f "$p"); done
"$(dirname "$0")/vmcpctl" render --diff "$base" "${args[@]}" --output markdown --detailed-exitcode > "$out"
