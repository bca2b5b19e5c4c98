// The controller's side of health monitoring: after each build, tell the monitor which
// backends to probe (and with what credentials), and turn its snapshot into status
// fields. The monitor writes nothing itself; its transitions enqueue a reconcile, which
// lands here, so status keeps a single writer.
import { probeAuthFromStrategy, type ProbeAuth } from "../health/auth.js";
import { aggregateCapabilities, type ToolConflict } from "../health/capabilities.js";
import type { HealthMonitor, MonitoredBackend } from "../health/monitor.js";
import type { Build } from "../program/desired.js";
import type { BackendAuthStrategy, SecretEnv } from "../program/outgoingauth.js";
import type { VirtualMCPServer } from "../api/index.js";
import type { BackendStatus, CapabilityCounts } from "./status.js";

/** Reads one key of one Secret (decoded), or undefined when the Secret or the key does not exist. */
export type SecretSource = (namespace: string, name: string, key: string) => Promise<string | undefined>;

export interface HealthView {
  backends: BackendStatus[];
  /**
   * What a client of the virtual server sees, after aggregation; undefined until every
   * backend that is up has been listed (a partial count would read as final).
   */
  capabilities: CapabilityCounts | undefined;
  /**
   * conflictResolution manual: tool names several probed backends advertise that no override
   * renames apart (vmcp cannot aggregate them); undefined before any probe knows its tools.
   */
  conflicts: ToolConflict[] | undefined;
}

/**
 * A backend's probe credentials, resolved when the probe is about to go out: the Secret keys
 * its strategy needs are read then (one `get` each), so a rotated Secret reaches the next
 * probe without a reconcile and without a watch on Secrets (which would need list/watch:
 * every Secret of the namespace). Only the keys the strategy names are read.
 */
export function probeAuthResolver(
  strategy: BackendAuthStrategy | undefined,
  env: readonly SecretEnv[],
  namespace: string,
  read: SecretSource,
): () => Promise<ProbeAuth> {
  // Which keys the strategy reads: ask it once with a reader that only records.
  const wanted: { secret: string; key: string }[] = [];
  probeAuthFromStrategy(strategy, env, (secret, key) => {
    wanted.push({ secret, key });
    return "";
  });
  return async () => {
    const values = new Map<string, string | undefined>();
    for (const { secret, key } of wanted)
      values.set(`${secret}/${key}`, await read(namespace, secret, key).catch(() => undefined));
    return probeAuthFromStrategy(strategy, env, (secret, key) => values.get(`${secret}/${key}`));
  };
}

export async function observeHealth(
  monitor: HealthMonitor,
  readSecret: SecretSource,
  key: string,
  vmcp: VirtualMCPServer,
  build: Build,
  configured: BackendStatus[],
  previous: BackendStatus[] | undefined,
): Promise<HealthView> {
  const namespace = vmcp.metadata.namespace ?? "default";
  const targets: MonitoredBackend[] = build.discovery.backends
    .filter((b) => !build.auth.excluded.has(b.name))
    .map((b) => ({
      name: b.name,
      url: b.url,
      transport: b.transport,
      authType: build.auth.perBackend.get(b.name)?.authType,
    }));
  const strategies = build.auth.config;
  const resolvers = new Map(
    targets.map((b) => [
      b.name,
      probeAuthResolver(
        strategies.backends[b.name] ?? strategies.default,
        build.auth.env,
        namespace,
        readSecret,
      ),
    ]),
  );
  monitor.update(
    key,
    targets,
    vmcp.spec.config?.operational?.failureHandling,
    (b) => resolvers.get(b.name)?.() ?? Promise.resolve({ type: "none" }),
    previous,
  );
  const health = new Map((monitor.snapshot(key) ?? []).map((h) => [h.name, h]));
  const backends = configured.map((c): BackendStatus => {
    const h = health.get(c.name);
    if (!h) return c; // left out before probing (no URL, auth could not be built)
    return {
      ...c,
      status: h.status,
      message: h.message,
      lastHealthCheck: h.lastHealthCheck,
      consecutiveFailures: h.consecutiveFailures,
      circuitBreakerState: h.circuitBreakerState,
      circuitLastChanged: h.circuitLastChanged,
      capabilities: h.counts
        ? { tools: h.counts.tools, resources: h.counts.resources, prompts: h.counts.prompts }
        : undefined,
    };
  });
  const probed = [...health.values()];
  const known = probed.filter((h) => h.toolNames !== undefined);
  // A backend that is up but not listed yet (or not probed at all) would make the count
  // partial: say nothing until each one is either listed or down.
  const listingPending = probed.some(
    (h) => h.status === "unknown" || ((h.status === "ready" || h.status === "degraded") && !h.toolNames),
  );
  let capabilities: CapabilityCounts | undefined;
  let conflicts: ToolConflict[] | undefined;
  if (known.length && build.desired) {
    const config = build.desired.config;
    const agg = aggregateCapabilities(
      known.map((h) => ({
        name: h.name,
        toolNames: h.toolNames ?? [],
        resources: h.counts?.resources ?? 0,
        prompts: h.counts?.prompts ?? 0,
      })),
      config.aggregation,
      (config.compositeTools ?? []).map((t) => t.name),
    );
    if (!listingPending) capabilities = agg.counts;
    conflicts = agg.unresolved;
  }
  return { backends, capabilities, conflicts };
}
