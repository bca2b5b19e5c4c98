// MCPAuthzConfig: an authorization policy shared by the servers of a namespace. `config`
// is the authorizer's own section (for cedarv1: policies, entities_json, claim names),
// kept as written and interpreted by the builder.
import { z } from "zod";
import { freeform } from "./common.js";

export const mcpAuthzConfigSpecSchema = z.object({
  type: z.string().min(1).describe("Authorizer type; a VirtualMCPServer supports cedarv1"),
  config: freeform().describe("The authorizer's configuration (for cedarv1: the `cedar` section)"),
});
export type MCPAuthzConfigSpec = z.infer<typeof mcpAuthzConfigSpecSchema>;
