// MCPExternalAuthConfig: how the vMCP (or a proxy) authenticates to a backend. The
// strategies the vMCP turns into env-var secrets are typed; the others pass through.
import { z } from "zod";
import { atomicList, conditions, freeform, int64, secretKeyRef } from "./common.js";

export const EXTERNAL_AUTH_TYPES = [
  "tokenExchange",
  "headerInjection",
  "bearerToken",
  "unauthenticated",
  "embeddedAuthServer",
  "awsSts",
  "upstreamInject",
  "obo",
  "xaa",
] as const;
export type ExternalAuthType = (typeof EXTERNAL_AUTH_TYPES)[number];

/** Each typed strategy carries exactly its own sub-object (mirrors ToolHive's CEL rules). */
const SUB_OBJECTS = EXTERNAL_AUTH_TYPES.filter((t) => t !== "unauthenticated");
const typeRules = [
  ...SUB_OBJECTS.map((t) => ({
    rule: `self.type == '${t}' ? has(self.${t}) : !has(self.${t})`,
    message: `${t} must be set exactly when type is ${t}`,
  })),
  {
    rule: `self.type == 'unauthenticated' ? (${SUB_OBJECTS.map((t) => `!has(self.${t})`).join(" && ")}) : true`,
    message: "no strategy configuration is allowed when type is unauthenticated",
  },
];

export const tokenExchangeSchema = z.object({
  tokenUrl: z.string(),
  clientId: z.string().optional(),
  clientSecretRef: secretKeyRef().optional(),
  audience: z.string(),
  scopes: atomicList(z.string()).optional(),
  subjectTokenType: z
    .string()
    .regex(/^(access_token|id_token|jwt|urn:ietf:params:oauth:token-type:(access_token|id_token|jwt))?$/)
    .optional(),
  subjectProviderName: z.string().optional(),
  externalTokenHeaderName: z.string().optional(),
});

export const headerInjectionSchema = z.object({
  headerName: z.string().min(1),
  valueSecretRef: secretKeyRef(),
});

export const mcpExternalAuthConfigSpecSchema = z
  .object({
    type: z.enum(EXTERNAL_AUTH_TYPES),
    tokenExchange: tokenExchangeSchema.optional(),
    headerInjection: headerInjectionSchema.optional(),
    bearerToken: z.object({ tokenSecretRef: secretKeyRef() }).optional(),
    upstreamInject: z.object({ providerName: z.string().min(1) }).optional(),
    embeddedAuthServer: freeform().optional(),
    awsSts: freeform().optional(),
    obo: freeform().optional(),
    xaa: freeform().optional(),
  })
  .meta({ "x-kubernetes-validations": typeRules });
export type MCPExternalAuthConfigSpec = z.infer<typeof mcpExternalAuthConfigSpecSchema>;

export const mcpExternalAuthConfigStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  configHash: z.string().optional(),
});
export type MCPExternalAuthConfigStatus = z.infer<typeof mcpExternalAuthConfigStatusSchema>;
