// The vmcp runtime's config.yaml (ToolHive's format, pkg/vmcp/config), from the CR and
// what it references. Backends are always embedded: this controller is the one place
// that discovers them, so the vMCP pod needs no read access to the cluster.
import { DEFAULT_EMBEDDING_PORT, type VirtualMCPServer } from "../api/index.js";
import type { Backend } from "./discovery.js";
import { buildIncomingAuth, type ConfigMapMount } from "./incomingauth.js";
import type { VmcpInputs } from "./inputs.js";
import type { OutgoingAuth, SecretEnv } from "./outgoingauth.js";
import { buildTelemetry } from "./telemetry.js";

export interface RefProblem {
  condition:
    | "ToolConfigRefsValidated"
    | "CompositeToolRefsValidated"
    | "OIDCConfigRefValidated"
    | "AuthzConfigRefValidated"
    | "TelemetryConfigRefValidated"
    | "EmbeddingServerReady"
    | "PodTemplateValidated";
  reason: string;
  message: string;
}

/** What the vmcp container needs besides the config file: env vars and mounted ConfigMap keys. */
export interface PodInputs {
  secretEnv: SecretEnv[];
  env: { name: string; value: string }[];
  mounts: ConfigMapMount[];
}

/** ToolHive's env var for the Redis session-storage password. */
export const REDIS_PASSWORD_ENV = "THV_SESSION_REDIS_PASSWORD";

type VmcpConfigSpec = NonNullable<VirtualMCPServer["spec"]["config"]>;
type Aggregation = NonNullable<VmcpConfigSpec["aggregation"]>;
type WorkloadTools = NonNullable<Aggregation["tools"]>[number];

/** An aggregation.tools entry of config.yaml: its MCPToolConfig reference merged in. */
export type ResolvedWorkloadTools = Omit<WorkloadTools, "toolConfigRef">;

/**
 * config.yaml as a structure. The fields read after the build (by the controller's
 * capability counts) are typed; the rest passes through as the CR wrote it.
 */
export type VmcpConfig = Record<string, unknown> & {
  aggregation: Omit<Aggregation, "tools" | "conflictResolutionConfig"> & {
    conflictResolutionConfig: Partial<NonNullable<Aggregation["conflictResolutionConfig"]>>;
    tools?: ResolvedWorkloadTools[] | undefined;
  };
  compositeTools?: { name: string }[] | undefined;
};

// What ToolHive's operator fills in, so the same manifest gives vmcp the same config:
// its operational defaults when the spec has none (zero values omitted, as Go writes them),
// and its CRD's defaults for the sections our schema passes through.
const OPERATIONAL_DEFAULTS = {
  timeouts: { default: "30s" },
  failureHandling: {
    healthCheckInterval: "30s",
    unhealthyThreshold: 3,
    statusReportingInterval: "30s",
    partialFailureMode: "fail",
    circuitBreaker: { failureThreshold: 5, timeout: "60s" },
  },
};
const AUDIT_DEFAULTS = { detectApplicationErrors: true, maxDataSize: 1024, maxDelegationDepth: 10 };
const OPTIMIZER_DEFAULTS = { embeddingProvider: "tei", embeddingServiceTimeout: "30s" };
const CODE_MODE_DEFAULTS = { parallelMaxConcurrency: 10, stepLimit: 100000, toolCallTimeout: "30s" };

/** A section the spec has, with the defaults filled in; absent stays absent. */
const defaulted = (defaults: Record<string, unknown>, given: unknown) =>
  given && typeof given === "object" ? withDefaults(defaults, given) : given;

/** Fills what the user left out, keeping everything they wrote. */
function withDefaults(defaults: Record<string, unknown>, given: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  if (given && typeof given === "object") {
    for (const [k, v] of Object.entries(given)) {
      const d = defaults[k];
      out[k] =
        d && typeof d === "object" && !Array.isArray(d) && v && typeof v === "object"
          ? withDefaults(d as Record<string, unknown>, v)
          : v;
    }
  }
  return out;
}

/**
 * A filter that names a tool by the name an override replaces: ToolHive's vmcp matches the
 * filter against the new name, so that tool is hidden, which is rarely what was meant.
 */
function filterWarnings(tools: readonly ResolvedWorkloadTools[]): string[] {
  const out: string[] = [];
  for (const t of tools) {
    for (const [original, override] of Object.entries(t.overrides ?? {})) {
      const renamed = override?.name;
      if (!renamed || renamed === original || !t.filter?.includes(original) || t.filter.includes(renamed))
        continue;
      out.push(
        `aggregation.tools (workload ${t.workload}): the filter names ${original}, which an override renames to ${renamed}; ToolHive's vmcp matches the filter against the new name, so ${renamed} is hidden from clients (still callable from composite tools); list ${renamed} in the filter to advertise it`,
      );
    }
  }
  return out;
}

