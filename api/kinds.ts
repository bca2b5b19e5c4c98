// The registry of ToolHive kinds: names, printer columns and schemas. The CRD generator,
// the validators and the controller's informers all iterate this one table.
import { z } from "zod";
import { kubeObject } from "./common.js";
import { mcpAuthzConfigSpecSchema } from "./authzconfig.js";
import { embeddingServerSpecSchema, embeddingServerStatusSchema } from "./embeddingserver.js";
import { mcpOIDCConfigSpecSchema, sharedConfigStatusSchema } from "./oidcconfig.js";
import { mcpTelemetryConfigSpecSchema } from "./telemetryconfig.js";
import { compositeToolDefinitionSpecSchema, compositeToolDefinitionStatusSchema } from "./compositetool.js";
import { mcpExternalAuthConfigSpecSchema, mcpExternalAuthConfigStatusSchema } from "./externalauth.js";
import { mcpGroupSpecSchema, mcpGroupStatusSchema } from "./mcpgroup.js";
import { mcpToolConfigSpecSchema, mcpToolConfigStatusSchema } from "./toolconfig.js";
import {
  virtualMCPServerSchema,
  virtualMCPServerSpecSchema,
  virtualMCPServerStatusSchema,
} from "./virtualmcpserver.js";
import {
  mcpRemoteProxySpecSchema,
  mcpRemoteProxyStatusSchema,
  mcpServerEntrySpecSchema,
  mcpServerEntryStatusSchema,
  mcpServerSpecSchema,
  mcpServerStatusSchema,
} from "./workloads.js";

export const mcpGroupSchema = kubeObject("MCPGroup", mcpGroupSpecSchema.default({}), mcpGroupStatusSchema);
export type MCPGroup = z.infer<typeof mcpGroupSchema>;
export const mcpServerSchema = kubeObject("MCPServer", mcpServerSpecSchema, mcpServerStatusSchema);
export type MCPServer = z.infer<typeof mcpServerSchema>;
export const mcpRemoteProxySchema = kubeObject(
  "MCPRemoteProxy",
  mcpRemoteProxySpecSchema,
  mcpRemoteProxyStatusSchema,
);
export type MCPRemoteProxy = z.infer<typeof mcpRemoteProxySchema>;
export const mcpServerEntrySchema = kubeObject(
  "MCPServerEntry",
  mcpServerEntrySpecSchema,
  mcpServerEntryStatusSchema,
);
export type MCPServerEntry = z.infer<typeof mcpServerEntrySchema>;
export const mcpExternalAuthConfigSchema = kubeObject(
  "MCPExternalAuthConfig",
  mcpExternalAuthConfigSpecSchema,
  mcpExternalAuthConfigStatusSchema,
);
export type MCPExternalAuthConfig = z.infer<typeof mcpExternalAuthConfigSchema>;
export const mcpToolConfigSchema = kubeObject(
  "MCPToolConfig",
  mcpToolConfigSpecSchema.default({}),
  mcpToolConfigStatusSchema,
);
export type MCPToolConfig = z.infer<typeof mcpToolConfigSchema>;
export const virtualMCPCompositeToolDefinitionSchema = kubeObject(
  "VirtualMCPCompositeToolDefinition",
  compositeToolDefinitionSpecSchema,
  compositeToolDefinitionStatusSchema,
);
export type VirtualMCPCompositeToolDefinition = z.infer<typeof virtualMCPCompositeToolDefinitionSchema>;
export const mcpOIDCConfigSchema = kubeObject(
  "MCPOIDCConfig",
  mcpOIDCConfigSpecSchema,
  sharedConfigStatusSchema,
);
export type MCPOIDCConfig = z.infer<typeof mcpOIDCConfigSchema>;
export const mcpAuthzConfigSchema = kubeObject(
  "MCPAuthzConfig",
  mcpAuthzConfigSpecSchema,
  sharedConfigStatusSchema,
);
export type MCPAuthzConfig = z.infer<typeof mcpAuthzConfigSchema>;
export const mcpTelemetryConfigSchema = kubeObject(
  "MCPTelemetryConfig",
  mcpTelemetryConfigSpecSchema.default({}),
  sharedConfigStatusSchema,
);
export type MCPTelemetryConfig = z.infer<typeof mcpTelemetryConfigSchema>;
export const embeddingServerSchema = kubeObject(
  "EmbeddingServer",
  embeddingServerSpecSchema.prefault({}),
  embeddingServerStatusSchema,
);
export type EmbeddingServer = z.infer<typeof embeddingServerSchema>;

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
}

export interface KindEntry {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  categories: readonly string[];
  printerColumns: readonly PrinterColumn[];
  spec: z.ZodType;
  status: z.ZodType;
  object: z.ZodType;
}

const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };
const condition = (name: string, type = name): PrinterColumn => ({
  name,
  type: "string",
  jsonPath: `.status.conditions[?(@.type=='${type}')].status`,
});

