// The process kubelet: a Node of the local plane whose pods really run, as local processes.
// A pod whose containers all use an image of `images` (e.g. ToolHive's vmcp at the tag we
// deploy) is steered here at admission (admission.ts: node selector + toleration of the
// node's taint); everything else stays on kwok's node. Per pod: a pause process holding a
// network namespace (own IP on the kubelet's bridge, podnet.ts), a mount namespace (the
// volumes bound at their mountPath) and a UTS namespace (hostname = pod name); each
// container is the image's binary entered into those namespaces as the pod's user, with
// the env the spec resolves to, restarted with back-off when it exits, probed over HTTP at
// podIP:port. Status goes to pods/status as a kubelet writes it; logs to one file per
// container. Every process is in its own process group, recorded for the exit hooks and
// a watchdog: nothing outlives the kubelet, not even after a SIGKILL of its Node process.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  mkdirSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  Watch,
  type V1Container,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
} from "@kubernetes/client-node";
import { applyAdmissionPolicy, deleteAdmissionPolicy, NODE_LABEL } from "./admission.js";
import { consoleLogger, type Logger } from "./log.js";
import { attachPod, createBridge, deleteLinkSync, linksPattern, type Bridge } from "./podnet.js";
import {
  backoffMs,
  binaryName,
  containerArgv,
  containerEnv,
  ContainerConfigError,
  ENTRYPOINT_DIR,
  mountScript,
  preStopMs,
  probeTarget,
  referencedNames,
  runAs,
  volumeContent,
  type ImageMap,
  type Mount,
  type ProbeTarget,
  type Referenced,
} from "./podspec.js";
import { onEmergency, signalGroup, spawnWatchdog } from "./processes.js";

export interface ProcessKubeletOptions {
  /** Admin kubeconfig text of the plane. */
  kubeconfig: string;
  /** Work dir: pods/<ns>_<name>_<uid>/ (volumes, logs), pids. Created if missing. */
  dir: string;
  /** Image reference (with tag) → the binary that plays it. */
  images: ImageMap;
  nodeName?: string;
  /** Crash-loop back-off: first delay and cap (kubelet: 10 s, 5 min). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  log?: Logger;
}

export interface ProcessPod {
  namespace: string;
  name: string;
  uid: string;
  ip: string | undefined;
  /** Combined stdout/stderr of each container (appended across restarts). */
  logFiles: Record<string, string>;
}

export interface ProcessKubelet {
  nodeName: string;
  /** The bridge address pods reach the host at: bind test backends here. */
  gateway: string;
  podCidr: string;
  images: ImageMap;
  /** The pods running here now. */
  pods(): ProcessPod[];
  /** Pids of every process the kubelet runs now (pause and containers). */
  pids(): number[];
  stop(): Promise<void>;
}

