// Entry point of the Pulumi project at the repo root (`pulumi up` from a laptop):
// the VirtualMCPServer component the controller declares, fed from manifest files or
// from the cluster.
//   pulumi config set vmcp:manifests examples/basic      (files or dirs, comma-separated)
//   pulumi config set vmcp:name engineering-tools         (when the files hold several)
// or, with no vmcp:manifests, the VirtualMCPServer the cluster holds:
//   pulumi config set vmcp:namespace team-a && pulumi config set vmcp:name engineering-tools
// Before anything is registered the program checks that no controller manages that
// VirtualMCPServer (program/ownership.ts); vmcp:takeOver=true applies anyway.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import * as pulumi from "@pulumi/pulumi";
import { readClusterObjects, readConfigMap, readOwnershipFacts } from "./clusterobjects.js";
import type { DiscoveryOptions } from "./discovery.js";
import { loadManifests } from "./manifests.js";
import type { VirtualMCPServer } from "../api/index.js";
import { gatherInputs, objectSet, type ObjectSet } from "./inputs.js";
import { DEFAULT_VMCP_IMAGE } from "./names.js";
import { ownershipRefusal, TAKE_OVER_KEY, type OwnershipFacts } from "./ownership.js";
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

interface Selected {
  mode: OwnershipFacts["mode"];
  vmcp: VirtualMCPServer;
  objects: ObjectSet;
  discovery: DiscoveryOptions;
}

/** The one VirtualMCPServer that vmcp:manifests (and vmcp:name / vmcp:namespace) select. */
async function fromManifests(config: pulumi.Config, manifests: string): Promise<Selected> {
  const paths = manifests
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
  return {
    mode: "manifests",
    vmcp: candidates[0] as VirtualMCPServer,
    objects: objectSet(loaded.objects, loaded.configMaps),
    // No status in files: an MCPServer's URL is predicted from ToolHive's naming.
    discovery: { predictUrls: true },
  };
}

/**
 * The VirtualMCPServer vmcp:namespace/vmcp:name of the cluster and the objects of its
 * namespace, read as `vmcpctl preview` reads them; URLs come from status, as the controller's.
 */
async function fromCluster(kc: KubeConfig, namespace: string, name: string): Promise<Selected> {
  const where = `VirtualMCPServer ${namespace}/${name} (vmcp:namespace, vmcp:name)`;
  const read = await readClusterObjects(kc, [namespace]).catch((err: unknown) => {
    throw new Error(`cannot read ${where} from the cluster: ${errorText(err)}`);
  });
  for (const w of read.warnings) void pulumi.log.warn(w);
  const vmcp = read.objects.find(
    (o): o is VirtualMCPServer => o.kind === "VirtualMCPServer" && o.metadata.name === name,
  );
  if (!vmcp) {
    const invalid = read.warnings.some((w) => w.startsWith(`cluster VirtualMCPServer in ${namespace}:`));
    throw new Error(
      `${where} not found in the cluster${invalid ? " (or it failed validation: see the warnings above)" : ""}`,
    );
  }
  const auth = vmcp.spec.incomingAuth.authzConfig;
  const cmName = auth?.type === "configMap" ? auth.configMap?.name : undefined;
  const configMap = cmName ? await readConfigMap(kc, namespace, cmName) : undefined;
  return {
    mode: "cluster",
    vmcp,
    objects: objectSet(read.objects, configMap ? [configMap] : []),
    discovery: {},
  };
}

/** An API error as one line: the HTTP status, or what fetch hides in `cause` (ECONNREFUSED …). */
const errorText = (err: unknown): string => {
  const e = err as { code?: unknown; message?: string; cause?: { code?: string; message?: string } };
  if (typeof e.code === "number") return `HTTP ${e.code}: ${e.message ?? ""}`;
  const cause = e.cause?.code ?? e.cause?.message;
  return `${e.message ?? String(err)}${cause ? ` (${cause})` : ""}`;
};

/**
 * Fails when a controller manages the VirtualMCPServer (see ownershipRefusal), unless
 * vmcp:takeOver is set. A preview with no reachable cluster (a laptop offline, CI) goes on
 * with a warning; `pulumi up` does not, so the check can never be skipped by accident.
 */
async function checkOwnership(kc: KubeConfig, selected: Selected, takeOver: boolean): Promise<void> {
  const namespace = selected.vmcp.metadata.namespace ?? "default";
  const name = selected.vmcp.metadata.name;
  let facts: OwnershipFacts;
  try {
    facts = await readOwnershipFacts(kc, selected.mode, namespace, name);
  } catch (err) {
    const problem = `cannot check whether a controller manages VirtualMCPServer ${namespace}/${name}: ${errorText(err)}`;
    if (takeOver) return void pulumi.log.warn(`${problem} (${TAKE_OVER_KEY} is set: not checked)`);
    if (pulumi.runtime.isDryRun())
      return void pulumi.log.warn(`${problem}; previewing without the check (\`pulumi up\` stops here)`);
    throw new Error(`${problem}. Nothing was changed; set ${TAKE_OVER_KEY}=true to apply without the check`);
  }
  const refusal = ownershipRefusal(facts);
  if (!refusal) return;
  if (!takeOver) throw new Error(refusal.message);
  void pulumi.log.warn(`${TAKE_OVER_KEY} is set, taking over: ${refusal.claims.join("; ")}`);
}

async function main(): Promise<StackOutputs> {
  const config = new pulumi.Config("vmcp");
  const takeOver = config.getBoolean("takeOver") ?? false;
  // The cluster the provider applies to: $KUBECONFIG or ~/.kube/config, its current context.
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const manifests = config.get("manifests");
  let selected: Selected;
  if (manifests) selected = await fromManifests(config, manifests);
  else {
    const namespace = config.get("namespace");
    const name = config.get("name");
    if (!namespace || !name)
      throw new Error(
        "set vmcp:manifests (manifest files or directories), or vmcp:namespace and vmcp:name to render a VirtualMCPServer of the cluster",
      );
    selected = await fromCluster(kc, namespace, name);
  }
  await checkOwnership(kc, selected, takeOver);
  const component = new VirtualMCPServerComponent(selected.vmcp.metadata.name, {
    inputs: gatherInputs(selected.objects, selected.vmcp),
    settings: { vmcpImage: config.get("vmcpImage") ?? DEFAULT_VMCP_IMAGE },
    discovery: selected.discovery,
    awaitReadiness: config.getBoolean("awaitReadiness") ?? false,
    forceApply: takeOver,
    deleteHmacSecret: true,
  });
  return component.stackOutputs;
}

export default main();
