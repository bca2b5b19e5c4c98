// startControlPlane: etcd + kube-apiserver (+ kube-controller-manager, kube-scheduler and
// kwok with one fake node when `full`) on random loopback ports, in a work dir holding
// data, certs, credentials, kubeconfigs and one log file per component.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { writeAuthFiles, type LocalUser } from "./auth.js";
import { findBinary, kwokStageFiles } from "./binaries.js";
import { createFakeNode, FAKE_NODE_NAME, nodeReady } from "./fakenode.js";
import {
  apiserverArgs,
  controllerManagerArgs,
  etcdArgs,
  kwokArgs,
  schedulerArgs,
  servingCertFile,
  type Layout,
} from "./flags.js";
import { renderKubeconfig, writeKubeconfig } from "./kubeconfig.js";
import { consoleLogger, type Logger } from "./log.js";
import { freePorts } from "./ports.js";
import { Supervisor, type RunningProcess } from "./processes.js";
import { waitFor, waitForHttpOk } from "./readiness.js";
import { startProcessKubelet, type ProcessKubelet } from "./kubelet.js";
import type { ImageMap } from "./podspec.js";

export interface ControlPlaneOptions {
  /** Also run kube-controller-manager, kube-scheduler and kwok (default true). */
  full?: boolean;
  /** Work dir; default a fresh temp dir. An existing dir is reused (our files in it are replaced). */
  dir?: string;
  /** Leave the work dir (logs, etcd data) behind after stop(). */
  keep?: boolean;
  /** Per-step start timeout (default 60 s). */
  timeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL in stop() (default 5 s). */
  graceMs?: number;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /**
   * Also run the process kubelet (full plane only, needs root): pods whose images are all
   * in `images` run as local processes on its node; everything else stays on kwok's.
   */
  runPods?: { images: ImageMap; backoffBaseMs?: number };
}

export interface ComponentProcess {
  name: string;
  pid: number;
  command: string;
  logFile: string;
}

export interface ControlPlane {
  dir: string;
  /** `<dir>/admin.kubeconfig`: the admin (system:masters) user. */
  kubeconfigPath: string;
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Admin bearer token. */
  token: string;
  /** PEM bundle that verifies the apiserver's self-signed serving certificate. */
  caPem: string;
  users: { admin: LocalUser; controller: LocalUser };
  /** A kubeconfig (text) for another token user of this plane, e.g. users.controller. */
  kubeconfigFor(user: LocalUser): string;
  full: boolean;
  processes: readonly ComponentProcess[];
  /** The process kubelet, when started with `runPods`. */
  kubelet: ProcessKubelet | undefined;
  /** Milliseconds per start step, plus `total`. */
  timings: Readonly<Record<string, number>>;
  /** Kills every process (SIGTERM, SIGKILL after the grace period) and removes the work dir unless `keep`. */
  stop(): Promise<void>;
}

/** Entries this module creates inside the work dir; only these are removed from a user-given dir. */
const OWNED_ENTRIES = ["etcd", "pki", "logs", "tokens.csv", "sa.key", "admin.kubeconfig", "pids", "kubelet"];

function prepareDir(opts: ControlPlaneOptions): { dir: string; ownsDir: boolean } {
  if (opts.dir === undefined) return { dir: mkdtempSync(join(tmpdir(), "vmcp-cp-")), ownsDir: true };
  mkdirSync(opts.dir, { recursive: true });
  for (const entry of OWNED_ENTRIES) rmSync(join(opts.dir, entry), { recursive: true, force: true });
  return { dir: opts.dir, ownsDir: false };
}

function removeDir(dir: string, ownsDir: boolean): void {
  if (ownsDir) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  for (const entry of OWNED_ENTRIES) rmSync(join(dir, entry), { recursive: true, force: true });
  try {
    rmdirSync(dir); // only if nothing else is left in it
  } catch {
    // not empty: the user's files stay
  }
}

function describe(p: RunningProcess): ComponentProcess {
  return { name: p.name, pid: p.pid, command: p.command, logFile: p.logFile };
}

/** Thrown when a component could not bind its port (another process took it after freePorts). */
class PortClash extends Error {}

const START_ATTEMPTS = 3;

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  // Free ports are probed, closed and then bound by the component: another process (e.g. a
  // parallel test run) can win that race. Such a clash is retried with fresh ports.
  const log = opts.log ?? consoleLogger();
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce({ ...opts, log });
    } catch (err) {
      if (!(err instanceof PortClash) || attempt >= START_ATTEMPTS) throw err;
      log("port taken during start; retrying with new ports", { attempt });
    }
  }
}