function entry(
  kind: string,
  plural: string,
  shortNames: readonly string[],
  printerColumns: readonly PrinterColumn[],
  schemas: { spec: z.ZodType; status: z.ZodType; object: z.ZodType },
): KindEntry {
  const singular = kind.toLowerCase();
  return {
    kind,
    listKind: `${kind}List`,
    plural,
    singular,
    shortNames,
    categories: ["toolhive"],
    printerColumns,
    ...schemas,
  };
}

// Order and column definitions follow ToolHive's CRDs so `kubectl get` looks the same.
export const KINDS = [
  entry(
    "VirtualMCPServer",
    "virtualmcpservers",
    ["vmcp", "virtualmcp"],
    [
      {
        name: "Phase",
        type: "string",
        jsonPath: ".status.phase",
        description: "The phase of the VirtualMCPServer",
      },
      { name: "URL", type: "string", jsonPath: ".status.url", description: "Virtual MCP server URL" },
      {
        name: "Backends",
        type: "integer",
        jsonPath: ".status.backendCount",
        description: "Discovered backends count",
      },
      { ...age, description: "Age" },
      condition("Ready"),
    ],
    {
      spec: virtualMCPServerSpecSchema,
      status: virtualMCPServerStatusSchema,
      object: virtualMCPServerSchema,
    },
  ),
  entry(
    "MCPGroup",
    "mcpgroups",
    ["mcpg", "mcpgroup"],
    [
      { name: "Servers", type: "integer", jsonPath: ".status.serverCount" },
      { name: "Proxies", type: "integer", jsonPath: ".status.remoteProxyCount" },
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      condition("Checked", "MCPServersChecked"),
      age,
    ],
    { spec: mcpGroupSpecSchema, status: mcpGroupStatusSchema, object: mcpGroupSchema },
  ),
  entry(
    "MCPServer",
    "mcpservers",
    ["mcpserver", "mcpservers"],
    [
      { name: "Status", type: "string", jsonPath: ".status.phase" },
      condition("Ready"),
      { name: "Replicas", type: "integer", jsonPath: ".status.readyReplicas" },
      { name: "URL", type: "string", jsonPath: ".status.url" },
      age,
    ],
    { spec: mcpServerSpecSchema, status: mcpServerStatusSchema, object: mcpServerSchema },
  ),
  entry(
    "MCPRemoteProxy",
    "mcpremoteproxies",
    ["rp", "mcprp"],
    [
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Remote URL", type: "string", jsonPath: ".spec.remoteUrl" },
      { name: "URL", type: "string", jsonPath: ".status.url" },
      condition("Ready"),
      age,
    ],
    { spec: mcpRemoteProxySpecSchema, status: mcpRemoteProxyStatusSchema, object: mcpRemoteProxySchema },
  ),
  entry(
    "MCPServerEntry",
    "mcpserverentries",
    ["mcpentry"],
    [
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Transport", type: "string", jsonPath: ".spec.transport" },
      { name: "Remote URL", type: "string", jsonPath: ".spec.remoteUrl" },
      { name: "Group", type: "string", jsonPath: ".spec.groupRef.name" },
      age,
    ],
    { spec: mcpServerEntrySpecSchema, status: mcpServerEntryStatusSchema, object: mcpServerEntrySchema },
  ),
  entry(
    "MCPExternalAuthConfig",
    "mcpexternalauthconfigs",
    ["extauth", "mcpextauth"],
    [{ name: "Type", type: "string", jsonPath: ".spec.type" }, condition("Valid"), age],
    {
      spec: mcpExternalAuthConfigSpecSchema,
      status: mcpExternalAuthConfigStatusSchema,
      object: mcpExternalAuthConfigSchema,
    },
  ),
  entry("MCPToolConfig", "mcptoolconfigs", ["tc", "toolconfig"], [condition("Valid"), age], {
    spec: mcpToolConfigSpecSchema,
    status: mcpToolConfigStatusSchema,
    object: mcpToolConfigSchema,
  }),
  entry(
    "VirtualMCPCompositeToolDefinition",
    "virtualmcpcompositetooldefinitions",
    ["vmcpctd", "compositetool"],
    [
      { name: "Workflow", type: "string", jsonPath: ".spec.name", description: "Workflow name" },
      {
        name: "Status",
        type: "string",
        jsonPath: ".status.validationStatus",
        description: "Validation status",
      },
      { ...age, description: "Age" },
      condition("Ready"),
    ],
    {
      spec: compositeToolDefinitionSpecSchema,
      status: compositeToolDefinitionStatusSchema,
      object: virtualMCPCompositeToolDefinitionSchema,
    },
  ),
  // Referenced by a VirtualMCPServer (incomingAuth, telemetryConfigRef, embeddingServerRef).
  entry(
    "MCPOIDCConfig",
    "mcpoidcconfigs",
    ["mcpoidc"],
    [{ name: "Source", type: "string", jsonPath: ".spec.type" }, condition("Valid"), age],
    { spec: mcpOIDCConfigSpecSchema, status: sharedConfigStatusSchema, object: mcpOIDCConfigSchema },
  ),
  entry(
    "MCPAuthzConfig",
    "mcpauthzconfigs",
    ["authzcfg"],
    [{ name: "Type", type: "string", jsonPath: ".spec.type" }, condition("Valid"), age],
    { spec: mcpAuthzConfigSpecSchema, status: sharedConfigStatusSchema, object: mcpAuthzConfigSchema },
  ),
  entry(
    "MCPTelemetryConfig",
    "mcptelemetryconfigs",
    ["mcpotel"],
    [
      { name: "Endpoint", type: "string", jsonPath: ".spec.openTelemetry.endpoint" },
      condition("Valid"),
      { name: "Tracing", type: "boolean", jsonPath: ".spec.openTelemetry.tracing.enabled" },
      { name: "Metrics", type: "boolean", jsonPath: ".spec.openTelemetry.metrics.enabled" },
      age,
    ],
    {
      spec: mcpTelemetryConfigSpecSchema,
      status: sharedConfigStatusSchema,
      object: mcpTelemetryConfigSchema,
    },
  ),
  entry(
    "EmbeddingServer",
    "embeddingservers",
    ["emb", "embedding"],
    [
      { name: "Status", type: "string", jsonPath: ".status.phase" },
      { name: "Model", type: "string", jsonPath: ".spec.model" },
      { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
      { name: "URL", type: "string", jsonPath: ".status.url" },
      age,
    ],
    { spec: embeddingServerSpecSchema, status: embeddingServerStatusSchema, object: embeddingServerSchema },
  ),
] as const satisfies readonly KindEntry[];

/**
 * ToolHive kinds that play no part in rendering a VirtualMCPServer: `render` skips them
 * with a note, and vmcp-operator ships no CRD for them (ToolHive's operator owns them).
 */
export const IGNORED_KINDS = ["MCPRegistry", "MCPWebhookConfig"] as const;

export type KindName =
  | "VirtualMCPServer"
  | "MCPGroup"
  | "MCPServer"
  | "MCPRemoteProxy"
  | "MCPServerEntry"
  | "MCPExternalAuthConfig"
  | "MCPToolConfig"
  | "VirtualMCPCompositeToolDefinition"
  | "MCPOIDCConfig"
  | "MCPAuthzConfig"
  | "MCPTelemetryConfig"
  | "EmbeddingServer";

/** The typed object for each kind, as parsed (defaults applied). */
export interface KindObjects {
  VirtualMCPServer: z.infer<typeof virtualMCPServerSchema>;
  MCPGroup: MCPGroup;
  MCPServer: MCPServer;
  MCPRemoteProxy: MCPRemoteProxy;
  MCPServerEntry: MCPServerEntry;
  MCPExternalAuthConfig: MCPExternalAuthConfig;
  MCPToolConfig: MCPToolConfig;
  VirtualMCPCompositeToolDefinition: VirtualMCPCompositeToolDefinition;
  MCPOIDCConfig: MCPOIDCConfig;
  MCPAuthzConfig: MCPAuthzConfig;
  MCPTelemetryConfig: MCPTelemetryConfig;
  EmbeddingServer: EmbeddingServer;
}

export const OBJECT_SCHEMAS: { [K in KindName]: z.ZodType<KindObjects[K]> } = {
  VirtualMCPServer: virtualMCPServerSchema,
  MCPGroup: mcpGroupSchema,
  MCPServer: mcpServerSchema,
  MCPRemoteProxy: mcpRemoteProxySchema,
  MCPServerEntry: mcpServerEntrySchema,
  MCPExternalAuthConfig: mcpExternalAuthConfigSchema,
  MCPToolConfig: mcpToolConfigSchema,
  VirtualMCPCompositeToolDefinition: virtualMCPCompositeToolDefinitionSchema,
  MCPOIDCConfig: mcpOIDCConfigSchema,
  MCPAuthzConfig: mcpAuthzConfigSchema,
  MCPTelemetryConfig: mcpTelemetryConfigSchema,
  EmbeddingServer: embeddingServerSchema,
};

export const KIND_NAMES = KINDS.map((k) => k.kind) as readonly KindName[];

/** kind → plural resource name, e.g. VirtualMCPServer → virtualmcpservers. */
export const PLURALS = Object.fromEntries(KINDS.map((k) => [k.kind, k.plural])) as {
  [K in KindName]: string;
};

export function kindEntry(kind: KindName): KindEntry {
  const found = KINDS.find((k) => k.kind === kind);
  if (!found) throw new Error(`unknown kind ${kind}`);
  return found;
}