const PAUSE = ["unshare", "--net", "--mount", "--uts", "--propagation", "private", "--", "sleep", "infinity"];
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** One process of a pod in its own process group. */
interface Proc {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

function start(
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; log?: string; cwd?: string },
): Proc {
  const fd = opts.log !== undefined ? openSync(opts.log, "a") : undefined;
  let child: ChildProcess;
  try {
    child = spawn(command, [...args], {
      detached: true,
      stdio: ["ignore", fd ?? "ignore", fd ?? "ignore"],
      env: opts.env ?? process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  child.unref();
  if (child.pid === undefined) throw new Error(`failed to start ${command}`);
  const proc: Proc = {
    child,
    pid: child.pid,
    done: false,
    exited: new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        proc.done = true;
        resolve({ code, signal });
      });
      child.once("error", () => {
        proc.done = true;
        resolve({ code: 127, signal: null });
      });
    }),
  };
  return proc;
}

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err.trim()}`)),
    );
  });
}

async function stopProc(p: Proc | undefined, graceMs: number): Promise<void> {
  if (!p || p.done) return;
  p.child.ref();
  signalGroup(p.pid, "SIGTERM");
  const timer = setTimeout(() => signalGroup(p.pid, "SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(timer);
  signalGroup(p.pid, "SIGKILL"); // anything it forked
}

/** One probe attempt: true on 200–399 (HTTP) or an accepted connection (TCP). */
function probeOnce(t: ProbeTarget): Promise<boolean> {
  return new Promise((resolve) => {
    if (t.kind === "tcp") {
      const url = new URL(t.url.replace("tcp://", "http://"));
      const sock = connect({ host: url.hostname, port: t.port, timeout: t.timeoutMs });
      sock.once("connect", () => (sock.destroy(), resolve(true)));
      sock.once("timeout", () => (sock.destroy(), resolve(false)));
      sock.once("error", () => resolve(false));
      return;
    }
    const req = httpRequest(t.url, {
      headers: { "user-agent": "kube-probe/process-kubelet", ...t.headers },
      timeout: t.timeoutMs,
    });
    req.once("response", (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.once("timeout", () => req.destroy(new Error("timeout")));
    req.once("error", () => resolve(false));
    req.end();
  });
}

/** Runs a probe until stopped; `onResult` sees the thresholded verdict when it changes. */
function probeLoop(t: ProbeTarget, onResult: (ok: boolean) => void): () => void {
  let stopped = false;
  let ok: boolean | undefined;
  let successes = 0;
  let failures = 0;
  void (async () => {
    await sleep(t.initialDelayMs);
    while (!stopped) {
      const pass = await probeOnce(t);
      if (stopped) return;
      if (pass) {
        failures = 0;
        successes++;
        if (ok !== true && successes >= t.successThreshold) onResult((ok = true));
      } else {
        successes = 0;
        failures++;
        if (ok !== false && failures >= t.failureThreshold) onResult((ok = false));
      }
      await sleep(t.periodMs);
    }
  })();
  return () => (stopped = true);
}

interface ContainerRun {
  name: string;
  image: string;
  restartCount: number;
  state: V1ContainerStatus["state"];
  lastState: V1ContainerStatus["lastState"];
  ready: boolean;
  started: boolean;
  proc: Proc | undefined;
}

/** Everything the kubelet does for one pod, from sandbox to teardown. */
class PodWorker {
  private pause: Proc | undefined;
  private ip: string | undefined;
  private veth: string | undefined;
  private startTime = new Date();
  private stopped = false;
  private readonly containers: ContainerRun[];
  private writing: Promise<void> | undefined;
  private dirty = false;
  private finished: Promise<void> = Promise.resolve();
  private phase: "Pending" | "Running" | "Succeeded" | "Failed" = "Pending";
  readonly dir: string;

  constructor(
    private pod: V1Pod,
    private readonly k: Kubelet,
  ) {
    const m = pod.metadata ?? {};
    this.dir = join(k.podsDir, `${m.namespace}_${m.name}_${(m.uid ?? "").slice(0, 8)}`);
    this.containers = (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? "",
      restartCount: 0,
      state: { waiting: { reason: "ContainerCreating" } },
      lastState: {},
      ready: false,
      started: false,
      proc: undefined,
    }));
  }

  get uid(): string {
    return this.pod.metadata?.uid ?? "";
  }

  describe(): ProcessPod {
    return {
      namespace: this.pod.metadata?.namespace ?? "",
      name: this.pod.metadata?.name ?? "",
      uid: this.uid,
      ip: this.ip,
      logFiles: Object.fromEntries(this.containers.map((c) => [c.name, this.logFile(c.name)])),
    };
  }

  pids(): number[] {
    return [this.pause, ...this.containers.map((c) => c.proc)]
      .filter((p): p is Proc => p !== undefined && !p.done)
      .map((p) => p.pid);
  }

  update(pod: V1Pod): void {
    this.pod = pod;
  }

  logFile(container: string): string {
    return join(this.dir, `${container}.log`);
  }

  begin(): void {
    this.finished = this.main().catch((err) =>
      this.k.log("pod worker failed", { pod: this.key(), error: message(err) }),
    );
  }

  private key(): string {
    return `${this.pod.metadata?.namespace}/${this.pod.metadata?.name}`;
  }

  private async main(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.markDirty();
    await this.retry("sandbox", () => this.sandbox());
    if (this.stopped) return;
    const binaries = new Map<string, string>();
    for (const c of this.containers) {
      const binary = this.k.images[c.image];
      if (binary === undefined) {
        c.state = {
          waiting: {
            reason: "ErrImageNeverPull",
            message: `the process kubelet has no binary for image ${c.image}`,
          },
        };
        this.markDirty();
        return;
      }
      binaries.set(c.name, binary);
    }
    await this.retry("volumes", () => this.mountVolumes([...new Set(binaries.values())]));
    if (this.stopped) return;
    this.phase = "Running";
    await Promise.all(
      (this.pod.spec?.containers ?? []).map((c, i) =>
        this.supervise(c, this.containers[i] as ContainerRun, binaries.get(c.name) as string),
      ),
    );
  }

  /** Repeats `step` every 2 s until it succeeds or the pod stops; its error is the waiting reason. */
  private async retry(what: string, step: () => Promise<void>): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      try {
        await step();
        return;
      } catch (err) {
        const reason = err instanceof ContainerConfigError ? err.reason : "ContainerCreating";
        for (const c of this.containers)
          c.state = { waiting: { reason, message: `${what}: ${message(err)}` } };
        this.markDirty();
        await sleep(2000);
      }
    }
  }

  private async sandbox(): Promise<void> {
    if (this.pause && !this.pause.done) return;
    this.pause = start(PAUSE[0] as string, PAUSE.slice(1), {});
    this.k.recordPids();
    this.ip ??= this.k.allocateIp();
    // The namespaces exist once unshare has exec'd sleep: /proc/<pid>/exe is then sleep.
    await this.k.waitForExec(this.pause.pid, "sleep");
    this.veth = await attachPod(this.k.bridge, this.pause.pid, this.ip);
    await run("nsenter", [
      "-t",
      String(this.pause.pid),
      "--uts",
      "--",
      "hostname",
      (this.pod.metadata?.name ?? "pod").slice(0, 63),
    ]);
    this.markDirty();
  }

  private async referenced(): Promise<Referenced> {
    const ns = this.pod.metadata?.namespace ?? "";
    const names = referencedNames(this.pod);
    const secrets = new Map<string, Record<string, Buffer>>();
    const configMaps = new Map<string, Record<string, Buffer>>();
    const missing = (err: unknown) => (err as { code?: number }).code === 404;
    for (const name of names.secrets) {
      try {
        const s = await this.k.core.readNamespacedSecret({ name, namespace: ns });
        secrets.set(
          name,
          Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")])),
        );
      } catch (err) {
        if (!missing(err)) throw err;
      }
    }
    for (const name of names.configMaps) {
      try {
        const c = await this.k.core.readNamespacedConfigMap({ name, namespace: ns });
        configMaps.set(name, {
          ...Object.fromEntries(Object.entries(c.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "utf8")])),
          ...Object.fromEntries(
            Object.entries(c.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]),
          ),
        });
      } catch (err) {
        if (!missing(err)) throw err;
      }
    }
    return { secrets, configMaps };
  }

  /** Writes each volume under <pod>/volumes/<name> and binds the mounts (and the image binaries) in the pod's mount namespace. */
  private async mountVolumes(binaries: string[]): Promise<void> {
    const refs = await this.referenced();
    const fsGroup = this.pod.spec?.securityContext?.fsGroup;
    const dirs = new Map<string, { dir: string; readOnly: boolean }>();
    for (const v of this.pod.spec?.volumes ?? []) {
      const content = volumeContent(this.pod, v, refs);
      const dir = join(this.dir, "volumes", v.name);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      if (content.kind === "emptyDir") {
        chmodSync(dir, 0o777);
        dirs.set(v.name, { dir, readOnly: false });
        continue;
      }
      const files = [...content.files];
      if (content.kind === "token")
        files.push({
          path: content.tokenPath,
          content: Buffer.from(await this.token(content.audience, content.expirationSeconds)),
          mode: 0o644,
        });
      for (const f of files) {
        const file = join(dir, f.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, f.content, { mode: f.mode });
        chmodSync(file, f.mode);
        if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
      }
      dirs.set(v.name, { dir, readOnly: true });
    }
    const mounts: Mount[] = binaries.map((b) => ({
      source: b,
      target: `${ENTRYPOINT_DIR}/${binaryName(b)}`,
      readOnly: true,
    }));
    for (const c of this.pod.spec?.containers ?? [])
      for (const vm of c.volumeMounts ?? []) {
        const vol = dirs.get(vm.name);
        if (!vol)
          throw new ContainerConfigError("ContainerCreating", `volumeMount ${vm.name}: no such volume`);
        mounts.push({
          source: vm.subPath ? join(vol.dir, vm.subPath) : vol.dir,
          target: vm.mountPath,
          readOnly: vol.readOnly || vm.readOnly === true,
        });
      }
    const pause = this.pause as Proc;
    await run("nsenter", [
      "-t",
      String(pause.pid),
      "--mount",
      "--",
      "sh",
      "-c",
      mountScript(mounts, join(this.dir, "overlay")),
    ]);
  }

  private async token(audience: string | undefined, expirationSeconds: number): Promise<string> {
    const m = this.pod.metadata ?? {};
    const res = await this.k.core.createNamespacedServiceAccountToken({
      name: this.pod.spec?.serviceAccountName ?? "default",
      namespace: m.namespace ?? "",
      body: {
        spec: {
          ...(audience !== undefined ? { audiences: [audience] } : { audiences: [] }),
          expirationSeconds: Math.max(600, expirationSeconds),
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: m.name ?? "", uid: m.uid ?? "" },
        },
      },
    });
    return res.status?.token ?? "";
  }

  /** Start → wait → back-off → start … for one container, honouring restartPolicy. */
  private async supervise(spec: V1Container, c: ContainerRun, binary: string): Promise<void> {
    const policy = this.pod.spec?.restartPolicy ?? "Always";
    while (!this.stopped) {
      let env: Record<string, string>;
      let argv: string[];
      let probes: { readiness?: ProbeTarget; liveness?: ProbeTarget; startup?: ProbeTarget };
      try {
        env = containerEnv(
          { ...this.pod, status: { ...this.pod.status, podIP: this.ip } },
          spec,
          await this.referenced(),
        );
        argv = containerArgv(spec, binary, env);
        preStopMs(spec); // an unsupported hook fails here, at start, not at deletion
        const ip = this.ip as string;
        probes = {
          readiness: probeTarget(spec.readinessProbe, spec, ip),
          liveness: probeTarget(spec.livenessProbe, spec, ip),
          startup: probeTarget(spec.startupProbe, spec, ip),
        };
      } catch (err) {
        const reason = err instanceof ContainerConfigError ? err.reason : "CreateContainerConfigError";
        c.state = { waiting: { reason, message: message(err) } };
        this.markDirty();
        await this.pausable(2000);
        continue;
      }
      let outcome: { code: number };
      try {
        outcome = await this.runOnce(spec, c, argv, env, probes);
      } catch (err) {
        c.state = { waiting: { reason: "RunContainerError", message: message(err) } };
        this.markDirty();
        await this.pausable(2000);
        continue;
      }
      if (this.stopped) return;
      const failed = outcome.code !== 0;
      if (policy === "Never" || (policy === "OnFailure" && !failed)) {
        this.phase = failed ? "Failed" : "Succeeded";
        this.markDirty();
        return;
      }
      c.restartCount++;
      const delay = backoffMs(c.restartCount, this.k.backoffBaseMs, this.k.backoffCapMs);
      c.lastState = c.state;
      c.state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${this.pod.metadata?.name}`,
        },
      };
      this.markDirty();
      await this.pausable(delay);
    }
  }

  private async pausable(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopped && Date.now() < until) await sleep(Math.min(250, until - Date.now()));
  }

  private async runOnce(
    spec: V1Container,
    c: ContainerRun,
    argv: string[],
    env: Record<string, string>,
    probes: { readiness?: ProbeTarget; liveness?: ProbeTarget; startup?: ProbeTarget },
  ): Promise<{ code: number }> {
    const pause = this.pause as Proc;
    const { uid, gid, fsGroup } = runAs(this.pod, spec);
    const dropAll = spec.securityContext?.capabilities?.drop?.includes("ALL") === true;
    const priv = [
      "setpriv",
      `--reuid=${uid}`,
      `--regid=${gid}`,
      ...(fsGroup !== undefined ? [`--groups=${fsGroup}`] : ["--clear-groups"]),
      ...(spec.securityContext?.allowPrivilegeEscalation === false ? ["--no-new-privs"] : []),
      ...(dropAll ? ["--inh-caps=-all", "--bounding-set=-all"] : []),
      "--",
    ];
    const args = [
      "-t",
      String(pause.pid),
      "--net",
      "--mount",
      "--uts",
      `--wd=${spec.workingDir ?? "/"}`,
      "--",
      ...priv,
      ...argv,
    ];
    const log = this.logFile(c.name);
    const fd = openSync(log, "a");
    writeSync(
      fd,
      `--- ${new Date().toISOString()} process kubelet: start ${c.name} (restart ${c.restartCount}): ${argv.join(" ")}\n`,
    );
    closeSync(fd);
    const proc = start("nsenter", args, {
      env: { PATH: DEFAULT_PATH, HOSTNAME: this.pod.metadata?.name ?? "", ...env },
      log,
    });
    c.proc = proc;
    this.k.recordPids();
    const startedAt = new Date().toISOString();
    c.state = { running: { startedAt: new Date(startedAt) } };
    c.started = probes.startup === undefined;
    c.ready = probes.readiness === undefined && c.started;
    this.markDirty();
    const stops: (() => void)[] = [];
    const restart = (why: string) => {
      const f = openSync(log, "a");
      writeSync(f, `--- ${new Date().toISOString()} process kubelet: ${why}; restarting\n`);
      closeSync(f);
      void stopProc(proc, (this.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000);
    };
    const steady = () => {
      if (probes.readiness)
        stops.push(probeLoop(probes.readiness, (ok) => ((c.ready = ok), this.markDirty())));
      if (probes.liveness)
        stops.push(probeLoop(probes.liveness, (ok) => (!ok ? restart("liveness probe failed") : undefined)));
    };
    if (probes.startup)
      stops.push(
        probeLoop(probes.startup, (ok) => {
          if (!ok) return restart("startup probe failed");
          if (c.started) return;
          c.started = true;
          c.ready = probes.readiness === undefined;
          this.markDirty();
          steady();
        }),
      );
    else steady();
    const exit = await proc.exited;
    for (const s of stops) s();
    signalGroup(proc.pid, "SIGKILL");
    c.proc = undefined;
    this.k.recordPids();
    c.ready = false;
    c.started = false;
    const code = exit.code ?? 128 + (exit.signal === "SIGKILL" ? 9 : 15);
    c.state = {
      terminated: {
        exitCode: code,
        ...(exit.signal ? { signal: exit.signal === "SIGKILL" ? 9 : 15 } : {}),
        reason: code === 0 ? "Completed" : "Error",
        startedAt: new Date(startedAt),
        finishedAt: new Date(),
      },
    };
    this.markDirty();
    return { code };
  }

  /**
   * Stops the containers: each one's preStop sleep (the container keeps serving), then
   * SIGTERM, then SIGKILL when the grace period, which counts the hook, runs out. Then the
   * sandbox. `hooks: false` (the kubelet itself stopping, a pod already gone) skips preStop.
   */
  async terminate(graceMs: number, hooks = true): Promise<void> {
    if (this.stopped) return this.finished;
    this.stopped = true;
    const specs = this.pod.spec?.containers ?? [];
    const hookMs = (name: string): number => {
      const spec = specs.find((s) => s.name === name);
      try {
        return spec ? Math.min(preStopMs(spec), graceMs) : 0;
      } catch {
        return 0; // refused at start: this container never ran
      }
    };
    await Promise.all(
      this.containers.map(async (c) => {
        const hold = hooks && c.proc && !c.proc.done ? hookMs(c.name) : 0;
        if (hold > 0) {
          const f = openSync(this.logFile(c.name), "a");
          writeSync(f, `--- ${new Date().toISOString()} process kubelet: preStop sleep ${hold} ms\n`);
          closeSync(f);
          await sleep(hold);
        }
        await stopProc(c.proc, Math.max(graceMs - hold, 1000));
      }),
    );
    await this.finished;
    await stopProc(this.pause, 1000);
    this.k.recordPids();
    if (this.veth) deleteLinkSync(this.veth);
    if (this.ip) this.k.releaseIp(this.ip);
  }

  killSync(): void {
    this.stopped = true;
    for (const p of [...this.containers.map((c) => c.proc), this.pause]) if (p) signalGroup(p.pid, "SIGKILL");
    if (this.veth) deleteLinkSync(this.veth);
  }

  private markDirty(): void {
    this.dirty = true;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.dirty && !this.k.stopped) {
        this.dirty = false;
        try {
          await this.writeStatus();
        } catch (err) {
          if ((err as { code?: number }).code === 404) return;
          this.dirty = true;
          await sleep(1000);
        }
      }
    })().finally(() => (this.writing = undefined));
  }

  private async writeStatus(): Promise<void> {
    const now = new Date();
    const ready = this.containers.every((c) => c.ready) && this.phase === "Running";
    const cond = (type: string, ok: boolean, reason?: string): V1PodCondition => {
      const prev = this.pod.status?.conditions?.find((x) => x.type === type);
      const status = ok ? "True" : "False";
      return {
        type,
        status,
        lastTransitionTime:
          prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : now,
        ...(reason && !ok ? { reason } : {}),
      };
    };
    const notReady = this.containers.filter((c) => !c.ready).map((c) => c.name);
    const scheduled = this.pod.status?.conditions?.find((x) => x.type === "PodScheduled");
    const conditions: V1PodCondition[] = [
      ...(scheduled ? [scheduled] : []),
      cond(
        "PodReadyToStartContainers",
        this.ip !== undefined && this.pause !== undefined && !this.pause.done,
      ),
      cond("Initialized", true),
      cond("ContainersReady", ready, "ContainersNotReady"),
      cond("Ready", ready, "ContainersNotReady"),
    ];
    const containerStatuses: V1ContainerStatus[] = this.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: `process://${this.k.images[c.image] ?? ""}`,
      containerID: c.proc ? `process://${c.proc.pid}` : undefined,
      ready: c.ready,
      started: c.started,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState ?? {},
    })) as V1ContainerStatus[];
    const status = {
      phase: this.phase,
      hostIP: this.k.bridge.subnet.gateway,
      hostIPs: [{ ip: this.k.bridge.subnet.gateway }],
      ...(this.ip ? { podIP: this.ip, podIPs: [{ ip: this.ip }] } : {}),
      startTime: this.startTime,
      conditions: conditions.map((c) =>
        (c.type === "Ready" || c.type === "ContainersReady") && !ready
          ? { ...c, message: `containers with unready status: [${notReady.join(" ")}]` }
          : c,
      ),
      containerStatuses,
    };
    const m = this.pod.metadata ?? {};
    const updated = await this.k.core.patchNamespacedPodStatus(
      { name: m.name ?? "", namespace: m.namespace ?? "", body: { status } },
      mergePatch,
    );
    if (updated.metadata?.uid === this.uid) this.pod = { ...this.pod, status: updated.status };
  }
}

