// spec.config of a VirtualMCPServer: the vMCP runtime configuration (ToolHive
// pkg/vmcp/config). Keys are the same in the CRD and in the generated config.yaml.
// The object preserves unknown fields (as the CRD does); validation refuses the ones vmcp
// 0.44.0 does not know, since it loads config.yaml strictly (runtimerules.ts).
import { z } from "zod";
import { atomicList, duration, freeform, HTTP_URL, nameRef } from "./common.js";
import { compositeToolSchema } from "./compositetool.js";
import { toolOverrideSchema } from "./toolconfig.js";

export const CONFLICT_RESOLUTIONS = ["prefix", "priority", "manual"] as const;
export type ConflictResolution = (typeof CONFLICT_RESOLUTIONS)[number];
export const DEFAULT_PREFIX_FORMAT = "{workload}_";

export const staticBackendSchema = z.object({
  name: z.string(),
  url: z.string().regex(HTTP_URL),
  transport: z.enum(["sse", "streamable-http"]),
  type: z.enum(["entry", ""]).optional(),
  caBundlePath: z.string().optional(),
  metadata: z.record(z.string(), z.string()).optional(),
});
export type StaticBackend = z.infer<typeof staticBackendSchema>;

export const runtimeOIDCSchema = z.object({
  issuer: z.string().regex(HTTP_URL),
  clientId: z.string(),
  clientSecretEnv: z.string().optional().describe("Env var holding the client secret (never the secret)"),
  audience: z.string(),
  resource: z.string().optional(),
  scopes: z.array(z.string()).optional(),
  caBundlePath: z.string().optional(),
  jwksUrl: z.string().optional(),
  introspectionUrl: z.string().optional(),
  insecureAllowHttp: z.boolean().optional(),
  jwksAllowPrivateIp: z.boolean().optional(),
  protectedResourceAllowPrivateIp: z.boolean().optional(),
});

export const runtimeAuthzSchema = z.object({
  type: z.string().describe("cedar or none"),
  policies: z.array(z.string()).optional(),
  entitiesJson: z.string().optional(),
  groupClaimName: z.string().optional(),
  roleClaimName: z.string().optional(),
  groupEntityType: z.string().optional(),
  primaryUpstreamProvider: z.string().optional(),
});

export const runtimeIncomingAuthSchema = z.object({
  type: z.string().describe("anonymous or oidc"),
  oidc: runtimeOIDCSchema.optional(),
  authz: runtimeAuthzSchema.optional(),
});
export type RuntimeIncomingAuth = z.infer<typeof runtimeIncomingAuthSchema>;

/** Runtime strategy type names understood by `vmcp serve`. */
export const RUNTIME_AUTH_TYPES = [
  "unauthenticated",
  "header_injection",
  "token_exchange",
  "upstream_inject",
  "aws_sts",
  "obo",
  "xaa",
] as const;

export const runtimeBackendAuthSchema = z.object({
  type: z.string().describe(`One of ${RUNTIME_AUTH_TYPES.join(", ")}`),
  headerInjection: z
    .object({
      headerName: z.string(),
      headerValue: z.string().optional(),
      headerValueEnv: z.string().optional(),
    })
    .optional(),
  tokenExchange: z
    .object({
      tokenUrl: z.string(),
      clientId: z.string().optional(),
      clientSecret: z.string().optional(),
      clientSecretEnv: z.string().optional(),
      audience: z.string().optional(),
      scopes: atomicList(z.string()).optional(),
      subjectTokenType: z.string().optional(),
      subjectProviderName: z.string().optional(),
    })
    .optional(),
  upstreamInject: z.object({ providerName: z.string() }).optional(),
  // Strategies the operator passes through without interpreting.
  awsSts: freeform().optional(),
  obo: freeform().optional(),
  xaa: freeform().optional(),
});
export type RuntimeBackendAuth = z.infer<typeof runtimeBackendAuthSchema>;

export const runtimeOutgoingAuthSchema = z.object({
  source: z.string().describe("discovered or inline"),
  default: runtimeBackendAuthSchema.optional(),
  backends: z.record(z.string(), runtimeBackendAuthSchema).optional(),
});
export type RuntimeOutgoingAuth = z.infer<typeof runtimeOutgoingAuthSchema>;

