// Our own upgrades (issue 19 item 4): a stack created by the previous release's program is
// updated by the current one with 0 replaces and 0 deletes. There are no release tags yet;
// the previous release is main at 5a54fb1, the last commit before the component merge
// (1ac40f3). Its engine declared the objects at the top of the stack (declareVmcp, frozen
// below); the current program declares them under the component, and aliases must carry
// them over: only the component is created, every object keeps its uid.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation/index.js";
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import type { VirtualMCPServer } from "../../api/index.js";
import { pulumiEnv } from "../../engine/offline.js";
import { createEngine, PROJECT, stackName, type Engine } from "../../engine/stacks.js";
import { build, type DesiredState, type Manifest } from "../../program/desired.js";
import { gatherInputs, objectSet } from "../../program/inputs.js";
import { parseManifests } from "../../program/manifests.js";
import { COMPONENT_TYPE, stackOutputsOf } from "../../program/resources.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { API_VERSION, kube } from "../support/kube.js";

/**
 * The previous release's program, frozen: program/resources.ts declareVmcp at 5a54fb1
 * (unchanged since 9e24d60), as engine/stacks.ts called it there (`{ awaitReadiness }`,
 * so no kubeconfig input): a provider and the objects at the top level of the stack.
 * Compare with `git show 5a54fb1:program/resources.ts`.
 */