class Kubelet {
  readonly core: CoreV1Api;
  readonly podsDir: string;
  readonly backoffBaseMs: number;
  readonly backoffCapMs: number;
  readonly log: Logger;
  stopped = false;
  private readonly workers = new Map<string, PodWorker>();
  private readonly usedIps = new Set<string>();
  private informer: ListWatch<V1Pod> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly pidFile: string;
  private watchdog: ChildProcess | undefined;
  private unregister: () => void = () => undefined;

  constructor(
    private readonly kc: KubeConfig,
    readonly opts: ProcessKubeletOptions & { nodeName: string },
    readonly bridge: Bridge,
    readonly images: ImageMap,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.podsDir = join(opts.dir, "pods");
    mkdirSync(this.podsDir, { recursive: true });
    this.pidFile = join(opts.dir, "pids");
    this.backoffBaseMs = opts.backoffBaseMs ?? 10_000;
    this.backoffCapMs = opts.backoffCapMs ?? 300_000;
    this.log = opts.log ?? consoleLogger("kubelet");
    this.recordPids();
    this.watchdog = spawnWatchdog(this.pidFile, { links: linksPattern(bridge.id) });
    this.unregister = onEmergency(this);
  }

  allocateIp(): string {
    for (let n = 2; n < 255; n++) {
      const ip = `${this.bridge.subnet.prefix}.${n}`;
      if (!this.usedIps.has(ip)) {
        this.usedIps.add(ip);
        return ip;
      }
    }
    throw new Error(`no free pod IP in ${this.bridge.subnet.cidr}`);
  }