export const workloadToolConfigSchema = z.object({
  workload: z.string().describe("Backend workload (MCPServer, MCPRemoteProxy or MCPServerEntry name)"),
  toolConfigRef: z
    .object({ name: z.string() })
    .optional()
    .describe("MCPToolConfig merged under the inline settings"),
  filter: z.array(z.string()).optional().describe("Allow-list of tool names to advertise"),
  overrides: z
    .record(z.string(), toolOverrideSchema)
    .optional()
    .describe("Per-tool overrides keyed by original name"),
  excludeAll: z.boolean().optional().describe("Advertise none of this workload's tools (still routable)"),
});
export type WorkloadToolConfig = z.infer<typeof workloadToolConfigSchema>;

export const aggregationSchema = z.object({
  conflictResolution: z.enum(CONFLICT_RESOLUTIONS).default("prefix"),
  conflictResolutionConfig: z
    .object({
      prefixFormat: z.string().default(DEFAULT_PREFIX_FORMAT),
      priorityOrder: z.array(z.string()).optional().describe("Workloads, highest priority first"),
    })
    .optional(),
  tools: z.array(workloadToolConfigSchema).optional(),
  excludeAllTools: z.boolean().optional(),
  defaultToolVisibility: z.enum(["allow", "deny"]).optional(),
});
export type Aggregation = z.infer<typeof aggregationSchema>;

/** Go duration in milliseconds, or undefined if the string is not a duration. */
export function parseDurationMs(s: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (unit[m[2] ?? ""] ?? 0);
    end = re.lastIndex;
  }
  return s.length > 0 && end === s.length ? total : undefined;
}

const CIRCUIT_TIMEOUT_RULE = "self == '' || duration(self) >= duration('1s')";

export const circuitBreakerSchema = z.object({
  enabled: z.boolean().default(false),
  failureThreshold: z.int().min(1).default(5),
  timeout: duration()
    .refine((s) => s === "" || (parseDurationMs(s) ?? 0) >= 1000, { message: "must be at least 1s" })
    .meta({
      "x-kubernetes-validations": [{ rule: CIRCUIT_TIMEOUT_RULE, message: "timeout must be at least 1s" }],
    })
    .default("60s"),
});

export const failureHandlingSchema = z.object({
  healthCheckInterval: duration().default("30s"),
  unhealthyThreshold: z.int().default(3),
  healthCheckTimeout: duration().default("10s"),
  statusReportingInterval: duration().default("30s"),
  partialFailureMode: z.enum(["fail", "best_effort"]).default("fail"),
  circuitBreaker: circuitBreakerSchema.optional(),
});

export const operationalSchema = z.object({
  logLevel: z.enum(["debug"]).optional(),
  timeouts: z
    .object({
      default: duration().default("30s"),
      perWorkload: z.record(z.string(), duration()).optional(),
    })
    .optional(),
  failureHandling: failureHandlingSchema.optional(),
});
export type Operational = z.infer<typeof operationalSchema>;

export const vmcpConfigSchema = z.looseObject({
  name: z.string().optional().describe("Overwritten by the operator with the VirtualMCPServer name"),
  groupRef: z.string().optional().describe("Overwritten by the operator from spec.groupRef"),
  backends: z.array(staticBackendSchema).optional(),
  incomingAuth: runtimeIncomingAuthSchema.optional(),
  outgoingAuth: runtimeOutgoingAuthSchema.optional(),
  aggregation: aggregationSchema.optional(),
  compositeTools: z.array(compositeToolSchema).optional(),
  compositeToolRefs: z.array(nameRef()).optional().describe("VirtualMCPCompositeToolDefinitions to include"),
  operational: operationalSchema.optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  passthroughHeaders: atomicList(z.string()).optional(),
  // Out of this operator's scope: accepted and passed through as written.
  telemetry: freeform().optional(),
  audit: freeform().optional(),
  optimizer: freeform().optional(),
  codeMode: freeform().optional(),
  sessionStorage: freeform().optional(),
  rateLimiting: freeform().optional(),
});
export type VmcpConfig = z.infer<typeof vmcpConfigSchema>;
export type VmcpConfigInput = z.input<typeof vmcpConfigSchema>;
