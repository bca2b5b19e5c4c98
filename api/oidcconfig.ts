// MCPOIDCConfig: an OIDC token-validation setup shared by the servers of a namespace.
// Each referencing server adds its own audience, scopes and resource URL
// (incomingAuth.oidcConfigRef), so one issuer can serve many audiences.
import { z } from "zod";
import { caBundleSource, conditions, int64, secretKeyRef } from "./common.js";

export const OIDC_CONFIG_TYPES = ["kubernetesServiceAccount", "inline"] as const;

export const kubernetesServiceAccountOIDCSchema = z.object({
  serviceAccount: z.string().optional(),
  namespace: z.string().optional(),
  issuer: z.string().default("https://kubernetes.default.svc"),
  jwksUrl: z.string().optional(),
  introspectionUrl: z.string().optional(),
  useClusterAuth: z.boolean().optional().describe("Unset means true"),
});

export const inlineOIDCSchema = z.object({
  issuer: z.string(),
  jwksUrl: z.string().optional(),
  introspectionUrl: z.string().optional(),
  clientId: z.string().optional(),
  clientSecretRef: secretKeyRef().optional(),
  caBundleRef: caBundleSource().optional(),
  jwksAuthTokenPath: z.string().optional(),
  jwksAllowPrivateIP: z.boolean().default(false),
  protectedResourceAllowPrivateIP: z.boolean().default(false),
  insecureAllowHTTP: z.boolean().default(false),
});

export const mcpOIDCConfigSpecSchema = z
  .object({
    type: z.enum(OIDC_CONFIG_TYPES),
    kubernetesServiceAccount: kubernetesServiceAccountOIDCSchema.optional(),
    inline: inlineOIDCSchema.optional(),
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "self.type == 'kubernetesServiceAccount' ? has(self.kubernetesServiceAccount) : !has(self.kubernetesServiceAccount)",
        message:
          "kubernetesServiceAccount must be set when type is 'kubernetesServiceAccount', and must not be set otherwise",
      },
      {
        rule: "self.type == 'inline' ? has(self.inline) : !has(self.inline)",
        message: "inline must be set when type is 'inline', and must not be set otherwise",
      },
    ],
  });
export type MCPOIDCConfigSpec = z.infer<typeof mcpOIDCConfigSpecSchema>;

/** Status of the shared-config kinds (MCPOIDCConfig, MCPAuthzConfig, MCPTelemetryConfig). */
export const sharedConfigStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  configHash: z.string().optional(),
});