function resolveToolConfigs(
  tools: readonly WorkloadTools[],
  inputs: VmcpInputs,
  problems: RefProblem[],
): ResolvedWorkloadTools[] {
  return tools.map((entry) => {
    const { toolConfigRef, ...inline } = entry;
    if (!toolConfigRef) return inline;
    const tc = inputs.toolConfigs.get(toolConfigRef.name);
    if (!tc) {
      problems.push({
        condition: "ToolConfigRefsValidated",
        reason: "ToolConfigNotFound",
        message: `MCPToolConfig ${toolConfigRef.name} (aggregation.tools for ${entry.workload}) not found`,
      });
      return inline;
    }
    // The VirtualMCPServer's own filter and overrides win over the referenced MCPToolConfig.
    const filter = inline.filter?.length ? inline.filter : tc.spec.toolsFilter;
    const overrides = { ...(tc.spec.toolsOverride ?? {}), ...(inline.overrides ?? {}) };
    return {
      ...inline,
      filter: filter?.length ? [...filter] : undefined,
      overrides: Object.keys(overrides).length ? overrides : undefined,
    };
  });
}

function resolveCompositeTools(
  config: VmcpConfigSpec,
  inputs: VmcpInputs,
  problems: RefProblem[],
): { name: string }[] {
  const tools: { name: string }[] = [...(config.compositeTools ?? [])];
  for (const ref of config.compositeToolRefs ?? []) {
    const def = inputs.compositeDefinitions.get(ref.name);
    if (!def) {
      problems.push({
        condition: "CompositeToolRefsValidated",
        reason: "CompositeToolRefNotFound",
        message: `VirtualMCPCompositeToolDefinition ${ref.name} not found`,
      });
      continue;
    }
    if (def.status?.validationStatus === "Invalid") {
      problems.push({
        condition: "CompositeToolRefsValidated",
        reason: "CompositeToolRefInvalid",
        message: `VirtualMCPCompositeToolDefinition ${ref.name} is invalid: ${(def.status.validationErrors ?? []).join("; ")}`,
      });
      continue;
    }
    tools.push(def.spec);
  }
  const seen = new Set<string>();
  for (const t of tools) {
    if (seen.has(t.name)) {
      problems.push({
        condition: "CompositeToolRefsValidated",
        reason: "CompositeToolDuplicate",
        message: `composite tool "${t.name}" is defined more than once (inline and/or in compositeToolRefs)`,
      });
    }
    seen.add(t.name);
  }
  return tools;
}

/** Fields the operator writes itself or does not support: a warning each, never silence. */
function ignoredFields(vmcp: VirtualMCPServer): string[] {
  const spec = vmcp.spec.config ?? {};
  const out: string[] = [];
  if (spec.name !== undefined && spec.name !== vmcp.metadata.name)
    out.push(
      `spec.config.name is ignored: the config is named after the VirtualMCPServer (${vmcp.metadata.name})`,
    );
  if (spec.groupRef !== undefined && spec.groupRef !== vmcp.spec.groupRef.name)
    out.push("spec.config.groupRef is ignored: the group is spec.groupRef");
  if (spec.backends !== undefined)
    out.push("spec.config.backends is ignored: backends are discovered from the MCPGroup's members");
  if (spec.incomingAuth !== undefined)
    out.push("spec.config.incomingAuth is ignored: incoming auth is built from spec.incomingAuth");
  if (spec.outgoingAuth !== undefined)
    out.push("spec.config.outgoingAuth is ignored: outgoing auth is built from spec.outgoingAuth");
  if (vmcp.spec.authServerConfig !== undefined)
    out.push(
      "spec.authServerConfig (embedded authorization server) is not supported by vmcp-operator: no auth server runs",
    );
  return out;
}

/** spec.sessionStorage wins over config.sessionStorage; redis only (memory is vmcp's default). */
function sessionStorage(vmcp: VirtualMCPServer, pod: PodInputs): unknown {
  const s = vmcp.spec.sessionStorage;
  if (!s) return vmcp.spec.config?.sessionStorage;
  if (s.provider !== "redis") return undefined;
  if (s.passwordRef)
    pod.secretEnv.push({
      name: REDIS_PASSWORD_ENV,
      secretName: s.passwordRef.name,
      secretKey: s.passwordRef.key,
    });
  return {
    provider: s.provider,
    address: s.address,
    db: s.db || undefined,
    keyPrefix: s.keyPrefix || undefined,
  };
}

