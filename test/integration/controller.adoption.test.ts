// Objects we did not create are left alone: a Service of a VirtualMCPServer's derived name,
// made by someone else before its first apply, stops the stack with a condition and one
// Event, without a retry loop, and is not touched; once it is gone (or the VirtualMCPServer
// opts in with vmcp.stacklok.dev/adopt=true) the stack is applied and the vMCP gets Ready.
// Adopted objects get no owner reference and survive the VirtualMCPServer's deletion; objects
// it owns already (ToolHive's operator left them) are taken with force, under our manager.
import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import type { Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { API_VERSION, conditionOf as cond, kube } from "../support/kube.js";
import { gone, poll } from "../support/poll.js";

describe("controller: objects of a VirtualMCPServer's names that are not its own (real engine)", function () {
  this.timeout(600_000);
  let ns: string;
  let controller: Controller;
  let tc: TestController | undefined;
  const k = kube(adminKubeConfig, () => ns);
  const spec = { groupRef: { name: "tools" }, incomingAuth: { type: "anonymous" } };

  /** A Service as another team would make it: their selector and port, their field manager. */
  const foreignService = (name: string) =>
    k.core().createNamespacedService({
      namespace: ns,
      fieldManager: "team-b-deploy",
      body: {
        metadata: { name, labels: { team: "b" } },
        spec: { selector: { app: "team-b" }, ports: [{ name: "web", port: 80, targetPort: 8080 }] },
      },
    });
  const conflictEvents = async (name: string) =>
    (
      await k.core().listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${name},reason=ObjectConflict`,
      })
    ).items;
  const ready = (name: string) =>
    poll(`${name} Ready`, async () => {
      const s = await k.statusOf(name);
      return s.phase === "Ready" ? s : undefined;
    });
  const conflicted = (name: string) =>
    poll(`${name} ObjectConflict`, async () => {
      const s = await k.statusOf(name);
      return cond(s, "StackApplied")?.reason === "ObjectConflict" ? s : undefined;
    });

  before(async () => {
    ns = await newNamespace("adopt");
    tc = await startTestController({
      name: "adopt",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        kubeconfig: adminKubeConfig(),
        namespace: ns,
        workers: 2,
        resyncMs: 3_600_000, // the periodic resync is triggered by hand below
        metricsAddr: "127.0.0.1:0",
        healthChecks: false, // the backend is a placeholder
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "error" }),
      },
    });
    controller = tc.controller;
    await k.readyGroup("tools");
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
  });

  after(async () => {
    await tc?.stop();
  });

  let theirs: V1Service;

  it("a foreign Service vmcp-gw: StackApplied=False ObjectConflict naming it and its manager, one Event, no retry", async () => {
    theirs = await foreignService("vmcp-gw");
    await k.create("VirtualMCPServer", "gw", spec);
    const s = await conflicted("gw");
    const applied = cond(s, "StackApplied");
    assert.equal(applied?.status, "False");
    assert.match(applied?.message ?? "", /Service vmcp-gw \(no owner; managed by team-b-deploy\)/);
    assert.equal(cond(s, "Ready")?.reason, "ObjectConflict");
    assert.equal(s.phase, "Failed");
    await controller.queue.idle();
    // Idle, nothing scheduled, no failure counted: nothing runs gw again until an event or the resync.
    assert.equal(controller.queue.isScheduled(`${ns}/gw`), false, "no retry or re-check scheduled");
    assert.equal(controller.queue.failuresOf(`${ns}/gw`), 0, "not in backoff");
    assert.equal((await conflictEvents("gw")).length, 1, "one Warning Event");
    // nothing of the stack was made, the foreign Service is as its owner left it
    await assert.rejects(
      k.apps().readNamespacedDeployment({ name: "gw", namespace: ns }),
      (e: unknown) => (e as { code?: number }).code === 404,
    );
    const now = await k.core().readNamespacedService({ name: "vmcp-gw", namespace: ns });
    assert.equal(
      now.metadata?.resourceVersion,
      theirs.metadata?.resourceVersion,
      "the foreign Service untouched",
    );
  });

  it("a resync while it is still there: checked again, the same condition, still one Event", async () => {
    const runs = controller.reconcileCounts.get(`${ns}/gw`) ?? 0;
    controller.queue.resync();
    await poll("the resync's reconcile", () =>
      (controller.reconcileCounts.get(`${ns}/gw`) ?? 0) > runs ? true : undefined,
    );
    await controller.queue.idle();
    assert.equal(cond(await k.statusOf("gw"), "StackApplied")?.reason, "ObjectConflict");
    assert.equal((await conflictEvents("gw")).length, 1, "no second Event for the same conflict");
  });

  it("the foreign Service deleted: the next resync applies the stack, gw gets Ready with its own Service", async () => {
    await k.core().deleteNamespacedService({ name: "vmcp-gw", namespace: ns });
    await gone("Service vmcp-gw", () => k.core().readNamespacedService({ name: "vmcp-gw", namespace: ns }));
    controller.queue.resync();
    const s = await ready("gw");
    assert.equal(cond(s, "StackApplied")?.status, "True");
    const svc = await k.core().readNamespacedService({ name: "vmcp-gw", namespace: ns });
    const uid = (await k.vmcp("gw")).metadata.uid;
    assert.equal(svc.metadata?.ownerReferences?.[0]?.uid, uid);
  });

  it("opting in with vmcp.stacklok.dev/adopt=true takes a foreign ServiceAccount over at once (no resync needed)", async () => {
    await k.core().createNamespacedServiceAccount({
      namespace: ns,
      fieldManager: "team-b-deploy",
      body: { metadata: { name: "gw2-vmcp", labels: { team: "b" } } },
    });
    await k.create("VirtualMCPServer", "gw2", spec);
    const s = await conflicted("gw2");
    assert.match(
      cond(s, "StackApplied")?.message ?? "",
      /ServiceAccount gw2-vmcp \(no owner; managed by team-b-deploy\)/,
    );
    await k.patch("VirtualMCPServer", "gw2", {
      metadata: { annotations: { "vmcp.stacklok.dev/adopt": "true" } },
    });
    const ready2 = await ready("gw2");
    assert.deepEqual(ready2.stackOutputs?.adopted, [{ kind: "ServiceAccount", name: "gw2-vmcp" }]);
    const sa = await k.core().readNamespacedServiceAccount({ name: "gw2-vmcp", namespace: ns });
    assert.equal(sa.metadata?.ownerReferences, undefined, "adopted: no owner reference");
    assert.equal(sa.metadata?.labels?.team, "b");
  });

  it("adopted with conflicting fields (another team's Service selector, their HMAC Secret's data): forced once, Ready", async () => {
    await foreignService("vmcp-gw3");
    await k.core().createNamespacedSecret({
      namespace: ns,
      fieldManager: "team-b-deploy",
      body: {
        metadata: { name: "gw3-hmac-secret", labels: { team: "b" } },
        data: { "hmac-secret": Buffer.from("team b's bytes").toString("base64") },
      },
    });
    await k.createObject({
      apiVersion: API_VERSION,
      kind: "VirtualMCPServer",
      metadata: { name: "gw3", namespace: ns, annotations: { "vmcp.stacklok.dev/adopt": "true" } },
      spec,
    } as never);
    const s = await ready("gw3");
    assert.deepEqual((s.stackOutputs?.adopted ?? []).map((o) => `${o.kind} ${o.name}`).sort(), [
      "Secret gw3-hmac-secret",
      "Service vmcp-gw3",
    ]);
    const svc = await k.core().readNamespacedService({ name: "vmcp-gw3", namespace: ns });
    assert.equal(svc.spec?.selector?.app, "virtualmcpserver", "our selector, taken with force");
    assert.equal(svc.metadata?.ownerReferences, undefined);
    const hmac = await k.core().readNamespacedSecret({ name: "gw3-hmac-secret", namespace: ns });
    assert.equal(Buffer.from(hmac.data?.["hmac-secret"] ?? "", "base64").length, 32, "our HMAC bytes");
  });

  it("deleting gw2 and gw3: the adopted objects stay, everything the stacks created is gone", async () => {
    await k.remove("VirtualMCPServer", "gw2");
    await k.remove("VirtualMCPServer", "gw3");
    for (const name of ["gw2", "gw3"]) await gone(`VirtualMCPServer ${name}`, () => k.vmcp(name));
    for (const name of ["gw2", "gw3"])
      await gone(`Deployment ${name}`, () => k.apps().readNamespacedDeployment({ name, namespace: ns }));
    await gone("Service vmcp-gw2", () => k.core().readNamespacedService({ name: "vmcp-gw2", namespace: ns }));
    const kept = <T>(what: string, read: () => Promise<T>): Promise<T> =>
      read().catch((e: unknown) =>
        assert.fail(`${what} was deleted with its VirtualMCPServer (HTTP ${(e as { code?: number }).code})`),
      );
    const sa = await kept("the adopted ServiceAccount gw2-vmcp", () =>
      k.core().readNamespacedServiceAccount({ name: "gw2-vmcp", namespace: ns }),
    );
    assert.equal(sa.metadata?.labels?.team, "b");
    const svc = await kept("the adopted Service vmcp-gw3", () =>
      k.core().readNamespacedService({ name: "vmcp-gw3", namespace: ns }),
    );
    assert.equal(svc.metadata?.labels?.team, "b");
    await kept("the adopted Secret gw3-hmac-secret", () =>
      k.core().readNamespacedSecret({ name: "gw3-hmac-secret", namespace: ns }),
    );
  });

  it("objects this VirtualMCPServer owns already (as ToolHive's operator leaves them), under another manager: taken with force", async () => {
    // The group does not exist yet: nothing is applied until the objects are in place.
    await k.createObject({
      apiVersion: API_VERSION,
      kind: "VirtualMCPServer",
      metadata: { name: "gw4", namespace: ns },
      spec: { ...spec, groupRef: { name: "later" } },
    } as never);
    const vmcp = await k.vmcp("gw4");
    const owner = {
      apiVersion: API_VERSION,
      kind: "VirtualMCPServer",
      name: "gw4",
      uid: vmcp.metadata.uid ?? "",
      controller: true,
    };
    await k.core().createNamespacedSecret({
      namespace: ns,
      fieldManager: "toolhive-operator",
      body: {
        metadata: { name: "gw4-hmac-secret", ownerReferences: [owner] },
        data: { "hmac-secret": Buffer.from("thv's bytes").toString("base64") },
      },
    });
    await k.entry("delta", "later", "http://delta.example.test/mcp");
    await k.readyGroup("later");
    const s = await ready("gw4");
    assert.equal(s.stackOutputs?.adopted, undefined, "its own objects are not adopted ones");
    const hmac = await k.core().readNamespacedSecret({ name: "gw4-hmac-secret", namespace: ns });
    assert.equal(hmac.metadata?.ownerReferences?.[0]?.uid, vmcp.metadata.uid);
    assert.ok(
      hmac.metadata?.managedFields?.some((f) => f.operation === "Apply" && /pulumi/i.test(f.manager ?? "")),
      JSON.stringify(hmac.metadata?.managedFields?.map((f) => f.manager)),
    );
  });
});
