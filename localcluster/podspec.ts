// What the process kubelet reads from a pod spec, as pure functions: which binary runs an
// image, the environment (values and valueFrom), the files of each volume, the mount
// script for the pod's mount namespace, the probes, the restart back-off. The kubelet
// (kubelet.ts) fetches the referenced Secrets and ConfigMaps first and passes them in.
import type { V1Container, V1DownwardAPIVolumeFile, V1Pod, V1Probe, V1Volume } from "@kubernetes/client-node";

/** A container config problem: the pod waits with this reason until it is fixed (kubelet's names). */
export class ContainerConfigError extends Error {
  constructor(
    readonly reason: "CreateContainerConfigError" | "ContainerCreating" | "ErrImageNeverPull",
    message: string,
  ) {
    super(message);
  }
}

/** Image reference (exact, with tag) → local binary that plays its entrypoint. */
export type ImageMap = Readonly<Record<string, string>>;

/** Where an image's binary is mounted inside the pod (the entrypoint when `command` is unset). */
export const ENTRYPOINT_DIR = "/usr/local/bin";

/** The Secrets and ConfigMaps of the pod's namespace, by name; values decoded. */
export interface Referenced {
  secrets: ReadonlyMap<string, Readonly<Record<string, Buffer>>>;
  configMaps: ReadonlyMap<string, Readonly<Record<string, Buffer>>>;
}

/** Names of the Secrets and ConfigMaps the pod reads (env, envFrom, volumes, projected sources). */
export function referencedNames(pod: V1Pod): { secrets: string[]; configMaps: string[] } {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
      if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    }
    for (const f of c.envFrom ?? []) {
      if (f.secretRef?.name) secrets.add(f.secretRef.name);
      if (f.configMapRef?.name) configMaps.add(f.configMapRef.name);
    }
  }
  for (const v of pod.spec?.volumes ?? []) {
    if (v.secret?.secretName) secrets.add(v.secret.secretName);
    if (v.configMap?.name) configMaps.add(v.configMap.name);
    for (const s of v.projected?.sources ?? []) {
      if (s.secret?.name) secrets.add(s.secret.name);
      if (s.configMap?.name) configMaps.add(s.configMap.name);
    }
  }
  return { secrets: [...secrets].sort(), configMaps: [...configMaps].sort() };
}

/** The value of a downward-API field path (the ones a kubelet supports for env and volumes). */
export function fieldValue(pod: V1Pod, fieldPath: string): string {
  const m = pod.metadata ?? {};
  const label = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (label) return (label[1] === "labels" ? m.labels : m.annotations)?.[label[2] as string] ?? "";
  const values: Record<string, string | undefined> = {
    "metadata.name": m.name,
    "metadata.namespace": m.namespace,
    "metadata.uid": m.uid,
    "spec.nodeName": pod.spec?.nodeName,
    "spec.serviceAccountName": pod.spec?.serviceAccountName,
    "status.podIP": pod.status?.podIP,
    "status.hostIP": pod.status?.hostIP,
  };
  if (!(fieldPath in values))
    throw new ContainerConfigError(
      "CreateContainerConfigError",
      `unsupported fieldRef.fieldPath ${fieldPath}`,
    );
  return values[fieldPath] ?? "";
}

function keyOf(
  kind: "secret" | "configmap",
  objects: ReadonlyMap<string, Readonly<Record<string, Buffer>>>,
  ref: { name?: string; key: string; optional?: boolean },
): string | undefined {
  const data = objects.get(ref.name ?? "");
  if (data === undefined) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError("CreateContainerConfigError", `${kind} "${ref.name}" not found`);
  }
  const value = data[ref.key];
  if (value === undefined) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(
      "CreateContainerConfigError",
      `couldn't find key ${ref.key} in ${kind === "secret" ? "Secret" : "ConfigMap"} ${ref.name}`,
    );
  }
  return value.toString("utf8");
}

/** $(VAR) references in env values and args, expanded as the kubelet does ($$ escapes). */
export function expand(text: string, env: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    whole === "$$" ? "$" : name !== undefined && name in env ? (env[name] as string) : whole,
  );
}

