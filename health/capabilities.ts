// What a client of the virtual MCP server will actually see, from what each backend
// exposes (the probe's tool names and counts) and the aggregation section of the vmcp
// config. Pure. Mirrors the vmcp runtime's pipeline (ToolHive pkg/vmcp/aggregator):
//   1. per backend, overrides rename tools (original name → override.name);
//   2. conflict resolution over all backends: prefix | priority | manual;
//   3. advertising filters, applied after resolution (hidden tools stay routable for
//      composite tools, but clients do not see them): excludeAllTools, per-workload
//      excludeAll, per-workload filter (allow-list), defaultToolVisibility;
//   4. composite tools are added as they are.
// Resources and prompts are summed over the routable backends (the runtime does not
// filter or rename them).

export const DEFAULT_PREFIX_FORMAT = "{workload}_";

export interface ToolOverrideLike {
  name?: string | undefined;
  description?: string | undefined;
}

export interface WorkloadToolsLike {
  workload: string;
  filter?: readonly string[] | undefined;
  overrides?: Readonly<Record<string, ToolOverrideLike | undefined>> | undefined;
  excludeAll?: boolean | undefined;
}

/**
 * The aggregation section as it appears in the generated config.yaml (or the CR's
 * spec.config.aggregation: MCPToolConfig references must be merged in first, as
 * program/vmcpconfig.ts does).
 */
export interface AggregationLike {
  conflictResolution?: "prefix" | "priority" | "manual" | undefined;
  conflictResolutionConfig?:
    { prefixFormat?: string | undefined; priorityOrder?: readonly string[] | undefined } | undefined;
  tools?: readonly WorkloadToolsLike[] | undefined;
  excludeAllTools?: boolean | undefined;
  defaultToolVisibility?: "allow" | "deny" | undefined;
}

export interface BackendCapabilities {
  /** Backend (workload) name. */
  name: string;
  /** Tool names as the backend lists them. */
  toolNames: readonly string[];
  resources: number;
  prompts: number;
}

export interface AdvertisedTool {
  /** Name a client sees. */
  name: string;
  /** Backend that serves it ("" for composite tools). */
  backend: string;
  /** The backend's own name for the tool. */
  originalName: string;
}

export interface ToolConflict {
  /** Name (after overrides) claimed by more than one backend. */
  name: string;
  backends: string[];
}

export interface AggregatedCapabilities {
  /** What tools/list returns to a client, sorted by name. */
  tools: AdvertisedTool[];
  counts: { tools: number; resources: number; prompts: number };
  /** Routable but hidden tools (filtered or excluded): still callable from composite tools. */
  hidden: number;
  /** Tools dropped by conflict resolution (priority losers, prefix collisions). */
  dropped: AdvertisedTool[];
  /**
   * manual strategy only: conflicts without overrides. The vmcp runtime refuses to start
   * with any; `tools` is then empty.
   */
  unresolved: ToolConflict[];
}

interface Candidate {
  backend: string;
  originalName: string;
  /** Name after the backend's overrides. */
  name: string;
}

function byName(a: { name: string; backend: string }, b: { name: string; backend: string }): number {
  return a.name < b.name
    ? -1
    : a.name > b.name
      ? 1
      : a.backend < b.backend
        ? -1
        : a.backend > b.backend
          ? 1
          : 0;
}

export function applyPrefix(format: string, workload: string, tool: string): string {
  return format.replaceAll("{workload}", workload) + tool;
}

function resolvePrefix(candidates: readonly Candidate[], format: string, dropped: Candidate[]): Candidate[] {
  const out = new Map<string, Candidate>();
  for (const c of candidates) {
    const name = applyPrefix(format, c.backend, c.name);
    if (out.has(name)) dropped.push({ ...c, name });
    else out.set(name, { ...c, name });
  }
  return [...out.values()];
}

function groupByName(candidates: readonly Candidate[]): Map<string, Candidate[]> {
  const groups = new Map<string, Candidate[]>();
  for (const c of candidates) {
    const g = groups.get(c.name);
    if (g) g.push(c);
    else groups.set(c.name, [c]);
  }
  return groups;
}

