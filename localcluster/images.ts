// Which image the process kubelet can run: ToolHive's vmcp image at the tag of the ToolHive
// module the local binary was built from (Go embeds the module versions in every binary).
import { readFileSync } from "node:fs";

export const VMCP_REPOSITORY = "ghcr.io/stacklok/toolhive/vmcp";
const TOOLHIVE_MODULE = "github.com/stacklok/toolhive";

/** The ToolHive module version `binary` was built from (`vmcp version` says "dev" for a go install). */
export function toolhiveModuleVersion(binary: string): string | undefined {
  const text = readFileSync(binary).toString("latin1");
  return new RegExp(`\\n(?:mod|dep)\\t${TOOLHIVE_MODULE.replaceAll(".", "\\.")}\\t(v[^\\t\\n]+)`).exec(
    text,
  )?.[1];
}

/** `{ "ghcr.io/stacklok/toolhive/vmcp:<version>": binary }`, the image map of the process kubelet. */
export function vmcpImages(binary: string): Record<string, string> {
  const version = toolhiveModuleVersion(binary);
  if (version === undefined) throw new Error(`${binary}: no ${TOOLHIVE_MODULE} version in its build info`);
  return { [`${VMCP_REPOSITORY}:${version}`]: binary };
}
