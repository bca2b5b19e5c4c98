// Entry point of the Pulumi project at the repo root (`pulumi up` from a laptop):
// the VirtualMCPServer component the controller declares, fed from manifest files.
//   pulumi config set vmcp:manifests examples/basic      (files or dirs, comma-separated)
//   pulumi config set vmcp:name engineering-tools         (when the files hold several)
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { loadManifests } from "./manifests.js";
import type { VirtualMCPServer } from "../api/index.js";
import { gatherInputs, objectSet } from "./inputs.js";
import { DEFAULT_VMCP_IMAGE } from "./names.js";
import { VirtualMCPServer as VirtualMCPServerComponent, type StackOutputs } from "./resources.js";

/**
 * The directory holding Pulumi.yaml: the nearest ancestor of this module that has one.
 * (`pulumi.runtime.getRootDirectory()` needs a newer language host than the one we build.)
 */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "Pulumi.yaml"))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

async function main(): Promise<StackOutputs> {
  const config = new pulumi.Config("vmcp");
  const paths = config
    .require("manifests")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)
    // Relative to the project (where Pulumi.yaml is), whatever directory the program runs in.
    .map((p) => resolve(projectRoot(), p));
  const loaded = await loadManifests(paths);
  if (loaded.errors.length) throw new Error(`invalid manifests:\n${loaded.errors.join("\n")}`);
  for (const u of loaded.unknown) void pulumi.log.warn(`${u}: ignored`);
  const name = config.get("name");
  const namespace = config.get("namespace");
  const candidates = loaded.objects.filter(
    (o): o is VirtualMCPServer =>
      o.kind === "VirtualMCPServer" &&
      (!name || o.metadata.name === name) &&
      (!namespace || o.metadata.namespace === namespace),
  );
  if (candidates.length !== 1) {
    const found = candidates.map((v) => `${v.metadata.namespace}/${v.metadata.name}`).join(", ") || "none";
    throw new Error(
      `vmcp:manifests must select exactly one VirtualMCPServer (set vmcp:name); found ${found}`,
    );
  }
  const vmcp = candidates[0] as VirtualMCPServer;
  const component = new VirtualMCPServerComponent(vmcp.metadata.name, {
    inputs: gatherInputs(objectSet(loaded.objects, loaded.configMaps), vmcp),
    settings: { vmcpImage: config.get("vmcpImage") ?? DEFAULT_VMCP_IMAGE },
    discovery: { predictUrls: true },
    awaitReadiness: config.getBoolean("awaitReadiness") ?? false,
  });
  return component.stackOutputs;
}

export default main();
