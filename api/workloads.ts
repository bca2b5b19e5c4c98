// The three kinds that can be members of an MCPGroup and so become vMCP backends.
// Fields the vMCP reads (URL, transport, group, auth and tool-config refs) are typed
// exactly; the rest of each spec is accepted as written.
import { z } from "zod";
import {
  atomicList,
  caBundleSource,
  conditions,
  freeform,
  HTTP_URL,
  int32,
  int64,
  nameRef,
  requiredNameRef,
  requiredWithDefault,
} from "./common.js";
import { authzConfigSchema, oidcConfigRefSchema, sessionStorageSchema } from "./auth.js";

const port = () => int32().min(1).max(65535);
const remoteUrl = () => z.string().regex(HTTP_URL);
const telemetryConfigRef = () => z.object({ name: z.string().min(1), serviceName: z.string().optional() });
const authServerRef = () =>
  z.object({
    kind: z.enum(["MCPExternalAuthConfig"]).meta(requiredWithDefault).default("MCPExternalAuthConfig"),
    name: z.string().min(1),
  });
const mutuallyExclusiveAuthz = {
  "x-kubernetes-validations": [
    {
      rule: "!(has(self.authzConfig) && has(self.authzConfigRef))",
      message: "authzConfig and authzConfigRef are mutually exclusive",
    },
  ],
};

export const REMOTE_TRANSPORTS = ["sse", "streamable-http"] as const;
export type RemoteTransport = (typeof REMOTE_TRANSPORTS)[number];

// The fields MCPServer and MCPRemoteProxy share, each spread in place: field order, and so
// the generated CRDs, stay as they were.
const workloadRefs = {
  groupRef: requiredNameRef().optional(),
  externalAuthConfigRef: nameRef().optional(),
  toolConfigRef: nameRef().optional(),
  oidcConfigRef: oidcConfigRefSchema.optional(),
  authzConfig: authzConfigSchema.optional(),
  authzConfigRef: requiredNameRef().optional(),
};
/** The proxy's pods. */
const proxyPods = {
  serviceAccount: z.string().optional(),
  sessionAffinity: z.enum(["ClientIP", "None"]).default("ClientIP"),
  sessionStorage: sessionStorageSchema.optional(),
  replicas: int32().min(0).optional(),
};
/** How the proxy is reached and observed. */
const proxyEndpoint = {
  endpointPrefix: z.string().optional(),
  trustProxyHeaders: z.boolean().default(false),
  telemetryConfigRef: telemetryConfigRef().optional(),
  authServerRef: authServerRef().optional(),
};

export const mcpServerSpecSchema = z
  .object({
    image: z.string(),
    transport: z.enum(["stdio", "streamable-http", "sse"]).default("stdio"),
    proxyMode: z
      .enum(REMOTE_TRANSPORTS)
      .default("streamable-http")
      .describe("Transport the proxy exposes (stdio servers)"),
    proxyPort: port().default(8080),
    mcpPort: port().optional(),
    ...workloadRefs,
    args: atomicList(z.string()).optional(),
    env: z
      .array(z.object({ name: z.string(), value: z.string() }))
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .optional(),
    secrets: z
      .array(z.object({ name: z.string(), key: z.string(), targetEnvName: z.string().optional() }))
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .optional(),
    ...proxyPods,
    backendReplicas: int32().min(0).optional(),
    ...proxyEndpoint,
    webhookConfigRef: nameRef().optional(),
    // Out of scope for the vMCP: accepted as written.
    podTemplateSpec: freeform().optional(),
    resources: freeform().optional(),
    resourceOverrides: freeform().optional(),
    volumes: z.array(freeform()).optional(),
    permissionProfile: freeform().optional(),
    audit: freeform().optional(),
    rateLimiting: freeform().optional(),
  })
  .meta(mutuallyExclusiveAuthz);
export type MCPServerSpec = z.infer<typeof mcpServerSpecSchema>;

export const MCPSERVER_PHASES = ["Pending", "Ready", "Failed", "Terminating", "Stopped"] as const;

const configHashes = {
  authServerConfigHash: z.string().optional(),
  authzConfigHash: z.string().optional(),
  externalAuthConfigHash: z.string().optional(),
  oidcConfigHash: z.string().optional(),
  telemetryConfigHash: z.string().optional(),
  toolConfigHash: z.string().optional(),
};

export const mcpServerStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  phase: z.enum(MCPSERVER_PHASES).optional(),
  message: z.string().optional(),
  url: z.string().optional(),
  readyReplicas: int32().optional(),
  webhookConfigHash: z.string().optional(),
  ...configHashes,
});
export type MCPServerStatus = z.infer<typeof mcpServerStatusSchema>;

export const mcpRemoteProxySpecSchema = z
  .object({
    remoteUrl: remoteUrl(),
    transport: z.enum(REMOTE_TRANSPORTS).default("streamable-http"),
    proxyPort: port().default(8080),
    ...workloadRefs,
    allowPrivateEndpoint: z.boolean().default(false),
    ...proxyPods,
    ...proxyEndpoint,
    headerForward: freeform().optional(),
    podTemplateSpec: freeform().optional(),
    resources: freeform().optional(),
    resourceOverrides: freeform().optional(),
    audit: freeform().optional(),
  })
  .meta(mutuallyExclusiveAuthz);
export type MCPRemoteProxySpec = z.infer<typeof mcpRemoteProxySpecSchema>;

export const mcpRemoteProxyStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  phase: z.enum(["Pending", "Ready", "Failed", "Terminating"]).optional(),
  message: z.string().optional(),
  url: z.string().optional(),
  externalUrl: z.string().optional(),
  ...configHashes,
});
export type MCPRemoteProxyStatus = z.infer<typeof mcpRemoteProxyStatusSchema>;

export const mcpServerEntrySpecSchema = z.object({
  remoteUrl: remoteUrl(),
  transport: z.enum(REMOTE_TRANSPORTS),
  groupRef: requiredNameRef(),
  externalAuthConfigRef: nameRef().optional(),
  allowPrivateEndpoint: z.boolean().default(false),
  caBundleRef: caBundleSource().optional(),
  headerForward: freeform().optional(),
});
export type MCPServerEntrySpec = z.infer<typeof mcpServerEntrySpecSchema>;

export const mcpServerEntryStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  phase: z.enum(["Valid", "Pending", "Failed"]).default("Pending"),
});
export type MCPServerEntryStatus = z.infer<typeof mcpServerEntryStatusSchema>;
