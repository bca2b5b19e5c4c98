// MCPToolConfig: a reusable tool allow-list and per-tool overrides (name, description,
// annotations). The same override shape is used inline in spec.config.aggregation.tools[].
import { z } from "zod";
import { conditions, int64, stringSet } from "./common.js";

/** MCP tool annotations a user may override; unset hints keep the backend's value. */
export const toolAnnotationsSchema = z.object({
  title: z.string().optional(),
  readOnlyHint: z.boolean().optional(),
  destructiveHint: z.boolean().optional(),
  idempotentHint: z.boolean().optional(),
  openWorldHint: z.boolean().optional(),
});
export type ToolAnnotations = z.infer<typeof toolAnnotationsSchema>;

export const toolOverrideSchema = z.object({
  name: z.string().optional().describe("New name the tool is advertised under"),
  description: z.string().optional(),
  annotations: toolAnnotationsSchema.optional(),
});
export type ToolOverride = z.infer<typeof toolOverrideSchema>;

export const mcpToolConfigSpecSchema = z.object({
  toolsFilter: stringSet().optional().describe("Allow-list of tool names; empty means all tools"),
  toolsOverride: z
    .record(z.string(), toolOverrideSchema)
    .optional()
    .describe("Overrides keyed by original tool name"),
});
export type MCPToolConfigSpec = z.infer<typeof mcpToolConfigSpecSchema>;

export const mcpToolConfigStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  configHash: z.string().optional(),
});
export type MCPToolConfigStatus = z.infer<typeof mcpToolConfigStatusSchema>;
