// The vmcp runtime's config.yaml (ToolHive's format, pkg/vmcp/config), from the CR and
// what it references. Backends are always embedded: this controller is the one place
// that discovers them, so the vMCP pod needs no read access to the cluster.
import type { VirtualMCPServer } from "../api/index.js";
import type { Backend } from "./discovery.js";
import type { VmcpInputs } from "./inputs.js";
import type { OutgoingAuth } from "./outgoingauth.js";

export interface RefProblem {
  condition: "ToolConfigRefsValidated" | "CompositeToolRefsValidated" | "IncomingAuthValidated";
  reason: string;
  message: string;
}

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

const OPERATIONAL_DEFAULTS = {
  timeouts: { default: "30s" },
  failureHandling: {
    healthCheckInterval: "30s",
    unhealthyThreshold: 3,
    healthCheckTimeout: "10s",
    statusReportingInterval: "30s",
    partialFailureMode: "fail",
    circuitBreaker: { enabled: false, failureThreshold: 5, timeout: "60s" },
  },
};

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

function incomingAuth(vmcp: VirtualMCPServer, problems: RefProblem[]): unknown {
  const spec = vmcp.spec.incomingAuth;
  const authz =
    spec.authzConfig?.type === "inline" && spec.authzConfig.inline
      ? {
          type: "cedar",
          policies: [...spec.authzConfig.inline.policies],
          entitiesJson: spec.authzConfig.inline.entitiesJson,
        }
      : undefined;
  if (spec.type === "oidc") {
    problems.push({
      condition: "IncomingAuthValidated",
      reason: "OIDCConfigRefUnsupported",
      message: "incomingAuth.type oidc (MCPOIDCConfig references) is not supported by vmcp-operator yet",
    });
  }
  return { type: spec.type, authz };
}

export function buildVmcpConfig(
  inputs: VmcpInputs,
  backends: readonly Backend[],
  auth: OutgoingAuth,
): { config: VmcpConfig; problems: RefProblem[] } {
  const { vmcp } = inputs;
  const problems: RefProblem[] = [];
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
    incomingAuth: incomingAuth(vmcp, problems),
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
    compositeToolRefs: undefined,
    operational: withDefaults(OPERATIONAL_DEFAULTS, spec.operational),
  };
  if (!config.compositeTools?.length) delete config.compositeTools;
  return { config, problems };
}
