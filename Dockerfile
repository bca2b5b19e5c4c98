# syntax=docker/dockerfile:1
# The vmcp-operator controller image: `vmcpctl controller` on Node LTS, with the Pulumi CLI
# and the Kubernetes provider plugin the Automation API runs as child processes.
#
#   docker build -t vmcp-operator:0.1.0 .
#   scripts/image.sh          the same image without a daemon (buildah, from Debian's packages)
#
# What goes in is deploy/image/rootfs.sh's list, for both: Node, dist/, production
# node_modules, the Pulumi CLI and provider, and the files of a few Debian packages (glibc,
# libstdc++, tini, CA roots). No shell, no package manager in the image.
#
# The Pulumi binaries are built from their Go modules by scripts/toolchain.sh, the same
# script (and so the same pins, module pseudo-versions and ldflags) the test setup runs;
# only `pulumi` and `provider` are needed here: the controller runs inline programs, so
# the pulumi-language-nodejs host is not. test/unit/deploy.test.ts keeps the ARGs below
# equal to the pins in scripts/toolchain.sh and package.json.
#
# Runs as uid/gid 65532 with a read-only root filesystem. Writable paths (the Helm chart
# mounts them; docker run needs nothing, the image has them):
#   /var/lib/vmcp-operator/state        Pulumi DIY file backend (--state-dir); a volume
#   /var/lib/vmcp-operator/pulumi-home  PULUMI_HOME (emptyDir; `plugins` links to /opt/pulumi/plugins)
#   /tmp                                TMPDIR: the stacks' workspaces (emptyDir)
# Environment: PULUMI_CONFIG_PASSPHRASE (required), PULUMI_BACKEND_URL (optional, any
# Pulumi backend; overrides the file backend), VMCP_IMAGE (optional vmcp image).

ARG GO_VERSION=1.26
ARG NODE_VERSION=24.22.3
ARG PULUMI_VERSION=3.259.0
ARG K8S_PROVIDER_VERSION=4.25.0

# --- Pulumi CLI (version-stamped) + pulumi-resource-kubernetes, from the Go module proxy ---
FROM golang:${GO_VERSION}-bookworm AS pulumi
ARG PULUMI_VERSION
ARG K8S_PROVIDER_VERSION
ENV VMCP_TOOLS=/tools
COPY scripts/toolchain.sh /src/scripts/toolchain.sh
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    bash /src/scripts/toolchain.sh pulumi \
 && bash /src/scripts/toolchain.sh provider \
 && test "$(/tools/pulumi-${PULUMI_VERSION}/bin/pulumi version)" = "v${PULUMI_VERSION}" \
 && test -x "/tools/pulumi-home/plugins/resource-kubernetes-v${K8S_PROVIDER_VERSION}/pulumi-resource-kubernetes" \
 && mkdir -p /out/bin /out/plugins \
 && cp "/tools/pulumi-${PULUMI_VERSION}/bin/pulumi" /out/bin/ \
 && cp -r "/tools/pulumi-home/plugins/resource-kubernetes-v${K8S_PROVIDER_VERSION}" /out/plugins/

# --- TypeScript → dist/ (runtime modules only), production node_modules ---
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json ./
COPY deploy/docker/tsconfig.build.json deploy/docker/
COPY api api
COPY program program
COPY engine engine
COPY controller controller
COPY cli cli
COPY localcluster localcluster
COPY health health
COPY samples samples
RUN npx tsc -p deploy/docker/tsconfig.build.json
WORKDIR /prod
RUN --mount=type=cache,target=/root/.npm cp /app/package.json /app/package-lock.json ./ \
 && npm ci --omit=dev --ignore-scripts

# --- the image's root filesystem: deploy/image/rootfs.sh, the one list of what goes in ---
# scripts/image.sh runs the same script on the host and builds the stage below with buildah.
FROM debian:bookworm-slim AS rootfs
COPY --from=build /usr/local/bin/node /in/node
COPY --from=build /app/package.json /in/app/package.json
COPY --from=build /app/dist /in/app/dist
COPY --from=build /prod/node_modules /in/app/node_modules
COPY --from=pulumi /out /in/pulumi
COPY deploy/image/rootfs.sh /src/rootfs.sh
RUN apt-get update && bash /src/rootfs.sh /in /rootfs && rm -rf /var/lib/apt/lists/*

# --- runtime: scripts/image.sh builds exactly this stage (the ARGs above it, this FROM to the
# end), with the context's rootfs/ as --from=rootfs ---
FROM scratch
ARG PULUMI_VERSION
ARG K8S_PROVIDER_VERSION
COPY --from=rootfs /rootfs /
WORKDIR /app
# tini as PID 1: it reaps what gets re-parented to it (Node does not wait() for processes it
# did not start, so a provider plugin whose CLI was killed would stay a zombie) and hands
# SIGTERM to Node only (not to its process group: the running Pulumi CLI is left to finish).
# CA roots in /etc/ssl/certs for the Pulumi CLI (Go) when the state is behind https.
# NODE_OPTIONS: V8 sizes its heap from the container's memory limit (Node 24 reads the
# cgroup: a 1120 MiB heap at 2Gi) and keeps what the start-up burst grew (every object
# listed, every VirtualMCPServer reconciled): at a 2Gi limit, 308 MiB RSS with 500 cached
# without flags, 233 MiB with these (docs/benchmarks.md, "Heap defaults"). The
# cap is a share of the limit, not a fixed size, so a larger limit still gives a larger heap;
# the other 75% are for the Pulumi CLI and provider processes of the running operations.
# The chart sets the same string (controller.nodeOptions); test/unit/deploy.test.ts keeps
# them equal.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=2 --max-old-space-size-percentage=25" \
    PATH=/opt/pulumi/bin:/usr/local/bin:/usr/bin \
    VMCP_PULUMI_ROOT=/opt/pulumi \
    PULUMI_HOME=/var/lib/vmcp-operator/pulumi-home \
    PULUMI_SKIP_UPDATE_CHECK=true \
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
    HOME=/tmp \
    TMPDIR=/tmp
LABEL org.opencontainers.image.title="vmcp-operator" \
      org.opencontainers.image.description="ToolHive VirtualMCPServer controller on the Pulumi Automation API" \
      org.opencontainers.image.licenses="Apache-2.0" \
      dev.vmcp-operator.pulumi.version="${PULUMI_VERSION}" \
      dev.vmcp-operator.pulumi-kubernetes.version="${K8S_PROVIDER_VERSION}"
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/cli/main.js", "controller"]