/** The container's environment: envFrom first, then env in order (later entries win). */
export function containerEnv(pod: V1Pod, c: V1Container, refs: Referenced): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of c.envFrom ?? []) {
    const prefix = f.prefix ?? "";
    const source = f.secretRef
      ? {
          kind: "secret" as const,
          name: f.secretRef.name,
          optional: f.secretRef.optional,
          objects: refs.secrets,
        }
      : {
          kind: "configmap" as const,
          name: f.configMapRef?.name,
          optional: f.configMapRef?.optional,
          objects: refs.configMaps,
        };
    const data = source.objects.get(source.name ?? "");
    if (data === undefined) {
      if (source.optional) continue;
      throw new ContainerConfigError(
        "CreateContainerConfigError",
        `${source.kind} "${source.name}" not found`,
      );
    }
    for (const [k, v] of Object.entries(data))
      env[`${prefix}${k}`] = v.toString("utf8").split("\0")[0] as string;
  }
  for (const e of c.env ?? []) {
    const from = e.valueFrom;
    let value: string | undefined;
    if (!from) value = expand(e.value ?? "", env);
    else if (from.secretKeyRef) value = keyOf("secret", refs.secrets, from.secretKeyRef);
    else if (from.configMapKeyRef) value = keyOf("configmap", refs.configMaps, from.configMapKeyRef);
    else if (from.fieldRef) value = fieldValue(pod, from.fieldRef.fieldPath);
    else
      throw new ContainerConfigError(
        "CreateContainerConfigError",
        `env ${e.name}: only secretKeyRef, configMapKeyRef and fieldRef are supported`,
      );
    // execve ends a variable at its first NUL byte; Node refuses one outright.
    if (value !== undefined) env[e.name] = value.split("\0")[0] as string;
  }
  return env;
}

/** One file of a volume, relative to the volume's directory. */
export interface VolumeFile {
  path: string;
  content: Buffer;
  mode: number;
}

export type VolumeContent =
  | { kind: "files"; files: VolumeFile[]; readOnly: true }
  | { kind: "emptyDir" }
  | {
      kind: "token";
      files: VolumeFile[];
      audience: string | undefined;
      tokenPath: string;
      expirationSeconds: number;
    };

function keyFiles(
  kind: "secret" | "configmap",
  data: Readonly<Record<string, Buffer>> | undefined,
  name: string,
  items: readonly { key: string; path: string; mode?: number }[] | undefined,
  defaultMode: number,
  optional: boolean | undefined,
): VolumeFile[] {
  if (data === undefined) {
    if (optional) return [];
    throw new ContainerConfigError(
      "ContainerCreating",
      `MountVolume.SetUp failed: ${kind} "${name}" not found`,
    );
  }
  const chosen: readonly { key: string; path: string; mode?: number }[] = items?.length
    ? items
    : Object.keys(data)
        .sort()
        .map((key) => ({ key, path: key }));
  return chosen.map((item) => {
    const content = data[item.key];
    if (content === undefined)
      throw new ContainerConfigError(
        "ContainerCreating",
        `MountVolume.SetUp failed: ${kind} "${name}" has no key ${item.key}`,
      );
    return { path: item.path, content, mode: item.mode ?? defaultMode };
  });
}

/**
 * Files of downward API items. Only fieldRef is played: a resourceFieldRef (limits and
 * requests) would need the cgroup figures this kubelet does not enforce, so it refuses the
 * pod rather than write a file with a made-up value or no file at all.
 */
function downwardFiles(
  pod: V1Pod,
  volume: string,
  items: V1DownwardAPIVolumeFile[] | undefined,
  defaultMode: number,
): VolumeFile[] {
  return (items ?? []).map((item) => {
    if (!item.fieldRef)
      throw new ContainerConfigError(
        "CreateContainerConfigError",
        `volume ${volume}: downwardAPI item ${item.path}: only fieldRef is supported`,
      );
    return {
      path: item.path,
      content: Buffer.from(fieldValue(pod, item.fieldRef.fieldPath)),
      mode: item.mode ?? defaultMode,
    };
  });
}