/** embeddingServerRef → optimizer.embeddingService (the ref wins over a URL written inline). */
function optimizer(inputs: VmcpInputs, problems: RefProblem[]): unknown {
  const { vmcp, embeddingServer: es } = inputs;
  const inline = vmcp.spec.config?.optimizer;
  const ref = vmcp.spec.embeddingServerRef;
  if (!ref) return defaulted(OPTIMIZER_DEFAULTS, inline);
  if (!es) {
    problems.push({
      condition: "EmbeddingServerReady",
      reason: "EmbeddingServerNotFound",
      message: `EmbeddingServer ${ref.name} not found`,
    });
    return defaulted(OPTIMIZER_DEFAULTS, inline);
  }
  if (es.status?.phase === "Failed") {
    problems.push({
      condition: "EmbeddingServerReady",
      reason: "EmbeddingServerNotReady",
      message: `EmbeddingServer ${ref.name} has failed`,
    });
    return defaulted(OPTIMIZER_DEFAULTS, inline);
  }
  // ToolHive's EmbeddingServer controller publishes exactly this URL in status.url.
  const ns = es.metadata.namespace ?? "default";
  const url =
    es.status?.url ||
    `http://${es.metadata.name}.${ns}.svc.cluster.local:${es.spec.port ?? DEFAULT_EMBEDDING_PORT}`;
  return withDefaults(OPTIMIZER_DEFAULTS, { ...inline, embeddingService: url });
}

/** config.audit, with the component named after the VirtualMCPServer unless given. */
function audit(vmcp: VirtualMCPServer): unknown {
  const a = vmcp.spec.config?.audit;
  if (!a) return undefined;
  return withDefaults(AUDIT_DEFAULTS, {
    ...a,
    component: typeof a.component === "string" && a.component ? a.component : vmcp.metadata.name,
  });
}

export function buildVmcpConfig(
  inputs: VmcpInputs,
  backends: readonly Backend[],
  auth: OutgoingAuth,
): { config: VmcpConfig; problems: RefProblem[]; warnings: string[]; pod: PodInputs } {
  const { vmcp } = inputs;
  const problems: RefProblem[] = [];
  const incoming = buildIncomingAuth(inputs);
  const telemetry = buildTelemetry(inputs);
  problems.push(...incoming.problems, ...telemetry.problems);
  const pod: PodInputs = {
    secretEnv: [...incoming.env, ...telemetry.secretEnv],
    env: [...telemetry.env],
    mounts: [...incoming.mounts, ...telemetry.mounts],
  };
  const spec = vmcp.spec.config ?? {};
  const aggregation: Aggregation = spec.aggregation ?? { conflictResolution: "prefix" };
  const conflictResolution = aggregation.conflictResolution ?? "prefix";
  const config: VmcpConfig = {
    ...spec,
    name: vmcp.metadata.name,
    groupRef: vmcp.spec.groupRef.name,
    passthroughHeaders: vmcp.spec.passthroughHeaders?.length
      ? [...vmcp.spec.passthroughHeaders]
      : spec.passthroughHeaders,
    backends: backends
      .filter((b) => !auth.excluded.has(b.name))
      .map((b) => ({ name: b.name, url: b.url, transport: b.transport, metadata: { kind: b.kind } })),
    incomingAuth: incoming.config,
    outgoingAuth: auth.config,
    aggregation: {
      ...aggregation,
      conflictResolution,
      // vmcp requires the section for every strategy (`vmcp validate`: "conflictResolutionConfig
      // is required"), even manual, which has nothing to put in it.
      conflictResolutionConfig:
        conflictResolution === "prefix"
          ? { prefixFormat: "{workload}_", ...aggregation.conflictResolutionConfig }
          : { ...aggregation.conflictResolutionConfig },
      tools: aggregation.tools ? resolveToolConfigs(aggregation.tools, inputs, problems) : undefined,
    },
    compositeTools: resolveCompositeTools(spec, inputs, problems),
    // Inlined into compositeTools above; kept as written, as ToolHive does (vmcp only checks them).
    compositeToolRefs: spec.compositeToolRefs,
    operational: withDefaults(OPERATIONAL_DEFAULTS, spec.operational),
    // A referenced MCPTelemetryConfig replaces config.telemetry (ToolHive ignores the inline one).
    telemetry: telemetry.config ?? spec.telemetry,
    audit: audit(vmcp),
    sessionStorage: sessionStorage(vmcp, pod),
    optimizer: optimizer(inputs, problems),
    codeMode: defaulted(CODE_MODE_DEFAULTS, spec.codeMode),
  };
  if (!config.compositeTools?.length) delete config.compositeTools;
  const warnings = [
    ...incoming.warnings,
    ...ignoredFields(vmcp),
    ...filterWarnings(config.aggregation.tools ?? []),
  ];
  return { config, problems, warnings, pod };
}
