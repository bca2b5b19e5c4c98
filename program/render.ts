// Offline render: every VirtualMCPServer of a set of objects → its desired objects.
// Pure; `vmcpctl render` and CI previews print what this returns.
import { build, type Manifest } from "./desired.js";
import {
  gatherInputs,
  objectSet,
  type AnyObject,
  type ConfigMapData,
  type OperatorSettings,
} from "./inputs.js";

export interface Rendered {
  vmcp: string;
  objects: Manifest[];
  configYaml: string;
  hash: string;
}

export interface RenderResult {
  rendered: Rendered[];
  /** Reasons nothing could be built for a VirtualMCPServer (its group missing among them). */
  errors: string[];
  /** Built, but a person should know (a member without URL, an auth config that failed). */
  warnings: string[];
}

export function renderAll(
  objects: readonly AnyObject[],
  settings: OperatorSettings,
  configMaps: readonly ConfigMapData[] = [],
): RenderResult {
  const set = objectSet(objects, configMaps);
  const vmcps = objects
    .filter((o) => o.kind === "VirtualMCPServer")
    .sort((a, b) => key(a).localeCompare(key(b)));
  const result: RenderResult = { rendered: [], errors: [], warnings: [] };
  for (const vmcp of vmcps) {
    const k = key(vmcp);
    const inputs = gatherInputs(set, vmcp);
    if (!inputs.group) {
      // A reference that cannot be resolved: the render would be of a server with no backends.
      result.errors.push(
        `${k}: spec.groupRef.name: MCPGroup ${vmcp.spec.groupRef.name} is not among the manifests (add it, or -f the file that has it)`,
      );
      continue;
    }
    const b = build(inputs, settings, { predictUrls: true });
    for (const u of b.discovery.unresolved)
      result.warnings.push(`${k}: backend ${u.kind} ${u.name} left out: ${u.reason}`);
    for (const p of b.auth.problems)
      result.warnings.push(
        `${k}: outgoing auth for ${p.scope} (${p.authConfigRef}): ${p.message}; backend left out`,
      );
    for (const w of b.warnings) result.warnings.push(`${k}: ${w}`);
    if (!b.desired) {
      result.errors.push(...b.problems.map((p) => `${k}: ${p.message}`));
      continue;
    }
    result.rendered.push({
      vmcp: k,
      objects: b.desired.objects,
      configYaml: b.desired.configYaml,
      hash: b.desired.hash,
    });
  }
  return result;
}

function key(o: AnyObject): string {
  return `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
}