/** What a volume holds. configMap/secret/projected/downwardAPI are files; emptyDir a writable dir. */
export function volumeContent(pod: V1Pod, v: V1Volume, refs: Referenced): VolumeContent {
  if (v.emptyDir) return { kind: "emptyDir" };
  if (v.downwardAPI)
    return {
      kind: "files",
      readOnly: true,
      files: downwardFiles(pod, v.name, v.downwardAPI.items, v.downwardAPI.defaultMode ?? 0o644),
    };
  if (v.configMap)
    return {
      kind: "files",
      readOnly: true,
      files: keyFiles(
        "configmap",
        refs.configMaps.get(v.configMap.name ?? ""),
        v.configMap.name ?? "",
        v.configMap.items,
        v.configMap.defaultMode ?? 0o644,
        v.configMap.optional,
      ),
    };
  if (v.secret)
    return {
      kind: "files",
      readOnly: true,
      files: keyFiles(
        "secret",
        refs.secrets.get(v.secret.secretName ?? ""),
        v.secret.secretName ?? "",
        v.secret.items,
        v.secret.defaultMode ?? 0o644,
        v.secret.optional,
      ),
    };
  if (v.projected) {
    const mode = v.projected.defaultMode ?? 0o644;
    const files: VolumeFile[] = [];
    let token: { audience: string | undefined; path: string; expirationSeconds: number } | undefined;
    for (const s of v.projected.sources ?? []) {
      if (s.configMap)
        files.push(
          ...keyFiles(
            "configmap",
            refs.configMaps.get(s.configMap.name ?? ""),
            s.configMap.name ?? "",
            s.configMap.items,
            mode,
            s.configMap.optional,
          ),
        );
      else if (s.secret)
        files.push(
          ...keyFiles(
            "secret",
            refs.secrets.get(s.secret.name ?? ""),
            s.secret.name ?? "",
            s.secret.items,
            mode,
            s.secret.optional,
          ),
        );
      else if (s.downwardAPI) files.push(...downwardFiles(pod, v.name, s.downwardAPI.items, mode));
      else if (s.serviceAccountToken)
        token = {
          audience: s.serviceAccountToken.audience,
          path: s.serviceAccountToken.path,
          expirationSeconds: s.serviceAccountToken.expirationSeconds ?? 3607,
        };
    }
    if (token)
      return {
        kind: "token",
        files,
        audience: token.audience,
        tokenPath: token.path,
        expirationSeconds: token.expirationSeconds,
      };
    return { kind: "files", readOnly: true, files };
  }
  throw new ContainerConfigError(
    "ContainerCreating",
    `volume ${v.name}: only configMap, secret, projected, downwardAPI and emptyDir volumes are supported`,
  );
}

/** One bind mount inside the pod's mount namespace. */
export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The shell script run (as root) inside the pod's fresh mount namespace. A target that does
 * not exist on this machine (e.g. /etc/vmcp-config) gets a mount point without touching the
 * host: its nearest existing ancestor is covered by an overlay whose upper layer lives in
 * the pod's directory. All mount points are made first, then the binds, so a later overlay
 * never hides an earlier bind.
 */
