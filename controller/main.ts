// Wire-up: informers → router (index) → queue → reconciler, plus leader election,
// the metrics/health server and graceful shutdown. `startController` is what
// `vmcpctl controller` and the integration tests call.
import { hostname } from "node:os";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { HealthMonitor } from "../health/monitor.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import type { PodTemplatePolicy } from "../program/podpolicy.js";
import { passphraseFromEnv } from "../engine/passphrase.js";
import { defaultEngineFactory, stackName, type Engine, type EngineFactory } from "./engine.js";
import { FINALIZER } from "../program/names.js";
import { Informers } from "./informers.js";
import { KubeClient } from "./kube.js";
import { LeaderElector } from "./leader.js";
import { errorMessage, jsonLogger, type Logger } from "./log.js";
import { Metrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { Reconciler } from "./reconcile.js";
import { EventRouter } from "./router.js";
import type { PreviewGate } from "./steps.js";
import { startServer } from "./server.js";
import { OWNED_SELECTORS, WATCHED_TOOLHIVE_KINDS } from "./triggers.js";

export interface ControllerOptions {
  /** A KubeConfig, or a kubeconfig file path; default: $KUBECONFIG, ~/.kube/config, in-cluster. */
  kubeconfig?: KubeConfig | string;
  /** Watch one namespace only (default: all namespaces). */
  namespace?: string;
  workers?: number;
  resyncMs?: number;
  vmcpImage?: string;
  /** What spec.podTemplateSpec may change (default restricted; program/podpolicy.ts). */
  podTemplatePolicy?: PodTemplatePolicy;
  /** Listen address of /metrics, /healthz, /readyz (e.g. ":8080"); unset = no server. */
  metricsAddr?: string;
  leaderElect?: boolean;
  leaseNamespace?: string;
  leaseName?: string;
  identity?: string;
  leaseDurationMs?: number;
  /** The engine to use; when unset, `engineFactory` (default: engine.ts defaultEngineFactory) makes one. */
  engine?: Engine;
  engineFactory?: EngineFactory;
  /** Passed to the engine factory. */
  stateDir?: string;
  /** Any Pulumi backend URL (overrides stateDir). */
  backendUrl?: string;
  /** Kubeconfig FILE for the Pulumi provider (default: the --kubeconfig path, $KUBECONFIG, in-cluster). */
  kubeconfigPath?: string;
  passphrase?: string;
  workDir?: string;
  log?: Logger;
  applyGraceMs?: number;
  /** Probe every backend over MCP (default true); off, a backend's status says only whether it is configured. */
  healthChecks?: boolean;
  /**
   * Where probes may go; default strict (no loopback, link-local, metadata address, nor the
   * API server of the kubeconfig). Tests and the local demo allow loopback.
   */
  probeEgress?: { allowLoopback: boolean };
  /** Default probe interval where a VirtualMCPServer's failureHandling sets none (default 30 s). */
  probeIntervalMs?: number;
  /** off (default): one up per change; replacements: preview first, hold disruptive changes (reconcile.ts). */
  previewGate?: PreviewGate;
  /** Called when leadership is lost (after work stopped). The CLI exits; tests observe. */
  onLostLeadership?: () => void;
}

export interface Controller {
  readonly informers: Informers;
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  readonly router: EventRouter;
  readonly engine: Engine;
  readonly metrics: Metrics;
  readonly leader: LeaderElector | undefined;
  /** Port of the metrics server, if one was started. */
  readonly port: number | undefined;
  /** Reconciles run so far, per key. */
  readonly reconcileCounts: Map<string, number>;
  ready(): { ok: boolean; detail: string };
  /** Stops taking work, waits for in-flight reconciles up to `deadlineMs`, releases the lease. */
  stop(deadlineMs?: number): Promise<boolean>;
}

function loadKubeConfig(k: KubeConfig | string | undefined): KubeConfig {
  if (k instanceof KubeConfig) return k;
  const kc = new KubeConfig();
  if (k) kc.loadFromFile(k);
  else kc.loadFromDefault();
  return kc;
}

function kubeconfigPath(opts: ControllerOptions): string | undefined {
  if (opts.kubeconfigPath) return opts.kubeconfigPath;
  if (typeof opts.kubeconfig === "string") return opts.kubeconfig;
  return process.env.KUBECONFIG?.split(":")[0] || undefined;
}

export async function startController(opts: ControllerOptions = {}): Promise<Controller> {
  const log = opts.log ?? jsonLogger();
  const kc = loadKubeConfig(opts.kubeconfig);
  const metrics = new Metrics();
  const engine =
    opts.engine ??
    (await (opts.engineFactory ?? defaultEngineFactory)({
      stateDir: opts.stateDir ?? "/var/lib/vmcp-operator/state",
      ...(opts.backendUrl ? { backendUrl: opts.backendUrl } : {}),
      passphrase: opts.passphrase || passphraseFromEnv(),
      ...(kubeconfigPath(opts) ? { kubeconfig: kubeconfigPath(opts) } : {}),
      ...(opts.workDir ? { workDir: opts.workDir } : {}),
      onOrphansStopped: (stopped) =>
        log.warn("stopped Pulumi processes a killed controller left running", {
          processes: stopped.map((p) => `${p.pid} ${p.argv[0] ?? ""}`),
        }),
    }));
  const router = new EventRouter();
  const kube = new KubeClient(kc, log);
  const reconcileCounts = new Map<string, number>();
  let informers!: Informers;
  // A health transition enqueues the VirtualMCPServer; its reconcile writes the status.
  const monitor =
    opts.healthChecks === false
      ? undefined
      : new HealthMonitor({
          ...(opts.probeIntervalMs !== undefined ? { defaultIntervalMs: opts.probeIntervalMs } : {}),
          egress: {
            allowLoopback: opts.probeEgress?.allowLoopback ?? false,
            ...(kc.getCurrentCluster()?.server ? { apiServer: kc.getCurrentCluster()!.server } : {}),
          },
          onTransition: (key, backend, before, after) => {
            log.info("backend health changed", { key, backend, from: before.status, to: after.status });
            queue.add(key);
          },
          onError: (key, backend, error) =>
            log.warn("health probe error", { key, backend, error: errorMessage(error) }),
        });
  const core = kc.makeApiClient(CoreV1Api);
  // One key of one Secret, just before a probe (controller/health.ts): the rest of the
  // Secret is dropped at once, nothing is kept between probes.
  const readSecret = async (namespace: string, name: string, key: string): Promise<string | undefined> => {
    const secret = await core.readNamespacedSecret({ name, namespace }).catch(() => undefined);
    const value = secret?.data?.[key];
    return value === undefined ? undefined : Buffer.from(value, "base64").toString();
  };
  const reconciler = new Reconciler({
    get cache() {
      return informers;
    },
    engine,
    kube,
    settings: {
      vmcpImage: opts.vmcpImage ?? DEFAULT_VMCP_IMAGE,
      podTemplatePolicy: opts.podTemplatePolicy ?? "restricted",
    },
    log,
    metrics,
    ...(opts.applyGraceMs !== undefined ? { applyGraceMs: opts.applyGraceMs } : {}),
    ...(monitor ? { health: { monitor, readSecret } } : {}),
    previewGate: opts.previewGate ?? "off",
  });
  const queue = new WorkQueue(
    async (key, signal) => {
      reconcileCounts.set(key, (reconcileCounts.get(key) ?? 0) + 1);
      return reconciler.reconcile(key, signal);
    },
    {
      workers: opts.workers ?? 2,
      resyncMs: opts.resyncMs ?? 300_000,
      listKeys: () => router.keys(),
      hooks: {
        onDepth: (d) => metrics.queueDepth.set(d),
        onDequeue: (_k, ms) => metrics.queueLatency.observe(ms / 1000),
        onProcessed: (key, ms, result, err) => {
          // A terminal result counts as done: the label values are part of the metrics' API.
          const kind = result?.kind === "terminal" ? "done" : result?.kind;
          const outcome = err !== undefined ? "error" : (kind ?? "done");
          metrics.reconcileDuration.observe(ms / 1000, { result: outcome });
          metrics.reconciles.inc({ result: outcome });
          if (err !== undefined) {
            metrics.reconcileErrors.inc();
            log.error("reconcile failed; retrying with backoff", { key, error: errorMessage(err) });
          } else log.debug("reconciled", { key, result: outcome, ms: Math.round(ms) });
        },
      },
    },
  );
  // What triggers a reconcile (triggers.ts): these kinds and selectors, through the router.
  informers = new Informers(kc, {
    toolhiveKinds: WATCHED_TOOLHIVE_KINDS,
    ownedSelectors: OWNED_SELECTORS,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    log,
    metrics,
    onEvent: (kind, verb, obj) => {
      for (const key of router.route(kind, verb, obj)) queue.add(key);
    },
    onReconnect: () => queue.resync(),
  });

  let working = false;
  const startWork = async (): Promise<void> => {
    if (working) return;
    working = true;
    // A predecessor killed mid-operation leaves its stack locked: clear locks before any
    // reconcile. One listing of the backend says which stacks hold one (a file backend; any
    // other: every stack may), so a clean restart starts no Pulumi process at all.
    const locked = await engine.lockedStacks().catch((err: unknown) => {
      log.warn("could not list stack locks; unlocking every stack", { error: errorMessage(err) });
      return undefined;
    });
    for (const o of informers.list("VirtualMCPServer")) {
      // Leadership starts work in the background: a stop() meanwhile ends it here.
      if (queue.isShuttingDown) return;
      if (!(o.metadata?.finalizers ?? []).includes(FINALIZER)) continue;
      const namespace = o.metadata?.namespace ?? "default";
      const name = o.metadata?.name ?? "";
      if (locked && !locked.has(stackName({ namespace, name }))) continue;
      try {
        await engine.unlock({ namespace, name });
      } catch (err) {
        log.warn("could not clear a stack lock", { key: `${namespace}/${name}`, error: errorMessage(err) });
      }
    }
    if (queue.isShuttingDown) return;
    queue.start();
    queue.resync();
    log.info("controller working", { workers: opts.workers ?? 2 });
  };

  const synced = await informers.start();
  if (!synced) log.warn("informer caches not synced yet; continuing", { state: informers.state() });

  let leader: LeaderElector | undefined;
  if (opts.leaderElect) {
    leader = new LeaderElector(kc, {
      namespace: opts.leaseNamespace ?? opts.namespace ?? "default",
      name: opts.leaseName ?? "vmcp-operator",
      identity: opts.identity ?? `${hostname()}-${process.pid}`,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      log,
      onStartedLeading: async () => {
        metrics.isLeader.set(1);
        await startWork();
      },
      onStoppedLeading: async () => {
        metrics.isLeader.set(0);
        // The queue cannot be restarted: never win the lease again only to do nothing with it.
        leader?.stopCampaigning();
        await queue.shutdown({ drain: false, deadlineMs: 10_000 });
        opts.onLostLeadership?.();
      },
    });
    leader.start();
  } else {
    metrics.isLeader.set(1);
    await startWork();
  }

  const ready = (): { ok: boolean; detail: string } => {
    const ok = informers.synced;
    const role = leader ? (leader.isLeader ? "leader" : "standby") : "single";
    return { ok, detail: ok ? `ready (${role})` : `caches not synced: ${JSON.stringify(informers.state())}` };
  };
  const server = opts.metricsAddr
    ? await startServer({ addr: opts.metricsAddr, metrics: () => metrics.render(), ready })
    : undefined;
  if (server) log.info("serving /metrics /healthz /readyz", { port: server.port });

  let stopping: Promise<boolean> | undefined;
  return {
    informers,
    queue,
    reconciler,
    router,
    engine,
    metrics,
    leader,
    port: server?.port,
    reconcileCounts,
    ready,
    stop: (deadlineMs = 30_000) =>
      (stopping ??= (async () => {
        log.info("shutting down", { deadlineMs });
        const ok = await queue.shutdown({ drain: false, deadlineMs });
        if (!ok) log.warn("in-flight work did not finish before the deadline; abandoned");
        await leader?.stop();
        await monitor?.stop();
        await informers.stop();
        await server?.close();
        if (!opts.engine) await engine.close();
        log.info("stopped");
        return ok;
      })()),
  };
}
