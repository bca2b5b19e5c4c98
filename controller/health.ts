// The controller's side of health monitoring: after each build, tell the monitor which
// backends to probe (and with what credentials), and turn its snapshot into status
// fields. The monitor writes nothing itself; its transitions enqueue a reconcile, which
// lands here, so status keeps a single writer.
import { probeAuthFromStrategy } from "../health/auth.js";
import { aggregateCapabilities, type ToolConflict } from "../health/capabilities.js";
import type { HealthMonitor, MonitoredBackend } from "../health/monitor.js";
import type { Build } from "../program/desired.js";
import type { VirtualMCPServer } from "../api/index.js";
import type { BackendStatus, CapabilityCounts } from "./status.js";

/** Reads one Secret's data (decoded), or undefined when it does not exist. */
export type SecretSource = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

export interface HealthView {
  backends: BackendStatus[];
  /** What a client of the virtual server sees, after aggregation; undefined before any probe. */
  capabilities: CapabilityCounts | undefined;
  /**
   * conflictResolution manual: tool names several probed backends advertise that no override
   * renames apart (vmcp cannot aggregate them); undefined before any probe knows its tools.
   */
  conflicts: ToolConflict[] | undefined;
}

/** Reads, once per reconcile, every Secret the outgoing auth refers to. */
async function secretsFor(build: Build, namespace: string, read: SecretSource) {
  const names = [...new Set(build.auth.env.map((e) => e.secretName))];
  const data = new Map<string, Record<string, string> | undefined>();
  for (const name of names) data.set(name, await read(namespace, name).catch(() => undefined));
  return (secret: string, key: string) => data.get(secret)?.[key];
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
  const reader = await secretsFor(build, namespace, readSecret);
  const targets: MonitoredBackend[] = build.discovery.backends
    .filter((b) => !build.auth.excluded.has(b.name))
    .map((b) => ({
      name: b.name,
      url: b.url,
      transport: b.transport,
      authType: build.auth.perBackend.get(b.name)?.authType,
    }));
  const strategies = build.auth.config;
  monitor.update(
    key,
    targets,
    vmcp.spec.config?.operational?.failureHandling,
    (b) => probeAuthFromStrategy(strategies.backends[b.name] ?? strategies.default, build.auth.env, reader),
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
    capabilities = agg.counts;
    conflicts = agg.unresolved;
  }
  return { backends, capabilities, conflicts };
}