function declareBeforeComponent(desired: DesiredState) {
  const provider = new k8s.Provider("k8s", {
    clusterIdentifier: "vmcp-operator",
    enableConfigMapMutable: true,
    enableServerSideApply: true,
  });
  const owners = desired.objects[0]?.metadata.ownerReferences as
    k8s.types.input.meta.v1.OwnerReference[] | undefined;
  const hmac = new k8s.core.v1.Secret(
    "hmac-secret",
    {
      metadata: { name: desired.hmacSecret.name, namespace: desired.namespace, ownerReferences: owners },
      type: "Opaque",
      data: pulumi.secret({ [desired.hmacSecret.key]: randomBytes(32).toString("base64") }),
    },
    { provider, ignoreChanges: ["data", "stringData"], additionalSecretOutputs: ["data", "stringData"] },
  );
  type Ctor = new (name: string, args: never, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;
  const kinds: Record<string, Ctor> = {
    ServiceAccount: k8s.core.v1.ServiceAccount as unknown as Ctor,
    Role: k8s.rbac.v1.Role as unknown as Ctor,
    RoleBinding: k8s.rbac.v1.RoleBinding as unknown as Ctor,
    ConfigMap: k8s.core.v1.ConfigMap as unknown as Ctor,
    Deployment: k8s.apps.v1.Deployment as unknown as Ctor,
    Service: k8s.core.v1.Service as unknown as Ctor,
  };
  for (const manifest of desired.objects) {
    const ctor = kinds[manifest.kind] as Ctor;
    const m: Manifest =
      manifest.kind === "Deployment" || manifest.kind === "Service"
        ? {
            ...manifest,
            metadata: {
              ...manifest.metadata,
              annotations: { ...manifest.metadata.annotations, "pulumi.com/skipAwait": "true" },
            },
          }
        : manifest;
    const dependsOn = manifest.kind === "Deployment" ? [hmac] : [];
    new ctor(manifest.kind.toLowerCase(), m as never, { provider, dependsOn });
  }
  return stackOutputsOf(desired);
}

const manifests = (ns: string) => `apiVersion: ${API_VERSION}
kind: MCPGroup
metadata: {name: tools, namespace: ${ns}}
spec: {}
---
apiVersion: ${API_VERSION}
kind: MCPServerEntry
metadata: {name: alpha, namespace: ${ns}}
spec: {remoteUrl: "http://alpha.example.test/mcp", transport: streamable-http, groupRef: {name: tools}}
---
apiVersion: ${API_VERSION}
kind: VirtualMCPServer
metadata: {name: gateway, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}`;

interface StateResource {
  urn: string;
  type: string;
  id?: string;
  parent?: string;
}

describe("upgrading a stack of the previous release (main 5a54fb1, before the component)", function () {
  this.timeout(600_000);
  let ns: string;
  let stateDir: string;
  let desired: DesiredState;
  let legacy: Stack;
  let engine: Engine | undefined;
  const env = () => pulumiEnv({ passphrase: "test-passphrase", kubeconfig: controlPlane().kubeconfigPath });

  /** The stack's resources as the backend holds them. */
  async function resources(): Promise<StateResource[]> {
    const state = await legacy.exportStack();
    return (state.deployment as { resources?: StateResource[] }).resources ?? [];
  }

  /** What `pulumi stack --show-urns` prints for the stack (the user's view of the tree). */
  async function showUrns(): Promise<string> {
    const ws = legacy.workspace as LocalWorkspace;
    type Run = (args: string[], cwd: string, env: Record<string, string>) => Promise<{ stdout: string }>;
    const run = (ws.pulumiCommand as unknown as { run: Run }).run.bind(ws.pulumiCommand);
    return (await run(["stack", "--show-urns", "--stack", legacy.name], ws.workDir, ws.envVars)).stdout;
  }

  /** The uids of the stack's objects in the cluster: a replaced object gets a new one. */
  async function uids(): Promise<Record<string, string | undefined>> {
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const namespace = ns;
    const objects = [
      await core.readNamespacedServiceAccount({ name: "gateway-vmcp", namespace }),
      await rbac.readNamespacedRole({ name: "gateway-vmcp", namespace }),
      await rbac.readNamespacedRoleBinding({ name: "gateway-vmcp", namespace }),
      await core.readNamespacedConfigMap({ name: "gateway-vmcp-config", namespace }),
      await apps.readNamespacedDeployment({ name: "gateway", namespace }),
      await core.readNamespacedService({ name: "vmcp-gateway", namespace }),
      await core.readNamespacedSecret({ name: "gateway-hmac-secret", namespace }),
    ];
    return Object.fromEntries(objects.map((o) => [`${o.kind}/${o.metadata?.name}`, o.metadata?.uid]));
  }

  before(async () => {
    ns = await newNamespace("component");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-state-"));
    const parsed = parseManifests(manifests(ns), "test").objects;
    const body = parsed.find((o) => o.kind === "VirtualMCPServer") as VirtualMCPServer;
    const vmcp = (await kube(adminKubeConfig(), ns).createObject(body)) as VirtualMCPServer;
    const objects = parsed.map((o) => (o.kind === "VirtualMCPServer" ? vmcp : o));
    const b = build(gatherInputs(objectSet(objects), vmcp), {
      vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
    });
    assert.ok(b.desired, JSON.stringify(b.problems));
    desired = b.desired;

    // The stack exactly as the engine created it before the component: same project,
    // stack name, backend and secrets provider, the old program.
    const root = process.env.VMCP_PULUMI_ROOT;
    const workDir = mkdtempSync(join(tmpdir(), "vmcp-legacy-ws-"));
    legacy = await LocalWorkspace.createOrSelectStack(
      {
        stackName: stackName({ namespace: ns, name: "gateway" }),
        projectName: PROJECT,
        program: async () => declareBeforeComponent(desired),
      },
      {
        pulumiCommand: await PulumiCommand.get(root ? { root } : {}),
        workDir,
        envVars: env(),
        projectSettings: { name: PROJECT, runtime: "nodejs", backend: { url: `file://${stateDir}` } },
        secretsProvider: "passphrase",
      },
    );
    const created = await legacy.up();
    assert.equal(created.summary.resourceChanges?.create, 9, JSON.stringify(created.summary));
  });

  after(async () => {
    await engine?.destroy({ namespace: ns, name: "gateway" });
    await engine?.close();
    if (legacy) rmSync((legacy.workspace as LocalWorkspace).workDir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("the engine's update creates only the component and keeps every object (0 deletes, 0 replaces)", async () => {
    const before = await resources();
    const urnsBefore = await showUrns();
    assert.match(urnsBefore, /::pulumi:providers:kubernetes::k8s\n/, urnsBefore);
    assert.ok(
      before.every((r) => r.type === "pulumi:pulumi:Stack" || r.parent === before[0]?.urn),
      "the pre-component program declared everything at the top of the stack",
    );
    const uidsBefore = await uids();
    const hmacBefore = (
      await adminKubeConfig()
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns })
    ).data;

    engine = await createEngine({
      stateDir,
      passphrase: "test-passphrase",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    const preview = await engine.preview(desired);
    assert.deepEqual(preview.changes, [], "the preview changes no object");
    assert.deepEqual(preview.summary, { create: 1, same: 9 }, "preview: only the component is new");

    const up = await engine.up(desired);
    // 9 = the stack, the provider and the 7 objects; the 1 create is the component.
    assert.deepEqual(up.summary, { create: 1, same: 9 }, `up: ${JSON.stringify(up.summary)}`);
    assert.equal(up.outputs.desiredHash, desired.hash);

    const after = await resources();
    const urnsAfter = await showUrns();
    const component = after.filter((r) => r.type === COMPONENT_TYPE);
    assert.equal(component.length, 1, "one component");
    const componentUrn = component[0]?.urn;
    assert.equal(componentUrn, `urn:pulumi:${ns}.gateway::${PROJECT}::${COMPONENT_TYPE}::gateway`);
    const grouped = after.filter((r) => r.type !== "pulumi:pulumi:Stack" && r.type !== COMPONENT_TYPE);
    assert.equal(grouped.length, 8, "the provider and 7 objects");
    for (const r of grouped) assert.equal(r.parent, componentUrn, `${r.urn} is not under the component`);
    // Same resources by id: moved, not recreated.
    const ids = (rs: StateResource[]) =>
      rs
        .filter((r) => r.type !== "pulumi:pulumi:Stack" && r.type !== COMPONENT_TYPE)
        .map((r) => `${r.type} ${r.id}`)
        .sort();
    assert.deepEqual(ids(after), ids(before));
    // The user's view: the CLI lists the provider and the 7 objects under the component.
    const shown = urnsAfter.split("\n").filter((l) => /URN: .*kubernetes:/.test(l));
    const under = shown.filter((l) => l.includes(`::${COMPONENT_TYPE}$`));
    assert.equal(shown.length, 9, urnsAfter); // the component's own line, and its 8 children
    assert.equal(under.length, 8, urnsAfter);

    assert.deepEqual(await uids(), uidsBefore, "an object in the cluster was replaced");
    const hmacAfter = (
      await adminKubeConfig()
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns })
    ).data;
    assert.deepEqual(hmacAfter, hmacBefore, "the HMAC secret was regenerated");
  });

  it("after the upgrade the stack is stable: the next update changes nothing", async () => {
    const up = await (engine as Engine).up(desired);
    assert.deepEqual(up.summary, { same: 10 }, JSON.stringify(up.summary));
  });
});
