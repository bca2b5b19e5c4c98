#!/usr/bin/env bash
# Renders the plain manifests from the Helm chart:
#   deploy/helm/vmcp-operator + deploy/manifests/values.yaml → deploy/manifests/vmcp-operator.yaml
# Uses helm at exactly the version pinned in scripts/toolchain.sh (HELM_VERSION): the one that
# script builds into the tool cache, else a `helm` on PATH of that version, else it builds it.
# usage: deploy/render.sh [--stdout]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HELM_VERSION=$(sed -n 's/^HELM_VERSION=//p' "$ROOT/scripts/toolchain.sh")
HELM="${VMCP_TOOLS:-$HOME/.cache/vmcp-operator}/helm-$HELM_VERSION/bin/helm"
if [ ! -x "$HELM" ]; then
  if command -v helm >/dev/null && [ "$(helm version --template '{{.Version}}')" = "v$HELM_VERSION" ]; then
    HELM=$(command -v helm)
  else
    bash "$ROOT/scripts/toolchain.sh" helm >&2
  fi
fi
render() {
  printf '# Rendered from deploy/helm/vmcp-operator by deploy/render.sh (helm template, values\n'
  printf '# deploy/manifests/values.yaml). Do not edit: change the chart and re-render.\n'
  "$HELM" template vmcp-operator "$ROOT/deploy/helm/vmcp-operator" --namespace vmcp-system --include-crds \
    -f "$ROOT/deploy/manifests/values.yaml"
}
if [ "${1:-}" = "--stdout" ]; then render; exit 0; fi
out="$ROOT/deploy/manifests/vmcp-operator.yaml"
render > "$out.tmp" && mv "$out.tmp" "$out"
echo "wrote ${out#"$ROOT"/}" >&2
