// VirtualMCPServer: one MCP endpoint aggregating every backend of an MCPGroup.
import { z } from "zod";
import {
  atomicList,
  conditions,
  freeform,
  int32,
  int64,
  kubeObject,
  nameRef,
  requiredNameRef,
  timestamp,
} from "./common.js";
import { authzConfigSchema, oidcConfigRefSchema, sessionStorageSchema } from "./auth.js";
import { vmcpConfigSchema } from "./vmcpconfig.js";

export const VMCP_PORT = 4483;

export const INCOMING_AUTH_TYPES = ["anonymous", "oidc"] as const;

export const incomingAuthSchema = z
  .object({
    type: z.enum(INCOMING_AUTH_TYPES).describe("Set anonymous explicitly when no authentication is wanted"),
    oidcConfigRef: oidcConfigRefSchema.optional(),
    authzConfig: authzConfigSchema.optional(),
    authzConfigRef: requiredNameRef().optional().describe("MCPAuthzConfig (cedarv1) in the same namespace"),
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "self.type == 'oidc' ? has(self.oidcConfigRef) : true",
        message: "spec.incomingAuth.oidcConfigRef is required when type is oidc",
      },
      {
        rule: "!(has(self.authzConfig) && has(self.authzConfigRef))",
        message: "authzConfig and authzConfigRef are mutually exclusive",
      },
    ],
  });
export type IncomingAuth = z.infer<typeof incomingAuthSchema>;

export const BACKEND_AUTH_TYPES = ["discovered", "externalAuthConfigRef"] as const;

export const backendAuthSchema = z.object({
  type: z.enum(BACKEND_AUTH_TYPES),
  externalAuthConfigRef: nameRef()
    .optional()
    .describe("MCPExternalAuthConfig; required when type is externalAuthConfigRef"),
});
export type BackendAuth = z.infer<typeof backendAuthSchema>;

export const outgoingAuthSchema = z.object({
  source: z.enum(["discovered", "inline"]).default("discovered"),
  default: backendAuthSchema.optional(),
  backends: z
    .record(z.string(), backendAuthSchema)
    .optional()
    .describe("Per-backend overrides, keyed by workload name"),
});
export type OutgoingAuth = z.infer<typeof outgoingAuthSchema>;

export const virtualMCPServerSpecSchema = z.object({
  incomingAuth: incomingAuthSchema,
  outgoingAuth: outgoingAuthSchema.optional(),
  groupRef: requiredNameRef().describe("MCPGroup in the same namespace whose members are the backends"),
  config: vmcpConfigSchema.optional(),
  passthroughHeaders: atomicList(z.string()).optional(),
  serviceType: z.enum(["ClusterIP", "NodePort", "LoadBalancer"]).default("ClusterIP"),
  sessionAffinity: z.enum(["ClientIP", "None"]).default("ClientIP"),
  serviceAccount: z.string().optional().describe("Existing ServiceAccount; when set no RBAC is created"),
  podTemplateSpec: freeform()
    .optional()
    .describe("Strategic-merged onto the pod template; container name vmcp"),
  telemetryConfigRef: z.object({ name: z.string().min(1), serviceName: z.string().optional() }).optional(),
  embeddingServerRef: nameRef().optional(),
  authServerConfig: freeform().optional().describe("Embedded OAuth authorization server (passed through)"),
  replicas: int32().min(0).optional().describe("Unset leaves Deployment replicas to an HPA"),
  sessionStorage: sessionStorageSchema.optional(),
  imagePullSecrets: atomicList(z.object({ name: z.string().default("") })).optional(),
});
export type VirtualMCPServerSpec = z.infer<typeof virtualMCPServerSpecSchema>;
export type VirtualMCPServerSpecInput = z.input<typeof virtualMCPServerSpecSchema>;

export const VMCP_PHASES = ["Pending", "Ready", "Degraded", "Failed"] as const;
export type VirtualMCPServerPhase = (typeof VMCP_PHASES)[number];
/** Values of status.discoveredBackends[].status (the CRD leaves it a free string). */
export const BACKEND_STATUSES = ["ready", "degraded", "unavailable", "unauthenticated", "unknown"] as const;

const capabilityCountsSchema = () =>
  z.object({ tools: int32().optional(), resources: int32().optional(), prompts: int32().optional() });

export const discoveredBackendSchema = z.object({
  name: z.string(),
  url: z.string().optional(),
  status: z.string().optional(),
  authConfigRef: z.string().optional(),
  authType: z.string().optional(),
  lastHealthCheck: timestamp().optional(),
  message: z.string().optional(),
  circuitBreakerState: z.enum(["closed", "open", "half-open"]).optional(),
  circuitLastChanged: timestamp().optional(),
  consecutiveFailures: z.int().optional(),
  mcpRevision: z.string().optional(),
  // vmcp-operator's own additions (ToolHive has no capability counts).
  transport: z.string().optional(),
  capabilities: capabilityCountsSchema().optional(),
});
export type DiscoveredBackend = z.infer<typeof discoveredBackendSchema>;

export const virtualMCPServerStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  phase: z.enum(VMCP_PHASES).default("Pending"),
  message: z.string().optional(),
  url: z.string().optional(),
  discoveredBackends: z
    .array(discoveredBackendSchema)
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
    .optional(),
  backendCount: int32().optional().describe("Routable backends (ready, degraded or unauthenticated)"),
  authzConfigHash: z.string().optional(),
  oidcConfigHash: z.string().optional(),
  telemetryConfigHash: z.string().optional(),
  // vmcp-operator's own additions: what the Pulumi stack last applied and previewed.
  appliedHash: z.string().optional().describe("Hash of the desired objects last applied by the stack"),
  stackOutputs: z
    .object({
      url: z.string().optional(),
      configChecksum: z.string().optional(),
      desiredHash: z.string().optional(),
      objects: z.array(z.object({ kind: z.string(), name: z.string() })).optional(),
      adopted: z
        .array(z.object({ kind: z.string(), name: z.string() }))
        .optional()
        .describe(
          "Objects that existed before the first apply and were taken over: never deleted by the stack",
        ),
    })
    .optional(),
  lastPreview: z
    .object({
      time: timestamp().optional(),
      summary: z.record(z.string(), int32()).optional(),
      changes: z
        .array(
          z.object({
            kind: z.string(),
            name: z.string(),
            op: z.string(),
            fields: z.array(z.string()).optional(),
          }),
        )
        .optional(),
    })
    .optional(),
  capabilities: capabilityCountsSchema()
    .optional()
    .describe("What a client of the virtual server sees, after filters, overrides and conflict resolution"),
});
export type VirtualMCPServerStatus = z.infer<typeof virtualMCPServerStatusSchema>;

export const virtualMCPServerSchema = kubeObject(
  "VirtualMCPServer",
  virtualMCPServerSpecSchema,
  virtualMCPServerStatusSchema,
);
export type VirtualMCPServer = z.infer<typeof virtualMCPServerSchema>;
export type VirtualMCPServerInput = z.input<typeof virtualMCPServerSchema>;