function resolvePriority(
  candidates: readonly Candidate[],
  order: readonly string[],
  dropped: Candidate[],
): Candidate[] {
  const rank = new Map(order.map((b, i) => [b, i] as const));
  const out: Candidate[] = [];
  for (const [, group] of groupByName(candidates)) {
    if (group.length === 1) {
      out.push(group[0]!);
      continue;
    }
    const ranked = group.filter((c) => rank.has(c.backend));
    if (!ranked.length) {
      // None of the claimants is in priorityOrder: the runtime prefixes them all
      // ({workload}_) rather than lose tools.
      out.push(...resolvePrefix(group, DEFAULT_PREFIX_FORMAT, dropped));
      continue;
    }
    const winner = ranked.reduce((a, b) => (rank.get(b.backend)! < rank.get(a.backend)! ? b : a));
    out.push(winner);
    for (const c of group) if (c !== winner) dropped.push(c);
  }
  return out;
}

function resolveManual(candidates: readonly Candidate[], unresolved: ToolConflict[]): Candidate[] {
  for (const [name, group] of groupByName(candidates)) {
    if (group.length > 1) unresolved.push({ name, backends: group.map((c) => c.backend).sort() });
  }
  return unresolved.length ? [] : [...candidates];
}

/** The advertised tool list and counts after aggregation. */
export function aggregateCapabilities(
  backends: readonly BackendCapabilities[],
  aggregation: AggregationLike | undefined,
  compositeToolNames: readonly string[] = [],
): AggregatedCapabilities {
  const agg = aggregation ?? {};
  const strategy = agg.conflictResolution ?? "prefix";
  const configs = new Map((agg.tools ?? []).map((t) => [t.workload, t] as const));

  // 1. overrides
  const candidates: Candidate[] = [];
  for (const b of [...backends].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
    const overrides = configs.get(b.name)?.overrides ?? {};
    for (const original of new Set(b.toolNames)) {
      const renamed = overrides[original]?.name;
      candidates.push({ backend: b.name, originalName: original, name: renamed || original });
    }
  }

  // 2. conflict resolution
  const dropped: Candidate[] = [];
  const unresolved: ToolConflict[] = [];
  let resolved: Candidate[];
  switch (strategy) {
    case "priority":
      resolved = resolvePriority(candidates, agg.conflictResolutionConfig?.priorityOrder ?? [], dropped);
      break;
    case "manual":
      resolved = resolveManual(candidates, unresolved);
      break;
    default:
      resolved = resolvePrefix(
        candidates,
        agg.conflictResolutionConfig?.prefixFormat || DEFAULT_PREFIX_FORMAT,
        dropped,
      );
  }

  // 3. advertising filters
  const advertised = (c: Candidate): boolean => {
    if (agg.excludeAllTools) return false;
    const cfg = configs.get(c.backend);
    if (cfg?.excludeAll) return false;
    if (cfg?.filter?.length) {
      // ToolHive's vmcp (0.44.0) matches the filter against the name after the workload's
      // override: a renamed tool is kept only if the filter lists its new name.
      const renamed = cfg.overrides?.[c.originalName]?.name;
      return cfg.filter.includes(renamed || c.originalName);
    }
    return agg.defaultToolVisibility !== "deny";
  };
  const visible = resolved.filter(advertised);

  // 4. composite tools
  const tools: AdvertisedTool[] = [
    ...visible.map((c) => ({ name: c.name, backend: c.backend, originalName: c.originalName })),
    ...(unresolved.length ? [] : compositeToolNames.map((n) => ({ name: n, backend: "", originalName: n }))),
  ].sort(byName);

  return {
    tools,
    counts: {
      tools: tools.length,
      resources: backends.reduce((s, b) => s + b.resources, 0),
      prompts: backends.reduce((s, b) => s + b.prompts, 0),
    },
    hidden: resolved.length - visible.length,
    dropped: dropped
      .map((c) => ({ name: c.name, backend: c.backend, originalName: c.originalName }))
      .sort(byName),
    unresolved: unresolved.sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}