export function mountScript(mounts: readonly Mount[], overlayDir: string): string {
  const lines = [
    "set -eu",
    `ov=${quote(overlayDir)}; n=0; ovs=""`,
    // inside DIR: is DIR in one of our overlays (where mkdir does not reach the host)?
    'inside() { for o in $ovs; do case "$1/" in "$o"/*) return 0;; esac; done; return 1; }',
    // point SOURCE TARGET: make TARGET exist (a dir, or a file when SOURCE is a file).
    "point() {",
    '  [ -e "$2" ] && return 0',
    '  a=$(dirname "$2"); while [ ! -e "$a" ]; do a=$(dirname "$a"); done',
    '  if ! inside "$a"; then',
    '    [ "$a" != / ] || { echo "cannot make mount point $2: only / exists above it" >&2; exit 1; }',
    '    n=$((n+1)); mkdir -p "$ov/$n/upper" "$ov/$n/work"',
    '    mount -t overlay overlay -o "lowerdir=$a,upperdir=$ov/$n/upper,workdir=$ov/$n/work" "$a"',
    '    ovs="$ovs $a"',
    "  fi",
    '  if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")"; : > "$2"; fi',
    "}",
  ];
  for (const m of mounts) lines.push(`point ${quote(m.source)} ${quote(m.target)}`);
  for (const m of mounts) {
    lines.push(`mount --bind ${quote(m.source)} ${quote(m.target)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${quote(m.target)}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * How long the preStop hook holds a container before SIGTERM, in milliseconds: the `sleep`
 * action (what a distroless image can use: no shell to exec). exec and httpGet hooks are
 * refused by name rather than skipped, so a pod never stops differently than it says.
 */
export function preStopMs(c: V1Container): number {
  const hook = c.lifecycle?.preStop;
  if (!hook) return 0;
  if (hook.sleep) return Math.max(0, hook.sleep.seconds) * 1000;
  throw new ContainerConfigError(
    "CreateContainerConfigError",
    `container ${c.name}: lifecycle.preStop: only the sleep action is supported by the process kubelet`,
  );
}

/** An HTTP GET or TCP probe against the pod IP, in milliseconds. */
export interface ProbeTarget {
  kind: "http" | "tcp";
  url: string;
  port: number;
  headers: Record<string, string>;
  initialDelayMs: number;
  periodMs: number;
  timeoutMs: number;
  failureThreshold: number;
  successThreshold: number;
}

/** A named port (`http`) resolves against the container's ports, as the kubelet does. */
export function probeTarget(
  probe: V1Probe | undefined,
  c: V1Container,
  podIP: string,
): ProbeTarget | undefined {
  if (!probe) return undefined;
  const portOf = (port: number | string | undefined): number => {
    if (typeof port === "number") return port;
    const named = c.ports?.find((p) => p.name === port)?.containerPort;
    if (named !== undefined) return named;
    const n = Number(port);
    if (Number.isInteger(n)) return n;
    throw new ContainerConfigError(
      "CreateContainerConfigError",
      `probe port "${String(port)}" is not a port of ${c.name}`,
    );
  };
  const timing = {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: (probe.periodSeconds ?? 10) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
    failureThreshold: probe.failureThreshold ?? 3,
    successThreshold: probe.successThreshold ?? 1,
  };
  if (probe.httpGet) {
    const port = portOf(probe.httpGet.port as number | string);
    const scheme = (probe.httpGet.scheme ?? "HTTP").toLowerCase();
    const path = probe.httpGet.path ?? "/";
    const headers = Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value]));
    return {
      kind: "http",
      url: `${scheme}://${podIP}:${port}${path.startsWith("/") ? path : `/${path}`}`,
      port,
      headers,
      ...timing,
    };
  }
  if (probe.tcpSocket) {
    const port = portOf(probe.tcpSocket.port as number | string);
    return { kind: "tcp", url: `tcp://${podIP}:${port}`, port, headers: {}, ...timing };
  }
  throw new ContainerConfigError(
    "CreateContainerConfigError",
    `container ${c.name}: only httpGet and tcpSocket probes are supported`,
  );
}

/** The kubelet's crash-loop back-off: base, doubled per restart, capped. */
export function backoffMs(restarts: number, baseMs: number, capMs: number): number {
  if (restarts <= 0) return 0;
  return Math.min(capMs, baseMs * 2 ** (restarts - 1));
}

/** The argv of a container: command (default: the image's binary) then args, $(VAR) expanded. */
export function containerArgv(
  c: V1Container,
  binary: string,
  env: Readonly<Record<string, string>>,
): string[] {
  const entry = c.command?.length
    ? c.command.map((a) => expand(a, env))
    : [`${ENTRYPOINT_DIR}/${binaryName(binary)}`];
  return [...entry, ...(c.args ?? []).map((a) => expand(a, env))];
}

export function binaryName(binary: string): string {
  return binary.slice(binary.lastIndexOf("/") + 1);
}

/** The uid/gid/supplementary group a container runs as (container securityContext over the pod's). */
export function runAs(pod: V1Pod, c: V1Container): { uid: number; gid: number; fsGroup: number | undefined } {
  const ps = pod.spec?.securityContext;
  const cs = c.securityContext;
  const uid = cs?.runAsUser ?? ps?.runAsUser ?? 0;
  const gid = cs?.runAsGroup ?? ps?.runAsGroup ?? uid;
  return { uid, gid, fsGroup: ps?.fsGroup };
}
