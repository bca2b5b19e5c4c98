// Wire-up: informers → router (index) → queue → reconciler, plus leader election,
// the metrics/health server and graceful shutdown. `startController` is what
// `vmcpctl controller` and the integration tests call.
import { hostname } from "node:os";
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Lease,
} from "@kubernetes/client-node";
import { HealthMonitor } from "../health/monitor.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import type { PodTemplatePolicy } from "../program/podpolicy.js";
import { passphraseFromEnv } from "../engine/passphrase.js";
import {
  defaultEngineFactory,
  stackName,
  type Engine,
  type EngineFactory,
  type KubeProvider,
} from "./engine.js";
import { mayBreakLock } from "./holders.js";
import { FINALIZER } from "../program/names.js";
import { Informers } from "./informers.js";
import { parseKey, type Key } from "./keys.js";
import { KubeClient } from "./kube.js";
import { LeaderElector } from "./leader.js";
import { errorMessage, jsonLogger, type Logger } from "./log.js";
import { Metrics } from "./metrics.js";
import { DONE, WorkQueue } from "./queue.js";
import { Reconciler } from "./reconcile.js";
import { EventRouter } from "./router.js";
import type { PreviewGate } from "./steps.js";
import { startServer } from "./server.js";
import { SHARD_GROUP_LABEL, shardLeaseName, ShardManager, shardOf } from "./shards.js";
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
  /**
   * Shards (default 1). Above 1, each shard is a Lease `<leaseName>-shard-<i>` and this
   * replica reconciles only the keys of the shards it holds (shards.ts); implies election.
   */
  shards?: number;
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
  /** Passed to the engine factory: per-operation or shared provider processes (engine/provider.ts). */
  provider?: KubeProvider;
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
  /** With shards > 1: which shards this replica holds. */
  readonly shards: ShardManager | undefined;
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
      ...(opts.provider ? { provider: opts.provider } : {}),
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
  const shardCount = opts.shards ?? 1;
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new Error(`shards must be a positive integer`);
  const identity = opts.identity ?? `${hostname()}-${process.pid}`;
  const leaseNamespace = opts.leaseNamespace ?? opts.namespace ?? "default";
  const leaseName = opts.leaseName ?? "vmcp-operator";
  let shards: ShardManager | undefined;
  let leader: LeaderElector | undefined;
  /** Shards whose Lease we hold AND whose stale locks were dealt with: their keys may run. */
  const shardsWorking = new Set<number>();
  const shardKey = (key: Key): number => shardOf(key, shardCount);
  const owns = (key: Key): boolean => !shards || shardsWorking.has(shardKey(key));
  /** Reconciles in flight: aborted when their shard goes (fencing). */
  const running = new Map<Key, { abort: AbortController; done: Promise<unknown> }>();

  const queue = new WorkQueue(
    async (key, signal) => {
      if (!owns(key)) {
        // Another replica's shard, or ours no longer: an aborted reconcile may have probed again.
        reconciler.release(key);
        return DONE;
      }
      reconcileCounts.set(key, (reconcileCounts.get(key) ?? 0) + 1);
      const abort = new AbortController();
      const done = reconciler.reconcile(key, AbortSignal.any([signal, abort.signal]));
      running.set(key, { abort, done: done.catch(() => {}) });
      try {
        return await done;
      } finally {
        running.delete(key);
      }
    },
    {
      workers: opts.workers ?? 2,
      resyncMs: opts.resyncMs ?? 300_000,
      listKeys: () => router.keys().filter(owns),
      hooks: {
        onDepth: (d) => metrics.queueDepth.set(d),
        onDequeue: (_k, ms) => metrics.queueLatency.observe(ms / 1000),
        onProcessed: (key, ms, result, err) => {
          // A terminal result counts as done: the label values are part of the metrics' API.
          const kind = result?.kind === "terminal" ? "done" : result?.kind;
          const outcome = err !== undefined ? "error" : (kind ?? "done");
          metrics.reconcileDuration.observe(ms / 1000, { result: outcome });
          metrics.reconciles.inc({ result: outcome });
          if (shards) metrics.shardReconciles.inc({ shard: String(shardKey(key)), result: outcome });
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
      for (const key of router.route(kind, verb, obj)) if (owns(key)) queue.add(key);
    },
    onReconnect: () => queue.resync(),
  });

  // Who operates a stack, recorded on the Lease that entitles this replica to (its shard's,
  // or the single leader's) before each operation, in its current term (holders.ts).
  const started = new Date(Date.now() - process.uptime() * 1000).toISOString();
  const self = { identity, pid: process.pid, started };
  const electorOf = (key: Key): LeaderElector | undefined =>
    shards ? shards.electorOf(shardKey(key)) : leader;
  engine.setHolder(async (stack, op) => {
    const key = `${stack.namespace}/${stack.name}`;
    const elector = electorOf(key);
    if (!elector) return undefined; // no election: nothing to check a holder against
    const name = stackName(stack);
    await elector.recordHolder(name, {
      ...self,
      lease: `${leaseNamespace}/${shards ? shardLeaseName(leaseName, shardKey(key)) : leaseName}`,
      transitions: elector.transitions,
      op,
      at: new Date().toISOString(),
    });
    return () => elector.dropHolder(name);
  });
  const coordination = kc.makeApiClient(CoordinationV1Api);
  /**
   * The Leases a lock's holder may operate under, as read now: the shard Leases of the group
   * (whatever their count: replicas of another --shards may run during a rollout) and the
   * single leader's. One or two reads per pass over the stale locks, none without one.
   */
  const readLeases = async (): Promise<V1Lease[]> => {
    const single = await coordination
      .readNamespacedLease({ name: leaseName, namespace: leaseNamespace })
      .catch((err: unknown) => {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      });
    const group = shards
      ? (
          await coordination.listNamespacedLease({
            namespace: leaseNamespace,
            labelSelector: `${SHARD_GROUP_LABEL}=${leaseName}`,
          })
        ).items
      : [];
    return [...(single ? [single] : []), ...group];
  };

  /**
   * A predecessor killed mid-operation leaves its stack locked: clear the locks of `mine`'s
   * stacks before any of them is reconciled. One listing of the backend says which stacks
   * hold one (a file backend; any other: every stack may), so a clean start starts no Pulumi
   * process at all. A lock whose holder still holds its Lease stays (its reconcile retries).
   */
  const clearStaleLocks = async (mine: (key: Key) => boolean, stillOurs: () => boolean): Promise<void> => {
    const locked = await engine.lockedStacks().catch((err: unknown) => {
      log.warn("could not list stack locks; unlocking every stack", { error: errorMessage(err) });
      return undefined;
    });
    let leases: V1Lease[] | undefined;
    for (const o of informers.list("VirtualMCPServer")) {
      if (!stillOurs()) return;
      if (!(o.metadata?.finalizers ?? []).includes(FINALIZER)) continue;
      const namespace = o.metadata?.namespace ?? "default";
      const name = o.metadata?.name ?? "";
      if (!mine(`${namespace}/${name}`)) continue;
      if (locked && !locked.has(stackName({ namespace, name }))) continue;
      try {
        leases ??= await readLeases();
        if (!mayBreakLock(stackName({ namespace, name }), leases, self, Date.now())) {
          log.warn("stack locked by a holder that still holds its Lease; not breaking it", {
            key: `${namespace}/${name}`,
          });
          continue;
        }
        await engine.unlock({ namespace, name });
      } catch (err) {
        log.warn("could not clear a stack lock", { key: `${namespace}/${name}`, error: errorMessage(err) });
      }
    }
  };

  /**
   * Fencing: the right to write these keys' stacks is gone (or going). Before anything else,
   * synchronously: their reconciles are aborted (no status write follows) and every Pulumi
   * process of their stacks is killed; none starts again until the Lease is ours again.
   */
  const fence = (mine: (key: Key) => boolean, shard: string): void => {
    const stacks = new Set<string>();
    for (const key of [...router.keys(), ...running.keys()])
      if (mine(key)) stacks.add(stackName(parseKey(key)));
    for (const [key, r] of running) if (mine(key)) r.abort.abort(new Error(`lease of shard ${shard} lost`));
    const killed = engine.fence(stacks);
    for (const key of new Set([...router.keys(), ...(monitor?.keys() ?? [])]))
      if (mine(key)) reconciler.release(key);
    if (killed.length) {
      metrics.shardFenced.inc({ shard }, killed.length);
      log.warn("killed Pulumi processes of a lost shard", {
        shard,
        processes: killed.map((p) => `${p.pid} ${p.argv[0] ?? ""}`),
      });
    }
  };

  let working = false;
  const startWork = async (): Promise<void> => {
    if (working) return;
    working = true;
    engine.unfence(new Set(router.keys().map((k) => stackName(parseKey(k)))));
    // Leadership starts work in the background: a stop() meanwhile ends it here.
    await clearStaleLocks(
      () => true,
      () => !queue.isShuttingDown,
    );
    if (queue.isShuttingDown) return;
    queue.start();
    queue.resync();
    log.info("controller working", { workers: opts.workers ?? 2 });
  };

  const synced = await informers.start();
  if (!synced) log.warn("informer caches not synced yet; continuing", { state: informers.state() });

  if (shardCount > 1) {
    shards = new ShardManager(kc, {
      namespace: leaseNamespace,
      lease: leaseName,
      identity,
      shards: shardCount,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      log,
      onAcquired: async (shard) => {
        const mine = (key: Key) => shardKey(key) === shard;
        metrics.shardHeld.set(1, { shard: String(shard) });
        metrics.shardTransitions.inc({ shard: String(shard), event: "acquired" });
        metrics.liveReplicas.set(shards?.liveReplicas ?? 1);
        engine.unfence(
          new Set(
            router
              .keys()
              .filter(mine)
              .map((k) => stackName(parseKey(k))),
          ),
        );
        await clearStaleLocks(mine, () => shards?.holds(shard) === true && !queue.isShuttingDown);
        if (!shards?.holds(shard) || queue.isShuttingDown) return;
        shardsWorking.add(shard);
        queue.start();
        for (const key of router.keys()) if (mine(key)) queue.add(key);
        log.info("shard acquired; reconciling its keys", { shard, held: shards.held() });
      },
      onLost: async (shard, why) => {
        const mine = (key: Key) => shardKey(key) === shard;
        shardsWorking.delete(shard);
        if (why === "lost") fence(mine, String(shard));
        else {
          // A hand-over or a stop: we still hold the Lease, so in-flight work may finish
          // (bounded); what is still running then is fenced before the Lease is released.
          const left = [...running].filter(([key]) => mine(key)).map(([, r]) => r.done);
          await Promise.race([Promise.all(left), new Promise((r) => setTimeout(r, 30_000).unref())]);
          fence(mine, String(shard));
        }
        metrics.shardHeld.set(0, { shard: String(shard) });
        metrics.shardTransitions.inc({ shard: String(shard), event: why });
        log.info("shard given up", { shard, why });
      },
    });
    shards.start();
    log.info("controller working", { workers: opts.workers ?? 2, shards: shardCount });
  } else if (opts.leaderElect) {
    leader = new LeaderElector(kc, {
      namespace: leaseNamespace,
      name: leaseName,
      identity,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      log,
      onStartedLeading: async () => {
        metrics.isLeader.set(1);
        await startWork();
      },
      onStoppedLeading: async () => {
        fence(() => true, "0");
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
    const role = shards
      ? `shards ${shards.held().join(",") || "none"} of ${shardCount}`
      : leader
        ? leader.isLeader
          ? "leader"
          : "standby"
        : "single";
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
    shards,
    port: server?.port,
    reconcileCounts,
    ready,
    stop: (deadlineMs = 30_000) =>
      (stopping ??= (async () => {
        log.info("shutting down", { deadlineMs });
        const ok = await queue.shutdown({ drain: false, deadlineMs });
        if (!ok) log.warn("in-flight work did not finish before the deadline; abandoned");
        await leader?.stop();
        await shards?.stop();
        await monitor?.stop();
        await informers.stop();
        await server?.close();
        if (!opts.engine) await engine.close();
        log.info("stopped");
        return ok;
      })()),
  };
}
