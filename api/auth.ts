// Auth and session-storage shapes shared by VirtualMCPServer, MCPServer and MCPRemoteProxy.
import { z } from "zod";
import { atomicList, int32, requiredWithDefault, secretKeyRef } from "./common.js";

export const oidcConfigRefSchema = z.object({
  name: z.string().min(1).describe("MCPOIDCConfig in the same namespace"),
  audience: z.string().min(1),
  scopes: atomicList(z.string()).optional(),
  resourceUrl: z.string().optional(),
});

export const authzConfigSchema = z
  .object({
    type: z.enum(["configMap", "inline"]).meta(requiredWithDefault).default("configMap"),
    configMap: z.object({ name: z.string(), key: z.string().default("authz.json") }).optional(),
    inline: z
      .object({
        policies: atomicList(z.string()).min(1).describe("Cedar policies"),
        entitiesJson: z.string().default("[]"),
        primaryUpstreamProvider: z
          .string()
          .min(1)
          .max(63)
          .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/)
          .optional(),
      })
      .optional(),
    groupClaimName: z.string().max(253).optional(),
    roleClaimName: z.string().max(253).optional(),
    groupEntityType: z
      .string()
      .max(63)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "self.type == 'configMap' ? has(self.configMap) : !has(self.configMap)",
        message: "configMap must be set exactly when type is configMap",
      },
      {
        rule: "self.type == 'inline' ? has(self.inline) : !has(self.inline)",
        message: "inline must be set exactly when type is inline",
      },
    ],
  });
export type AuthzConfig = z.infer<typeof authzConfigSchema>;

export const sessionStorageSchema = z
  .object({
    provider: z.enum(["memory", "redis"]),
    address: z.string().min(1).optional(),
    db: int32().min(0).default(0),
    keyPrefix: z.string().optional(),
    passwordRef: secretKeyRef().optional(),
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "self.provider == 'redis' ? has(self.address) : true",
        message: "address is required when provider is redis",
      },
    ],
  });
export type SessionStorage = z.infer<typeof sessionStorageSchema>;
