#!/usr/bin/env bash
# What goes into the controller image, in one place: both builds lay out the image's root
# filesystem with this script and nothing else. The Dockerfile runs it in its `rootfs` stage
# (docker build), scripts/image.sh runs it on the host (buildah, no daemon); then both put the
# resulting directory into an empty image (FROM scratch) with the Dockerfile's last stage.
#
# usage: deploy/image/rootfs.sh IN ROOTFS
#   IN/node                    the Node LTS binary (NODE_VERSION of scripts/toolchain.sh)
#   IN/app/                    package.json, dist/ (deploy/docker/tsconfig.build.json),
#                              node_modules/ (npm ci --omit=dev --ignore-scripts)
#   IN/pulumi/bin/pulumi       the Pulumi CLI, IN/pulumi/plugins/resource-kubernetes-v*/
#
# The base is not a Debian installation (debootstrap --variant=minbase is 206 MB of bash,
# coreutils, dpkg, apt, perl-base the controller never runs) but the files of the Debian
# packages below, unpacked from the distribution's mirror with apt-get download: the C and
# C++ runtime Node links against (the Pulumi binaries are static Go), tini and the CA roots.
# No shell, no package manager. The checks at the end run the binaries in the new root, so
# a library missing from the list fails the build, not the pod.
set -euo pipefail

# Debian packages unpacked into the root (their dependencies are exactly these: libc6 and
# libgcc-s1; gcc-12-base holds only docs). ca-certificates gives the Mozilla roots, bundled
# below as update-ca-certificates would.
DEBIAN_PACKAGES="libc6 libgcc-s1 libstdc++6 tini ca-certificates"
UID_GID=65532

IN=$(realpath "$1") ROOTFS=$(realpath -m "$2")
[ -x "$IN/node" ] || { echo "rootfs.sh: $IN/node missing" >&2; exit 1; }
[ -f "$IN/app/dist/cli/main.js" ] || { echo "rootfs.sh: $IN/app/dist/cli/main.js missing" >&2; exit 1; }
[ -d "$IN/app/node_modules" ] || { echo "rootfs.sh: $IN/app/node_modules missing" >&2; exit 1; }
[ -x "$IN/pulumi/bin/pulumi" ] || { echo "rootfs.sh: $IN/pulumi/bin/pulumi missing" >&2; exit 1; }
ls "$IN"/pulumi/plugins/resource-kubernetes-v*/pulumi-resource-kubernetes >/dev/null

rm -rf "$ROOTFS"; mkdir -p "$ROOTFS"
debs=$(mktemp -d); trap 'rm -rf "$debs"' EXIT
# shellcheck disable=SC2086
(cd "$debs" && { apt-get download -q $DEBIAN_PACKAGES 2>/dev/null || { apt-get update -q && apt-get download -q $DEBIAN_PACKAGES; }; })
for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$ROOTFS"; done
(cd "$debs" && for deb in *.deb; do printf '%s\n' "${deb%.deb}"; done) >"$ROOTFS/.debian-packages"

cd "$ROOTFS"
mkdir -p etc/ssl/certs
cat usr/share/ca-certificates/mozilla/*.crt >etc/ssl/certs/ca-certificates.crt
rm -rf usr/share/ca-certificates usr/share/doc usr/share/man usr/share/lintian usr/share/locale \
  usr/share/gcc usr/share/gdb usr/sbin usr/bin/tini-static etc/ca-certificates* var/lib/dpkg

printf 'root:x:0:0:root:/root:/nonexistent\nnonroot:x:%s:%s:vmcp-operator:/tmp:/nonexistent\n' $UID_GID $UID_GID >etc/passwd
printf 'root:x:0:\nnonroot:x:%s:\n' $UID_GID >etc/group
printf 'hosts: files dns\n' >etc/nsswitch.conf
mkdir -p tmp && chmod 1777 tmp

install -D -m 0755 "$IN/node" usr/local/bin/node
mkdir -p app opt/pulumi
cp -a "$IN/app/package.json" "$IN/app/dist" "$IN/app/node_modules" app/
cp -a "$IN/pulumi/bin" "$IN/pulumi/plugins" opt/pulumi/

# Every file is root's and the writable paths are sticky and world-writable like /tmp: owners
# need not survive the copy into the image (COPY makes files root's, and the two builds copy
# differently), and the image's user cannot change its own code.
mkdir -p var/lib/vmcp-operator/state var/lib/vmcp-operator/pulumi-home
ln -s /opt/pulumi/plugins var/lib/vmcp-operator/pulumi-home/plugins
chown -R 0:0 .
chmod 1777 var/lib/vmcp-operator/state var/lib/vmcp-operator/pulumi-home

# The binaries run in the new root, as the image's user: a missing library fails here.
CHROOT=$(PATH=$PATH:/usr/sbin:/sbin command -v chroot)
run() { env -i PATH=/opt/pulumi/bin:/usr/local/bin:/usr/bin HOME=/tmp "$CHROOT" --userspec=$UID_GID:$UID_GID "$ROOTFS" "$@"; }
run /usr/local/bin/node --version
run /opt/pulumi/bin/pulumi version
run /usr/bin/tini --version
(cd "$ROOTFS" && ls opt/pulumi/plugins/resource-kubernetes-v*/pulumi-resource-kubernetes >/dev/null)
run /usr/local/bin/node /app/dist/cli/main.js controller --help >/dev/null
echo "rootfs.sh: $(du -sh --apparent-size "$ROOTFS" | cut -f1) in $ROOTFS" >&2
