// EmbeddingServer: a text-embeddings-inference server ToolHive runs for the vMCP
// optimizer. vmcp-operator does not run it; a VirtualMCPServer only reads its URL.
import { z } from "zod";
import { atomicList, conditions, freeform, int32, int64, secretKeyRef } from "./common.js";

const metadataOverrides = () =>
  z.object({
    annotations: z.record(z.string(), z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
  });
const resourceList = () => z.object({ cpu: z.string().optional(), memory: z.string().optional() });

export const DEFAULT_EMBEDDING_PORT = 8080;

export const embeddingServerSpecSchema = z.object({
  model: z.string().default("BAAI/bge-small-en-v1.5"),
  hfTokenSecretRef: secretKeyRef().optional(),
  image: z.string().default("ghcr.io/huggingface/text-embeddings-inference:cpu-latest"),
  imagePullPolicy: z.enum(["Always", "Never", "IfNotPresent"]).default("IfNotPresent"),
  port: int32().min(1).max(65535).default(DEFAULT_EMBEDDING_PORT),
  args: atomicList(z.string()).optional(),
  env: z
    .array(z.object({ name: z.string(), value: z.string() }))
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] })
    .optional(),
  resources: z.object({ limits: resourceList().optional(), requests: resourceList().optional() }).optional(),
  modelCache: z
    .object({
      enabled: z.boolean().default(true),
      storageClassName: z.string().optional(),
      size: z.string().default("10Gi"),
      accessMode: z.enum(["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]).default("ReadWriteOnce"),
    })
    .optional(),
  podTemplateSpec: freeform().optional(),
  resourceOverrides: z
    .object({
      statefulSet: metadataOverrides()
        .extend({ podTemplateMetadataOverrides: metadataOverrides().optional() })
        .optional(),
      service: metadataOverrides().optional(),
      persistentVolumeClaim: metadataOverrides().optional(),
    })
    .optional(),
  replicas: int32().min(1).default(1),
});
export type EmbeddingServerSpec = z.infer<typeof embeddingServerSpecSchema>;

export const EMBEDDING_SERVER_PHASES = ["Pending", "Downloading", "Ready", "Failed", "Terminating"] as const;

export const embeddingServerStatusSchema = z.object({
  conditions: conditions().optional(),
  phase: z.enum(EMBEDDING_SERVER_PHASES).optional(),
  message: z.string().optional(),
  url: z.string().optional(),
  readyReplicas: int32().optional(),
  observedGeneration: int64().optional(),
});