async function startOnce(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const full = opts.full ?? true;
  const log = opts.log ?? consoleLogger();
  const env = opts.env ?? process.env;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (step: string, since: number): number =>
    (timings[step] = Math.round(performance.now() - since));

  // Resolve every binary before creating anything, so a missing one fails cleanly.
  const bins = {
    etcd: findBinary("etcd", env),
    apiserver: findBinary("kube-apiserver", env),
    ...(full
      ? {
          kcm: findBinary("kube-controller-manager", env),
          scheduler: findBinary("kube-scheduler", env),
          kwok: findBinary("kwok", env),
        }
      : {}),
  };
  const stages = bins.kwok !== undefined ? kwokStageFiles(bins.kwok, env) : [];

  const { dir, ownsDir } = prepareDir(opts);
  const logDir = join(dir, "logs");
  mkdirSync(logDir);
  mkdirSync(join(dir, "pki"));
  const auth = writeAuthFiles(dir);
  const [etcdClientPort, etcdPeerPort, apiserverPort] = (await freePorts(3)) as [number, number, number];
  const layout: Layout = {
    dir,
    etcdDataDir: join(dir, "etcd"),
    certDir: join(dir, "pki"),
    tokenFile: auth.tokenFile,
    serviceAccountKeyFile: auth.serviceAccountKeyFile,
    adminKubeconfig: join(dir, "admin.kubeconfig"),
    etcdClientPort,
    etcdPeerPort,
    apiserverPort,
  };
  const keep = opts.keep ?? false;
  const supervisor = new Supervisor({
    logDir,
    pidFile: join(dir, "pids"),
    ...(ownsDir && !keep ? { removeOnOrphan: dir } : {}),
    onEmergency: () => {
      if (!keep) removeDir(dir, ownsDir);
    },
  });
  let stopped = false;
  let kubelet: ProcessKubelet | undefined;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const t = performance.now();
    // Its pods first, while the apiserver still takes their status and the Node's deletion.
    await kubelet?.stop();
    await supervisor.stop(opts.graceMs ?? 5000);
    if (!keep) removeDir(dir, ownsDir);
    log("stopped", { ms: Math.round(performance.now() - t), dir: keep ? dir : undefined });
  };
  log("starting control plane", { mode: full ? "full" : "minimal", dir });

  try {
    let t = performance.now();
    const etcd = supervisor.start({ name: "etcd", command: bins.etcd, args: etcdArgs(layout), env });
    await waitForHttpOk(
      "etcd /health",
      { url: `http://127.0.0.1:${etcdClientPort}/health` },
      { timeoutMs, watch: [etcd] },
    );
    log("etcd ready", { ms: mark("etcd", t), port: etcdClientPort, pid: etcd.pid });

    t = performance.now();
    const server = `https://127.0.0.1:${apiserverPort}`;
    const certFile = servingCertFile(layout);
    const readCa = (): string | undefined =>
      existsSync(certFile) ? readFileSync(certFile, "utf8") : undefined;
    const apiserver = supervisor.start({
      name: "kube-apiserver",
      command: bins.apiserver,
      args: apiserverArgs(layout, { serviceAccountAdmission: full }),
      env,
    });
    // /readyz, not /healthz: it also waits for post-start hooks (bootstrap RBAC, priority levels).
    await waitForHttpOk(
      "kube-apiserver /readyz",
      { url: `${server}/readyz`, token: auth.admin.token, ca: readCa },
      { timeoutMs, watch: [etcd, apiserver] },
    );
    const caPem = readCa() ?? "";
    const kubeconfig = writeKubeconfig(layout.adminKubeconfig, { server, user: auth.admin, caPem });
    log("kube-apiserver ready", { ms: mark("kube-apiserver", t), server, pid: apiserver.pid });

    if (full && bins.kcm && bins.scheduler && bins.kwok) {
      t = performance.now();
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfig);
      const kcm = supervisor.start({
        name: "kube-controller-manager",
        command: bins.kcm,
        args: controllerManagerArgs(layout),
        env,
      });
      const scheduler = supervisor.start({
        name: "kube-scheduler",
        command: bins.scheduler,
        args: schedulerArgs(layout),
        env,
      });
      await createFakeNode(kc);
      const kwok = supervisor.start({
        name: "kwok",
        command: bins.kwok,
        args: kwokArgs(layout, stages),
        env,
      });
      const watch = [etcd, apiserver, kcm, scheduler, kwok];
      const core = kc.makeApiClient(CoreV1Api);
      // KCM is working once its serviceaccount controller has created default/default.
      const kcmReady = waitFor(
        "kube-controller-manager (ServiceAccount default/default)",
        async () =>
          (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })) !== undefined,
        { timeoutMs, intervalMs: 200, watch },
      ).then(() =>
        log("kube-controller-manager ready", { ms: mark("kube-controller-manager", t), pid: kcm.pid }),
      );
      const kwokReady = waitFor(`kwok (Node ${FAKE_NODE_NAME} Ready)`, () => nodeReady(kc), {
        timeoutMs,
        intervalMs: 200,
        watch,
      }).then(() => log("kwok ready", { ms: mark("kwok", t), node: FAKE_NODE_NAME, pid: kwok.pid }));
      await Promise.all([kcmReady, kwokReady]);
      log("kube-scheduler running", { pid: scheduler.pid });
      if (opts.runPods) {
        t = performance.now();
        kubelet = await startProcessKubelet({
          kubeconfig,
          dir: join(dir, "kubelet"),
          images: opts.runPods.images,
          nodeName: "process-node-0",
          ...(opts.runPods.backoffBaseMs !== undefined ? { backoffBaseMs: opts.runPods.backoffBaseMs } : {}),
          log,
        });
        mark("kubelet", t);
      }
    }
    log("control plane ready", { ms: mark("total", t0), kubeconfig: layout.adminKubeconfig });

    return {
      dir,
      kubeconfigPath: layout.adminKubeconfig,
      kubeconfig,
      server,
      token: auth.admin.token,
      caPem,
      users: { admin: auth.admin, controller: auth.controller },
      kubeconfigFor: (user) => renderKubeconfig({ server, user, caPem }),
      full,
      processes: supervisor.processes.map(describe),
      kubelet,
      timings,
      stop,
    };
  } catch (err) {
    // Keep the work dir of a failed start: its logs are the only evidence of what went wrong.
    stopped = true;
    await kubelet?.stop();
    await supervisor.stop(1000);
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes("address already in use")) {
      removeDir(dir, ownsDir);
      throw new PortClash(message, { cause: err });
    }
    throw new Error(`control plane failed to start: ${message}\n(work dir kept: ${dir})`, { cause: err });
  }
}
