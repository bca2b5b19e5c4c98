// MCPGroup: a named set of backends. Membership is declared by the members
// (spec.groupRef on MCPServer, MCPRemoteProxy, MCPServerEntry), never by the group.
import { z } from "zod";
import { conditions, int32, int64, stringSet } from "./common.js";

export const mcpGroupSpecSchema = z.object({
  description: z.string().optional(),
});
export type MCPGroupSpec = z.infer<typeof mcpGroupSpecSchema>;

export const MCPGROUP_PHASES = ["Ready", "Pending", "Failed"] as const;

export const mcpGroupStatusSchema = z.object({
  conditions: conditions().optional(),
  observedGeneration: int64().optional(),
  phase: z.enum(MCPGROUP_PHASES).default("Pending"),
  servers: stringSet().optional(),
  serverCount: int32().optional(),
  remoteProxies: stringSet().optional(),
  remoteProxyCount: int32().optional(),
  entries: stringSet().optional(),
  entryCount: int32().optional(),
});
export type MCPGroupStatus = z.infer<typeof mcpGroupStatusSchema>;