  releaseIp(ip: string): void {
    this.usedIps.delete(ip);
  }

  async waitForExec(pid: number, name: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        const { readlinkSync } = await import("node:fs");
        if (readlinkSync(`/proc/${pid}/exe`).endsWith(`/${name}`)) return;
      } catch {
        throw new Error(`pause process ${pid} exited`);
      }
      await sleep(20);
    }
    throw new Error(`pause process ${pid} did not start`);
  }

  pids(): number[] {
    return [...this.workers.values()].flatMap((w) => w.pids());
  }

  recordPids(): void {
    writeFileSync(
      this.pidFile,
      this.pids()
        .map((p) => `${p}\n`)
        .join(""),
    );
  }

  pods(): ProcessPod[] {
    return [...this.workers.values()].map((w) => w.describe());
  }

  async registerNode(): Promise<void> {
    const name = this.opts.nodeName;
    await applyAdmissionPolicy(this.kc, name, Object.keys(this.images));
    try {
      await this.core.deleteNode({ name });
    } catch {
      // not there: the usual case
    }
    await this.core.createNode({
      body: {
        metadata: {
          name,
          labels: {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            [NODE_LABEL]: name,
            type: "process",
          },
        },
        spec: {
          podCIDR: this.bridge.subnet.cidr,
          taints: [{ key: NODE_LABEL, value: name, effect: "NoSchedule" }],
        },
      },
    });
    await this.heartbeat();
    const leases = this.kc.makeApiClient(CoordinationV1Api);
    const namespace = "kube-node-lease";
    // The node lifecycle controller reads the Lease as the heartbeat (kwok's is 40 s too).
    const lease = async () => {
      const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new V1MicroTime(Date.now()) };
      const current = await leases.readNamespacedLease({ name, namespace }).catch(() => undefined);
      if (current) await leases.replaceNamespacedLease({ name, namespace, body: { ...current, spec } });
      else await leases.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec } });
    };
    await lease();
    this.timers.push(setInterval(() => void lease().catch(() => undefined), 10_000).unref());
    this.timers.push(setInterval(() => void this.heartbeat().catch(() => undefined), 30_000).unref());
  }

  private async heartbeat(): Promise<void> {
    const now = new Date();
    const cond = (type: string, status: string, reason: string) => ({
      type,
      status,
      reason,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    await this.core.patchNodeStatus(
      {
        name: this.opts.nodeName,
        body: {
          status: {
            capacity: { cpu: "32", memory: "64Gi", pods: "110" },
            allocatable: { cpu: "32", memory: "64Gi", pods: "110" },
            addresses: [
              { type: "InternalIP", address: this.bridge.subnet.gateway },
              { type: "Hostname", address: this.opts.nodeName },
            ],
            conditions: [
              cond("Ready", "True", "KubeletReady"),
              cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
              cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
              cond("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            nodeInfo: {
              kubeletVersion: "v1.36.3-process",
              kubeProxyVersion: "",
              operatingSystem: "linux",
              architecture: "amd64",
              containerRuntimeVersion: "process://local",
              kernelVersion: "",
              osImage: "local processes",
              machineID: "",
              systemUUID: "",
              bootID: "",
            },
          },
        },
      },
      mergePatch,
    );
  }

  watchPods(): void {
    const path = "/api/v1/pods";
    const selector = `spec.nodeName=${this.opts.nodeName}`;
    const list = () => this.core.listPodForAllNamespaces({ fieldSelector: selector }) as never;
    const informer = new ListWatch<V1Pod>(path, new Watch(this.kc), list, false, undefined, selector);
    informer.on("add", (p) => this.onPod(p));
    informer.on("update", (p) => this.onPod(p));
    informer.on("delete", (p) => void this.onGone(p));
    informer.on("error", () => {
      if (this.stopped) return;
      setTimeout(() => void informer.start().catch(() => undefined), 1000).unref();
    });
    this.informer = informer;
    void informer.start().catch(() => undefined);
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid ?? "";
    let w = this.workers.get(uid);
    if (!w) {
      if (pod.metadata?.deletionTimestamp) return void this.finalDelete(pod);
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
      w = new PodWorker(pod, this);
      this.workers.set(uid, w);
      w.begin();
    } else w.update(pod);
    if (pod.metadata?.deletionTimestamp) void this.terminate(pod, w);
  }

  private async terminate(pod: V1Pod, w: PodWorker): Promise<void> {
    const grace =
      (pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    await w.terminate(grace);
    this.workers.delete(w.uid);
    await this.finalDelete(pod);
  }

  private async finalDelete(pod: V1Pod): Promise<void> {
    await this.core
      .deleteNamespacedPod({
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "",
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid ?? "" } },
      })
      .catch(() => undefined);
  }

  private async onGone(pod: V1Pod): Promise<void> {
    const w = this.workers.get(pod.metadata?.uid ?? "");
    if (!w) return;
    await w.terminate(2000, false);
    this.workers.delete(w.uid);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.informer?.stop();
    await Promise.all([...this.workers.values()].map((w) => w.terminate(5000, false)));
    this.workers.clear();
    await deleteAdmissionPolicy(this.kc, this.opts.nodeName).catch(() => undefined);
    await this.core.deleteNode({ name: this.opts.nodeName }).catch(() => undefined);
    deleteLinkSync(this.bridge.name);
    if (this.watchdog?.pid !== undefined) signalGroup(this.watchdog.pid, "SIGKILL");
    rmSync(this.pidFile, { force: true });
    this.unregister();
  }

  killSync(): void {
    this.stopped = true;
    for (const w of this.workers.values()) w.killSync();
    deleteLinkSync(this.bridge.name);
    if (this.watchdog?.pid !== undefined) signalGroup(this.watchdog.pid, "SIGKILL");
  }
}

/** Starts the process kubelet against a running plane (needs root: network and mount namespaces). */
export async function startProcessKubelet(opts: ProcessKubeletOptions): Promise<ProcessKubelet> {
  if (process.getuid?.() !== 0)
    throw new Error("the process kubelet needs root (it creates network and mount namespaces per pod)");
  if (Object.keys(opts.images).length === 0)
    throw new Error("the process kubelet needs at least one image → binary");
  mkdirSync(opts.dir, { recursive: true });
  const kc = new KubeConfig();
  kc.loadFromString(opts.kubeconfig);
  const bridge = await createBridge();
  const nodeName = opts.nodeName ?? `process-node-${randomBytes(2).toString("hex")}`;
  const k = new Kubelet(kc, { ...opts, nodeName }, bridge, opts.images);
  try {
    await k.registerNode();
    k.watchPods();
  } catch (err) {
    await k.stop();
    throw err;
  }
  k.log("process kubelet ready", {
    node: nodeName,
    pods: bridge.subnet.cidr,
    gateway: bridge.subnet.gateway,
    bridge: bridge.name,
  });
  return {
    nodeName,
    gateway: bridge.subnet.gateway,
    podCidr: bridge.subnet.cidr,
    images: opts.images,
    pods: () => k.pods(),
    pids: () => k.pids(),
    stop: () => k.stop(),
  };
}
