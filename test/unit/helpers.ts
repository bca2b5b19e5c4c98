// Shared by the unit tests: load the examples and build one VirtualMCPServer.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { build, type Build } from "../../program/desired.js";
import { gatherInputs, objectSet, type AnyObject, type ConfigMapData } from "../../program/inputs.js";
import { parseManifests, type Loaded } from "../../program/manifests.js";
import type { VirtualMCPServer } from "../../api/index.js";

export const ROOT = join(import.meta.dirname, "..", "..", "..");

/**
 * Every example a user can render (examples/invalid is the one that must be refused;
 * examples/pulumi is a Pulumi program, not manifests).
 */
export const EXAMPLES = readdirSync(join(ROOT, "examples"))
  .filter((name) => name !== "invalid" && existsSync(join(ROOT, "examples", name, "vmcp.yaml")))
  .sort();
export const SETTINGS = { vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0" };

export function loadYaml(text: string): AnyObject[] {
  const loaded = parseManifests(text, "test");
  if (loaded.errors.length) throw new Error(loaded.errors.join("\n"));
  return loaded.objects;
}

export function example(name: string): AnyObject[] {
  return loadYaml(readFileSync(join(ROOT, "examples", name, "vmcp.yaml"), "utf8"));
}

/** An example with everything the loader returns (ConfigMaps, notes). */
export function exampleLoaded(name: string): Loaded {
  const loaded = parseManifests(readFileSync(join(ROOT, "examples", name, "vmcp.yaml"), "utf8"), name);
  if (loaded.errors.length) throw new Error(loaded.errors.join("\n"));
  return loaded;
}

export function vmcpOf(objects: readonly AnyObject[], name?: string): VirtualMCPServer {
  const v = objects.find(
    (o): o is VirtualMCPServer => o.kind === "VirtualMCPServer" && (!name || o.metadata.name === name),
  );
  if (!v) throw new Error(`no VirtualMCPServer ${name ?? ""}`);
  return v;
}

export function buildFor(
  objects: readonly AnyObject[],
  name?: string,
  predictUrls = true,
  configMaps: readonly ConfigMapData[] = [],
): Build {
  return build(gatherInputs(objectSet(objects, configMaps), vmcpOf(objects, name)), SETTINGS, {
    predictUrls,
  });
}

/** Deterministic shuffle (seeded), so a failure can be reproduced. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
