// Proof that the real Pulumi engine runs our program against a real API server:
// one stack per VirtualMCPServer, DIY file backend, inline program.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { parseManifests } from "../../program/manifests.js";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { build, type DesiredState } from "../../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../../program/inputs.js";
import type { VirtualMCPServer } from "../../api/index.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { API_VERSION, kube } from "../support/kube.js";

function manifests(ns: string, members: string[]): string {
  const entries = members.map(
    (m) => `---
apiVersion: ${API_VERSION}
kind: MCPServerEntry
metadata: {name: ${m}, namespace: ${ns}}
spec: {remoteUrl: "http://${m}.example.test/mcp", transport: streamable-http, groupRef: {name: tools}}`,
  );
  return `apiVersion: ${API_VERSION}
kind: MCPGroup
metadata: {name: tools, namespace: ${ns}}
spec: {}
---
apiVersion: ${API_VERSION}
kind: VirtualMCPServer
metadata: {name: gateway, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}
${entries.join("\n")}`;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("Pulumi engine against the local API server", function () {
  this.timeout(600_000);
  let ns: string;
  let engine: Engine;
  let stateDir: string;
  let vmcp: VirtualMCPServer;
  const kc = () => adminKubeConfig();

  async function desiredFor(members: string[]): Promise<DesiredState> {
    const objects: AnyObject[] = parseManifests(manifests(ns, members), "test").objects.map((o) =>
      o.kind === "VirtualMCPServer" ? vmcp : o,
    );
    const b = build(gatherInputs(objectSet(objects), vmcp), {
      vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
    });
    assert.ok(b.desired, JSON.stringify(b.problems));
    return b.desired;
  }

  before(async () => {
    ns = await newNamespace("engine");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-state-"));
    engine = await createEngine({
      stateDir,
      passphrase: "test-passphrase",
      kubeconfig: controlPlane().kubeconfigPath,
      historyKeep: 2,
    });
    const body = parseManifests(manifests(ns, []), "test").objects.find((o) => o.kind === "VirtualMCPServer");
    if (!body) throw new Error("the manifests hold no VirtualMCPServer");
    const created = await kube(kc(), ns).createObject(body);
    vmcp = created as VirtualMCPServer;
  });

  after(async () => {
    await engine?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("previews the creates of a new stack, with no CLI process but the preview", async () => {
    const processes = engine.processesStarted;
    const preview = await engine.preview(await desiredFor(["alpha", "beta"]));
    assert.equal(
      engine.processesStarted - processes,
      1,
      "`preview` alone: no `stack select`, no `stack init`",
    );
    const kinds = preview.changes.filter((c) => c.op === "create").map((c) => c.type.split(":").pop());
    for (const kind of [
      "ServiceAccount",
      "Role",
      "RoleBinding",
      "ConfigMap",
      "Deployment",
      "Service",
      "Secret",
    ]) {
      assert.ok(kinds.includes(kind), `preview does not create a ${kind}: ${kinds.join(", ")}`);
    }
    assert.ok((preview.summary.create ?? 0) >= 7, JSON.stringify(preview.summary));
  });

  it("creates the objects with owner references, and the Deployment becomes Available", async () => {
    const desired = await desiredFor(["alpha", "beta"]);
    const result = await engine.up(desired);
    assert.equal(result.outputs.url, `http://vmcp-gateway.${ns}.svc.cluster.local:4483`);
    assert.equal(result.outputs.desiredHash, desired.hash);
    assert.ok((result.summary.create ?? 0) >= 7, `summary: ${JSON.stringify(result.summary)}`);

    const core = kc().makeApiClient(CoreV1Api);
    const apps = kc().makeApiClient(AppsV1Api);
    const rbac = kc().makeApiClient(RbacAuthorizationV1Api);
    const owned = [
      await core.readNamespacedConfigMap({ name: "gateway-vmcp-config", namespace: ns }),
      await apps.readNamespacedDeployment({ name: "gateway", namespace: ns }),
      await core.readNamespacedService({ name: "vmcp-gateway", namespace: ns }),
      await core.readNamespacedServiceAccount({ name: "gateway-vmcp", namespace: ns }),
      await rbac.readNamespacedRole({ name: "gateway-vmcp", namespace: ns }),
      await rbac.readNamespacedRoleBinding({ name: "gateway-vmcp", namespace: ns }),
      await core.readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns }),
    ];
    for (const o of owned) {
      assert.equal(
        o.metadata?.ownerReferences?.[0]?.uid,
        vmcp.metadata.uid,
        `${o.metadata?.name} is not owned`,
      );
    }
    const cm = owned[0] as { data?: Record<string, string> };
    assert.match(cm.data?.["config.yaml"] ?? "", /name: alpha/);
    const hmac = owned[6] as { data?: Record<string, string> };
    assert.equal(Buffer.from(hmac.data?.["hmac-secret"] ?? "", "base64").length, 32);

    await waitFor("Deployment Available", async () => {
      const d = await apps.readNamespacedDeployment({ name: "gateway", namespace: ns });
      return d.status?.conditions?.some((c) => c.type === "Available" && c.status === "True")
        ? true
        : undefined;
    });
  });

  it("updates a spec change in place: ConfigMap and Deployment keep their uid, pods roll by checksum", async () => {
    const core = kc().makeApiClient(CoreV1Api);
    const apps = kc().makeApiClient(AppsV1Api);
    const cmBefore = await core.readNamespacedConfigMap({ name: "gateway-vmcp-config", namespace: ns });
    const depBefore = await apps.readNamespacedDeployment({ name: "gateway", namespace: ns });
    const hmacBefore = await core.readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns });

    const desired = await desiredFor(["alpha", "beta", "gamma"]);
    const preview = await engine.preview(desired);
    const ops = Object.fromEntries(preview.changes.map((c) => [c.type.split(":").pop(), c.op]));
    assert.equal(ops.ConfigMap, "update", JSON.stringify(preview.changes));
    assert.equal(ops.Deployment, "update", JSON.stringify(preview.changes));
    assert.ok(
      !preview.changes.some((c) => c.op.includes("replace")),
      `a replacement: ${JSON.stringify(preview.changes)}`,
    );
    assert.ok(!("Secret" in ops), "the generated HMAC secret must not change");

    await engine.up(desired);
    const cmAfter = await core.readNamespacedConfigMap({ name: "gateway-vmcp-config", namespace: ns });
    const depAfter = await apps.readNamespacedDeployment({ name: "gateway", namespace: ns });
    const hmacAfter = await core.readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns });
    assert.equal(cmAfter.metadata?.uid, cmBefore.metadata?.uid, "ConfigMap was replaced");
    assert.equal(depAfter.metadata?.uid, depBefore.metadata?.uid, "Deployment was replaced");
    assert.match(cmAfter.data?.["config.yaml"] ?? "", /name: gamma/);
    assert.deepEqual(hmacAfter.data, hmacBefore.data, "the HMAC secret was regenerated");
    const checksum =
      depAfter.spec?.template.metadata?.annotations?.["toolhive.stacklok.dev/runconfig-checksum"];
    assert.equal(checksum, desired.configChecksum);
    assert.notEqual(
      checksum,
      depBefore.spec?.template.metadata?.annotations?.["toolhive.stacklok.dev/runconfig-checksum"],
    );
    await waitFor("the new ReplicaSet rolled out", async () => {
      const d = await apps.readNamespacedDeployment({ name: "gateway", namespace: ns });
      const done =
        d.status?.observedGeneration === d.metadata?.generation &&
        d.status?.updatedReplicas === 1 &&
        d.status?.availableReplicas === 1 &&
        (d.status?.replicas ?? 0) === 1;
      return done ? true : undefined;
    });
  });

  it("keeps only the newest updates in the file backend's history", async () => {
    const desired = await desiredFor(["alpha", "beta", "gamma"]);
    await engine.up(desired); // a third and a fourth update of this stack
    await engine.up(desired);
    const dir = join(stateDir, ".pulumi", "history", "vmcp-operator", `${ns}.gateway`);
    const stamps = new Set(readdirSync(dir).map((f) => /-(\d+)\.(history|checkpoint)\.json/.exec(f)?.[1]));
    assert.equal(stamps.size, 2, `history holds ${readdirSync(dir).join(", ")}`);
  });

  it("a restarted engine on the same state: an up is one CLI process, and the stack's secrets still decrypt", async () => {
    const restarted = await createEngine({
      stateDir,
      passphrase: "test-passphrase",
      kubeconfig: controlPlane().kubeconfigPath,
      historyKeep: 2,
    });
    try {
      assert.equal(await restarted.exists({ namespace: ns, name: "nothing-here" }), false);
      assert.equal(restarted.processesStarted, 0, "a stack that does not exist: no process to say so");
      const desired = await desiredFor(["alpha", "beta"]);
      const result = await restarted.up(desired);
      assert.equal(restarted.processesStarted, 1, "`up` alone, no `stack select`");
      assert.equal(result.outputs.desiredHash, desired.hash);
      assert.equal(
        result.changes.find((c) => c.type.endsWith(":Secret"))?.op ?? "same",
        "same",
        "the HMAC Secret (a Pulumi secret in the state) is read back, not regenerated",
      );
    } finally {
      await restarted.close();
    }
  });

  it("keeps secret values out of the state files", async () => {
    const core = kc().makeApiClient(CoreV1Api);
    const hmac = await core.readNamespacedSecret({ name: "gateway-hmac-secret", namespace: ns });
    const value = hmac.data?.["hmac-secret"] ?? "";
    assert.ok(value.length > 0);
    const token = controlPlane().token;
    for (const file of filesUnder(stateDir)) {
      const text = readFileSync(file, "utf8");
      assert.ok(!text.includes(value), `${file} holds the HMAC secret in plaintext`);
      assert.ok(!text.includes(token), `${file} holds the API token`);
    }
  });

  it("destroys everything and removes the stack; the owned HMAC Secret goes with its VirtualMCPServer", async () => {
    await engine.destroy({ namespace: ns, name: "gateway" });
    const core = kc().makeApiClient(CoreV1Api);
    const apps = kc().makeApiClient(AppsV1Api);
    const opaque = async () =>
      (await core.listNamespacedSecret({ namespace: ns })).items
        .filter((s) => s.type === "Opaque")
        .map((s) => s.metadata?.name);
    await waitFor("objects deleted", async () => {
      const left = [
        ...(await core.listNamespacedConfigMap({ namespace: ns })).items.filter(
          (c) => c.metadata?.name !== "kube-root-ca.crt",
        ),
        ...(await apps.listNamespacedDeployment({ namespace: ns })).items,
        ...(await core.listNamespacedService({ namespace: ns })).items,
      ];
      return left.length === 0 ? true : undefined;
    });
    // The provider would wait for the Secret's deletion with an informer over all Secrets
    // (list + watch, which the chart does not grant): the garbage collector deletes it instead.
    assert.deepEqual(await opaque(), ["gateway-hmac-secret"], "left to the garbage collector");
    await kube(kc(), ns).remove("VirtualMCPServer", "gateway");
    await waitFor("the HMAC Secret collected with its owner", async () =>
      (await opaque()).length === 0 ? true : undefined,
    );
    assert.equal(await engine.exists({ namespace: ns, name: "gateway" }), false);
    const stacks = filesUnder(stateDir).filter(
      (f) => f.includes(`${ns}.gateway`) && f.endsWith(".json") && statSync(f).size > 0,
    );
    assert.deepEqual(
      stacks.filter((f) => f.includes("/stacks/")),
      [],
      "stack state left behind",
    );
    // Nor a copy of its last checkpoint (<stack>.json.bak, with its encrypted secrets), nor its history.
    assert.deepEqual(
      filesUnder(stateDir).filter((f) => f.includes(`${ns}.gateway`)),
      [],
      "files of the removed stack left in the backend",
    );
  });
});
