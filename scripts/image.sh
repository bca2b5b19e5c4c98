#!/usr/bin/env bash
# Builds the controller image without a daemon: the Dockerfile's image, from the same list
# (deploy/image/rootfs.sh lays out the root filesystem, the Dockerfile's last stage is the
# image config), with buildah, from the toolchain's Node and Pulumi binaries and Debian's
# packages. Keyed by a hash of everything that goes in; cached with its own container storage
# (vfs) under $VMCP_TOOLS/image, outside the work tree; idempotent; each step timed.
# Needs root (CI and the demo machine run as root; rootless storage is not set up here).
#
# usage: scripts/image.sh [build]       build unless cached; prints the image reference
#        scripts/image.sh ref           the reference the current sources build to
#        scripts/image.sh podman ARG…   podman on the image's storage (vfs, runc, cgroupfs)
#        scripts/image.sh buildah ARG…  buildah on the same storage
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd); cd "$ROOT"
TOOLS=${VMCP_TOOLS:-$HOME/.cache/vmcp-operator}
DIR=$TOOLS/image
pin() { sed -n "s/^$1=//p" scripts/toolchain.sh; }
NODE_VERSION=$(pin NODE_VERSION) PULUMI_VERSION=$(pin PULUMI_VERSION) K8S_PROVIDER_VERSION=$(pin K8S_PROVIDER_VERSION)
VERSION=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
timed() { local what=$1; shift; local t0=$SECONDS; "$@"; log "$what: ${SECONDS}s total, step $((SECONDS - t0))s"; }

# The runtime here: crun fails on this kind of machine (hybrid cgroup layout, setrlimit), runc
# with cgroupfs works, and only with no default ulimits. Our own config and storage, so the
# machine's /etc/containers and /var/lib/containers are left alone.
export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf
STORE=(--storage-driver vfs --root "$DIR/storage" --runroot "$DIR/run")
podman_() { podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs "$@"; }
buildah_() { buildah "${STORE[@]}" "$@"; }

# Everything the image is made of: the sources dist/ is compiled from, the dependency pins,
# the toolchain pins, the layout script, the Dockerfile (its last stage is the config).
content_hash() {
  find Dockerfile deploy/image deploy/docker scripts/image.sh scripts/toolchain.sh package.json \
    package-lock.json tsconfig.json api program engine controller cli localcluster health samples \
    -type f ! -name '*.test.ts' ! -path 'controller/testing/*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12
}
REF=localhost/vmcp-operator:$VERSION-$(content_hash)

packages() {
  local missing=() cmd pkg
  for pair in buildah:buildah podman:podman runc:runc conmon:conmon chroot:coreutils; do
    cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && { log "packages: buildah podman runc installed"; return; }
  [ "$(id -u)" = 0 ] || { log "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"; return 1; }
  log "packages: apt-get install ${missing[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

configure() {
  mkdir -p "$DIR/storage" "$DIR/run"
  cat >"$DIR/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
  cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$DIR/storage"
runroot = "$DIR/run"
EOF
}

# IN/ as deploy/image/rootfs.sh expects it: the same files the Dockerfile's stages produce.
inputs() {
  local in=$1
  bash scripts/toolchain.sh node-pinned
  bash scripts/toolchain.sh pulumi
  bash scripts/toolchain.sh provider
  mkdir -p "$in/app" "$in/pulumi/bin" "$in/pulumi/plugins"
  cp "$TOOLS/node-$NODE_VERSION/bin/node" "$in/node"
  cp "$TOOLS/pulumi-$PULUMI_VERSION/bin/pulumi" "$in/pulumi/bin/"
  cp -r "$TOOLS/pulumi-home/plugins/resource-kubernetes-v$K8S_PROVIDER_VERSION" "$in/pulumi/plugins/"
}
compile() {
  local in=$1
  [ -x node_modules/.bin/tsc ] || npm ci --ignore-scripts --no-audit --no-fund >&2
  node_modules/.bin/tsc -p deploy/docker/tsconfig.build.json --outDir "$in/app/dist"
}
prod_modules() {
  local in=$1
  cp package.json package-lock.json "$in/app/"
  (cd "$in/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm "$in/app/package-lock.json" # the Dockerfile's rootfs stage gets package.json only
}

# The Dockerfile's global ARGs and its last stage, with the rootfs stage replaced by the
# context's rootfs/: the image config (ENV, USER, ENTRYPOINT, labels) is written once.
containerfile() {
  local out=$1
  { sed -n '/^FROM /q; /^ARG /p' Dockerfile; awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' Dockerfile; } |
    sed 's#^COPY --from=rootfs /rootfs /$#COPY rootfs /#' >"$out"
  grep -q '^FROM scratch$' "$out" && grep -q '^COPY rootfs /$' "$out" ||
    { log "the Dockerfile's last stage is not 'FROM scratch' + 'COPY --from=rootfs /rootfs /'"; return 1; }
}

assemble() {
  local stage=$1
  rm -rf "$stage/in"
  buildah_ bud --quiet --format oci -f "$stage/Containerfile" -t "$REF" "$stage" >&2
  # Older builds of other sources: vfs keeps full copies, so only the newest stays.
  local old
  for old in $(podman_ images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/vmcp-operator:' | grep -vx "$REF"); do
    podman_ rmi "$old" >/dev/null 2>&1 || log "$old: kept (a container uses it)"
  done
}

check() {
  local t0 size
  t0=$(date +%s%N)
  # as the image's user: the writable paths are writable, the code is not
  podman_ run --rm --network host --entrypoint /usr/local/bin/node "$REF" -e \
    'const fs = require("node:fs"); for (const d of ["/var/lib/vmcp-operator/state", "/var/lib/vmcp-operator/pulumi-home", "/tmp"]) fs.accessSync(d, fs.constants.W_OK); for (const f of ["/app/dist/cli/main.js", "/opt/pulumi/bin/pulumi"]) try { fs.accessSync(f, fs.constants.W_OK); process.exit(1) } catch {}' </dev/null
  size=$(podman_ image inspect --format '{{.Size}}' "$REF")
  log "$REF: $((size / 1000000)) MB; a 'run --rm' took $((($(date +%s%N) - t0) / 1000000)) ms"
}

build() {
  # stdout carries the image reference only: every step's output goes to stderr.
  exec 3>&1 1>&2
  t0=$SECONDS
  timed packages packages
  configure
  exec 9>"$DIR/lock"; flock 9 # one build at a time on this storage
  if podman_ image exists "$REF"; then log "$REF: cached"; echo "$REF" >&3; return; fi
  log "$REF: building"
  eval "$(bash scripts/toolchain.sh env)"
  local stage=$DIR/build; rm -rf "$stage"; mkdir -p "$stage/in"
  timed "toolchain binaries" inputs "$stage/in"
  timed "compile dist/" compile "$stage/in"
  timed "production node_modules" prod_modules "$stage/in"
  timed "rootfs (deploy/image/rootfs.sh)" bash deploy/image/rootfs.sh "$stage/in" "$stage/rootfs"
  containerfile "$stage/Containerfile"
  timed "buildah bud" assemble "$stage"
  rm -rf "$stage"
  timed "check" check
  log "built in $((SECONDS - t0))s"
  echo "$REF" >&3
}

case "${1:-build}" in
  build) build ;;
  ref) echo "$REF" ;;
  podman) shift; configure; podman_ "$@" ;;
  buildah) shift; configure; buildah_ "$@" ;;
  -h|--help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "unknown command: $1 (build|ref|podman|buildah)" >&2; exit 2 ;;
esac
