// MCPTelemetryConfig: OpenTelemetry and Prometheus settings shared by the servers of a
// namespace. Sensitive headers come from Secrets and reach the pod as env vars only.
import { z } from "zod";
import { caBundleSource, secretKeyRef } from "./common.js";

export const openTelemetrySchema = z
  .object({
    enabled: z.boolean().default(false),
    endpoint: z.string().optional(),
    insecure: z.boolean().default(false),
    headers: z.record(z.string(), z.string()).optional(),
    sensitiveHeaders: z
      .array(z.object({ name: z.string().min(1), secretKeyRef: secretKeyRef() }))
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
      .optional(),
    resourceAttributes: z.record(z.string(), z.string()).optional(),
    metrics: z.object({ enabled: z.boolean().default(false) }).optional(),
    tracing: z
      .object({
        enabled: z.boolean().default(false),
        samplingRate: z
          .string()
          .regex(/^(0(\.\d+)?|1(\.0+)?)$/)
          .default("0.05"),
      })
      .optional(),
    useLegacyAttributes: z.boolean().default(true),
    caBundleRef: caBundleSource().optional(),
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "!has(self.headers) || !has(self.sensitiveHeaders) || self.sensitiveHeaders.all(sh, !(sh.name in self.headers))",
        message: "a header name cannot appear in both headers and sensitiveHeaders",
      },
    ],
  });

export const mcpTelemetryConfigSpecSchema = z.object({
  openTelemetry: openTelemetrySchema.optional(),
  prometheus: z.object({ enabled: z.boolean().default(false) }).optional(),
});
export type MCPTelemetryConfigSpec = z.infer<typeof mcpTelemetryConfigSpecSchema>;
