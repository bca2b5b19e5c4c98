// Composite tools: multi-step workflows over backend tools, defined inline in
// spec.config.compositeTools or as VirtualMCPCompositeToolDefinition objects (same shape).
import { z } from "zod";
import { atomicList, conditions, duration, freeform, int64, stringSet } from "./common.js";
import { toolAnnotationsSchema } from "./toolconfig.js";

export const STEP_TYPES = ["tool", "elicitation", "forEach"] as const;
export const ERROR_ACTIONS = ["abort", "continue", "retry"] as const;
export const ELICITATION_ACTIONS = ["skip_remaining", "abort", "continue"] as const;
export const OUTPUT_TYPES = ["string", "integer", "number", "boolean", "object", "array"] as const;

export const stepErrorHandlingSchema = z.object({
  action: z.enum(ERROR_ACTIONS).default("abort"),
  retryCount: z.int().optional().describe("Retries when action is retry"),
  retryDelay: duration().optional(),
});

export const elicitationResponseSchema = z.object({
  action: z.enum(ELICITATION_ACTIONS).default("abort"),
});

export const workflowStepSchema = z.object({
  id: z.string().describe("Unique step id, referenced by dependsOn and {{.steps.<id>}}"),
  type: z.enum(STEP_TYPES).default("tool"),
  tool: z.string().optional().describe("Backend tool to call, as workload.tool"),
  arguments: freeform().optional().describe("Tool arguments; string values are Go templates"),
  condition: z.string().optional().describe("Go template; the step runs only when it renders true"),
  dependsOn: z.array(z.string()).optional(),
  onError: stepErrorHandlingSchema.optional(),
  message: z.string().optional().describe("Elicitation prompt (Go template)"),
  schema: freeform().optional().describe("Elicitation response JSON Schema"),
  onDecline: elicitationResponseSchema.optional(),
  onCancel: elicitationResponseSchema.optional(),
  timeout: duration().optional(),
  defaultResults: z.unknown().optional().describe("Output used when the step is skipped or fails"),
  collection: z.string().optional().describe("forEach: Go template yielding the items"),
  itemVar: z.string().optional(),
  maxParallel: z.int().optional(),
  maxIterations: z.int().optional(),
  step: freeform().optional().describe("forEach: the inner tool step"),
});
export type WorkflowStep = z.infer<typeof workflowStepSchema>;

export const outputPropertySchema = z.object({
  type: z.enum(OUTPUT_TYPES),
  description: z.string().optional(),
  value: z.string().optional().describe("Go template producing the value"),
  properties: freeform().optional().describe("Nested properties when type is object"),
  default: z.unknown().optional(),
});

export const outputConfigSchema = z.object({
  properties: z.record(z.string(), outputPropertySchema),
  required: z.array(z.string()).optional(),
});

export const compositeToolSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  parameters: freeform().optional().describe("JSON Schema of the tool input (type object)"),
  timeout: duration().optional(),
  steps: z.array(workflowStepSchema),
  output: outputConfigSchema.optional(),
  annotations: toolAnnotationsSchema.optional(),
});
export type CompositeTool = z.infer<typeof compositeToolSchema>;
export type CompositeToolInput = z.input<typeof compositeToolSchema>;

export const compositeToolDefinitionSpecSchema = compositeToolSchema;
export type VirtualMCPCompositeToolDefinitionSpec = CompositeTool;

export const VALIDATION_STATUSES = ["Valid", "Invalid", "Unknown"] as const;

export const compositeToolDefinitionStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  referencingVirtualServers: stringSet().optional(),
  validationErrors: atomicList(z.string()).optional(),
  validationStatus: z.enum(VALIDATION_STATUSES).optional(),
});
export type VirtualMCPCompositeToolDefinitionStatus = z.infer<typeof compositeToolDefinitionStatusSchema>;
