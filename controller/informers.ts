// Informers (client-node ListWatch) for the ToolHive kinds, the ConfigMaps and the owned
// Deployments and Services (which ones, and their selectors: triggers.ts), as one Cache. client-node 2.x re-watches by itself after a
// server-side close or its 30 s inactivity timeout and re-lists on 410 Gone, but any
// other error (connection refused while the API server restarts, a 5xx, a failed list)
// emits `error` and STOPS the informer: we restart it with capped exponential backoff.
// A restarted informer resumes from its last resourceVersion, or re-lists after a 410;
// a re-list reports vanished objects as deletes and changed ones as updates.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  ListWatch,
  Watch,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { GROUP, PLURALS, STORAGE_VERSION, type KindName } from "../api/index.js";
import type { Cache } from "./cache.js";
import { errorMessage, silentLogger, type Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { OwnedKind, RawObject, WatchedKind } from "./objects.js";
import type { Verb } from "./router.js";

export interface InformerOptions {
  /** The ToolHive kinds to watch (triggers.ts WATCHED_TOOLHIVE_KINDS). */
  toolhiveKinds: readonly KindName[];
  /** Label selector of each owned kind, none to watch all (triggers.ts OWNED_SELECTORS). */
  ownedSelectors: Readonly<Record<OwnedKind, string | undefined>>;
  /** Watch one namespace only (default: all). */
  namespace?: string;
  log?: Logger;
  metrics?: Metrics;
  onEvent: (kind: WatchedKind, verb: Verb, obj: RawObject) => void;
  /** Called after every (re)connect of an informer, e.g. to re-enqueue everything. */
  onReconnect?: (kind: WatchedKind) => void;
  /** Restart backoff (default 500 ms doubling to 30 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

type List = KubernetesListObject<KubernetesObject>;

interface Entry {
  kind: WatchedKind;
  informer: ListWatch<KubernetesObject>;
  synced: boolean;
  errors: number;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | undefined;
  starting: boolean;
  lastErrorAt: number;
}

/** kubectl's client-side apply copy of the whole object, in an annotation. */
export const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Drops, in place, what the cache holds and nothing reads from it: managedFields (often half
 * of a small object's metadata; adoption reads them from the API server) and kubectl's
 * last-applied copy of the object (as large as the object itself).
 */
export function trimForCache(obj: KubernetesObject): void {
  const meta = obj.metadata;
  if (!meta) return;
  delete meta.managedFields;
  if (meta.annotations) delete meta.annotations[LAST_APPLIED];
}

export class Informers implements Cache {
  private readonly entries = new Map<WatchedKind, Entry>();
  private readonly log: Logger;
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: InformerOptions,
  ) {
    this.log = opts.log ?? silentLogger;
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const ns = opts.namespace;
    const nsPath = ns ? `/namespaces/${ns}` : "";
    for (const kind of opts.toolhiveKinds) {
      const plural = PLURALS[kind];
      const path = `/apis/${GROUP}/${STORAGE_VERSION}${nsPath}/${plural}`;
      const list = async (): Promise<List> =>
        (ns
          ? await custom.listNamespacedCustomObject({
              group: GROUP,
              version: STORAGE_VERSION,
              namespace: ns,
              plural,
            })
          : await custom.listClusterCustomObject({ group: GROUP, version: STORAGE_VERSION, plural })) as List;
      this.add(kind, path, list, undefined);
    }
    const sel = opts.ownedSelectors;
    this.add(
      "ConfigMap",
      `/api/v1${nsPath}/configmaps`,
      async () =>
        (ns
          ? await core.listNamespacedConfigMap({ namespace: ns, labelSelector: sel.ConfigMap })
          : await core.listConfigMapForAllNamespaces({ labelSelector: sel.ConfigMap })) as List,
      sel.ConfigMap,
    );
    this.add(
      "Deployment",
      `/apis/apps/v1${nsPath}/deployments`,
      async () =>
        (ns
          ? await apps.listNamespacedDeployment({ namespace: ns, labelSelector: sel.Deployment })
          : await apps.listDeploymentForAllNamespaces({ labelSelector: sel.Deployment })) as List,
      sel.Deployment,
    );
    this.add(
      "Service",
      `/api/v1${nsPath}/services`,
      async () =>
        (ns
          ? await core.listNamespacedService({ namespace: ns, labelSelector: sel.Service })
          : await core.listServiceForAllNamespaces({ labelSelector: sel.Service })) as List,
      sel.Service,
    );
  }

  private add(
    kind: WatchedKind,
    path: string,
    list: () => Promise<List>,
    labelSelector: string | undefined,
  ): void {
    const informer = new ListWatch<KubernetesObject>(path, new Watch(this.kc), list, false, labelSelector);
    const entry: Entry = {
      kind,
      informer,
      synced: false,
      errors: 0,
      backoffMs: 0,
      restartTimer: undefined,
      starting: false,
      lastErrorAt: 0,
    };
    const emit = (verb: Verb) => (obj: KubernetesObject) => {
      if (verb !== "delete") trimForCache(obj);
      try {
        this.opts.onEvent(kind, verb, obj as RawObject);
      } catch (err) {
        this.log.error("event handler failed", { kind, verb, error: errorMessage(err) });
      }
    };
    informer.on("add", emit("add"));
    informer.on("update", emit("update"));
    informer.on("delete", emit("delete"));
    informer.on("connect", () => this.log.debug("watch connecting", { kind }));
    informer.on("error", (err: unknown) => this.onError(entry, err));
    this.entries.set(kind, entry);
  }

  private onError(entry: Entry, err: unknown): void {
    entry.errors++;
    if (this.stopped) return;
    const now = Date.now();
    // An informer that ran a while without trouble starts its backoff over.
    if (now - entry.lastErrorAt > 60_000) entry.backoffMs = 0;
    entry.lastErrorAt = now;
    const min = this.opts.minBackoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    entry.backoffMs = Math.min(max, entry.backoffMs ? entry.backoffMs * 2 : min);
    const delay = Math.round(entry.backoffMs * (0.8 + 0.2 * Math.random()));
    this.log.warn("watch failed; restarting", { kind: entry.kind, error: errorMessage(err), inMs: delay });
    this.opts.metrics?.watchRestarts.inc({ kind: entry.kind });
    if (entry.restartTimer) return; // one restart pending is enough (client-node #1933)
    entry.restartTimer = setTimeout(() => {
      entry.restartTimer = undefined;
      void this.startOne(entry);
    }, delay);
  }

  private async startOne(entry: Entry): Promise<void> {
    if (this.stopped || entry.starting) return;
    entry.starting = true;
    const errorsBefore = entry.errors;
    try {
      await entry.informer.start();
    } catch (err) {
      this.onError(entry, err);
    } finally {
      entry.starting = false;
    }
    if (entry.errors === errorsBefore && !this.stopped) {
      const first = !entry.synced;
      entry.synced = true;
      if (first) this.log.info("cache synced", { kind: entry.kind, objects: entry.informer.list().length });
      else this.log.info("watch re-established", { kind: entry.kind });
      this.opts.onReconnect?.(entry.kind);
    }
  }

  /** Starts every informer; resolves when each has listed once (or `timeoutMs` passed: then false). */
  async start(timeoutMs = 60_000): Promise<boolean> {
    this.stopped = false;
    for (const e of this.entries.values()) void this.startOne(e);
    const t0 = Date.now();
    while (!this.synced) {
      if (Date.now() - t0 > timeoutMs) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  get synced(): boolean {
    return [...this.entries.values()].every((e) => e.synced);
  }

  /** Per kind: synced, errors seen. */
  state(): Record<string, { synced: boolean; errors: number }> {
    return Object.fromEntries([...this.entries].map(([k, e]) => [k, { synced: e.synced, errors: e.errors }]));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const e of this.entries.values()) {
      if (e.restartTimer) clearTimeout(e.restartTimer);
      e.restartTimer = undefined;
      await e.informer.stop();
    }
  }

  get(kind: WatchedKind, namespace: string, name: string): RawObject | undefined {
    return this.entries.get(kind)?.informer.get(name, namespace) as RawObject | undefined;
  }

  list(kind: WatchedKind, namespace?: string): RawObject[] {
    return (this.entries.get(kind)?.informer.list(namespace) ?? []) as RawObject[];
  }
}
