// One Pulumi process per change, restarts without Pulumi, and the preview gate, against the
// local control plane and the real engine: what a user sees in Events, status and objects,
// and how many Pulumi CLI processes the controller started for it.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { VirtualMCPServer } from "../../api/index.js";
import { cacheObjectSet } from "../../controller/cache.js";
import { jsonLogger } from "../../controller/log.js";
import { startController, type Controller } from "../../controller/main.js";
import type { PreviewGate } from "../../controller/steps.js";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { build, type DesiredState } from "../../program/desired.js";
import { gatherInputs } from "../../program/inputs.js";
import { ANNOTATION_APPROVE_CHANGE, DEFAULT_VMCP_IMAGE } from "../../program/names.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { conditionOf as cond, kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

describe("one Pulumi process per change, restarts, preview gate (real engine)", function () {
  this.timeout(600_000);
  let ns: string;
  const state = mkdtempSync(join(tmpdir(), "vmcp-onepass-state-"));
  const k = kube(adminKubeConfig, () => ns);
  let running: { controller: Controller; engine: Engine } | undefined;

  /** A controller (and engine) on the shared state dir, as a restarted process would be. */
  async function start(previewGate: PreviewGate = "off") {
    const engine = await createEngine({
      stateDir: state,
      passphrase: "test",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    const controller = await startController({
      kubeconfig: adminKubeConfig(),
      namespace: ns,
      workers: 2,
      resyncMs: 3_600_000,
      engine,
      healthChecks: false,
      previewGate,
      log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }),
    });
    running = { controller, engine };
    return running;
  }
  async function stop() {
    await running?.controller.stop(30_000);
    await running?.engine.close();
    running = undefined;
  }
  const events = async (name: string, reason: string) =>
    (
      await k.core().listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })
    ).items.filter((e) => e.reason === reason);
  const applied = (name: string, not?: string) =>
    poll(`${name} applied`, async () => {
      const s = await k.statusOf(name);
      return s.appliedHash && s.appliedHash !== not && s.appliedHash === s.stackOutputs?.desiredHash
        ? s
        : undefined;
    });
  const setTimeoutS = (name: string, s: number) =>
    k.patchSpec("VirtualMCPServer", name, { config: { operational: { timeouts: { default: `${s}s` } } } });
  /** Every reconcile the keys need has run: nothing queued, nothing in flight. */
  const settled = async (c: Controller, keys: string[]) => {
    await poll("reconciled", async () =>
      keys.every((key) => c.reconcileCounts.get(key)) ? true : undefined,
    );
    await c.queue.idle();
  };

  before(async () => {
    ns = await newNamespace("onepass");
    await k.readyGroup("tools");
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
  });

  after(async () => {
    await stop();
    rmSync(state, { recursive: true, force: true });
  });

  it("a spec change is one Pulumi process; its diff is the Preview Event and status.lastPreview", async () => {
    const { controller, engine } = await start();
    for (const name of ["gw", "gw2"])
      await k.create("VirtualMCPServer", name, {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
      });
    const first = await applied("gw");
    await applied("gw2");
    await settled(controller, [`${ns}/gw`, `${ns}/gw2`]);
    const before = engine.processesStarted;
    const previews = (await events("gw", "Preview")).length;
    await setTimeoutS("gw", 42);
    const st = await applied("gw", first.appliedHash);
    await controller.queue.idle();
    assert.equal(engine.processesStarted - before, 1, "one CLI process: the up");
    const changes = st.lastPreview?.changes ?? [];
    assert.deepEqual(
      changes.find((c) => c.kind === "ConfigMap"),
      { kind: "ConfigMap", name: "gw-configmap", op: "update", fields: ["data", "metadata"] },
      JSON.stringify(changes),
    );
    assert.deepEqual(
      changes.find((c) => c.kind === "Deployment"),
      { kind: "Deployment", name: "gw-deployment", op: "update", fields: ["spec"] },
      "the Deployment's checksum changes",
    );
    assert.equal(st.lastPreview?.summary.update, 2, JSON.stringify(st.lastPreview?.summary));
    const preview = await poll("the change's Preview Event", async () => {
      const list = await events("gw", "Preview");
      return list.length > previews ? list : undefined;
    });
    const message = preview.map((e) => e.message).join("\n");
    assert.match(message, /Preview: update=2: /);
    assert.match(message, /update ConfigMap gw-configmap \[data,metadata\]/);
    assert.match(message, /update Deployment gw-deployment \[spec\]/);
  });

  it("a restart with nothing locked starts no Pulumi process; a locked stack costs its unlock only", async () => {
    await stop();
    let { controller, engine } = await start();
    await settled(controller, [`${ns}/gw`, `${ns}/gw2`]);
    assert.equal(engine.processesStarted, 0, "nothing locked, everything applied: no Pulumi process");
    await stop();

    // A stale lock, as a controller killed during an up of gw2 leaves it.
    const locks = join(state, ".pulumi", "locks", "organization", "vmcp-operator", `${ns}.gw2`);
    mkdirSync(locks, { recursive: true });
    writeFileSync(
      join(locks, "0f0e0d0c-0b0a-4909-8807-060504030201.json"),
      JSON.stringify({
        pid: 999999,
        username: "killed",
        hostname: "gone",
        timestamp: new Date().toISOString(),
      }),
    );
    ({ controller, engine } = await start());
    await settled(controller, [`${ns}/gw`, `${ns}/gw2`]);
    assert.deepEqual(readdirSync(locks), [], "the stale lock is gone");
    assert.equal(
      engine.processesStarted,
      1,
      "`pulumi cancel` of gw2 alone (a stack is a file: no `stack select`)",
    );
    const gw2 = await k.statusOf("gw2");
    assert.equal(cond(gw2, "StackApplied")?.status, "True");
  });

  it("--preview-gate replacements holds a selector change until the approve annotation names it", async () => {
    // The stack as an older operator applied it, whose Service selected one more label (an
    // upgrade that moves a selector): seeded through the engine, status as it wrote it.
    const { controller } = running!;
    const set = cacheObjectSet(controller.informers);
    const vmcp = set.get("VirtualMCPServer", ns, "gw") as VirtualMCPServer;
    const desired = build(gatherInputs(set, vmcp), { vmcpImage: DEFAULT_VMCP_IMAGE }).desired!;
    await stop();
    const old: DesiredState = structuredClone(desired);
    old.hash = "0000000000000000seeded";
    for (const o of old.objects.filter((o) => o.kind === "Service"))
      (o.spec as { selector: Record<string, string> }).selector["vmcp.stacklok.dev/generation"] = "old";
    const seed = await createEngine({
      stateDir: state,
      passphrase: "test",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    await seed.up(old);
    await seed.close();
    await k.patchStatus("VirtualMCPServer", "gw", { appliedHash: old.hash });
    const service = async () => k.core().readNamespacedService({ name: "vmcp-gw", namespace: ns });
    assert.equal((await service()).spec?.selector?.["vmcp.stacklok.dev/generation"], "old", "seeded");

    const { engine } = await start("replacements");
    const held = await poll("the change held", async () => {
      const s = await k.statusOf("gw");
      return cond(s, "StackApplied")?.reason === "ChangeNeedsApproval" ? s : undefined;
    });
    const message = cond(held, "StackApplied")?.message ?? "";
    assert.match(message, /Service vmcp-gw: spec\.selector changes/);
    const hash = /approve-change=([0-9a-f]{12})/.exec(message)?.[1];
    assert.ok(hash && desired.hash.startsWith(hash), message);
    assert.equal(held.phase, "Degraded");
    assert.equal(held.appliedHash, old.hash, "nothing applied");
    assert.ok(held.lastPreview?.changes.some((c) => c.kind === "Service" && c.op === "update"));
    assert.equal((await events("gw", "ChangeNeedsApproval")).length, 1, "one Warning Event");
    assert.equal((await service()).spec?.selector?.["vmcp.stacklok.dev/generation"], "old", "untouched");
    await running!.controller.queue.idle();
    const previews = engine.processesStarted;

    await k.patch("VirtualMCPServer", "gw", {
      metadata: { annotations: { [ANNOTATION_APPROVE_CHANGE]: hash } },
    });
    const after = await applied("gw", old.hash);
    assert.equal(after.appliedHash, desired.hash);
    assert.equal(cond(after, "StackApplied")?.status, "True");
    assert.equal((await service()).spec?.selector?.["vmcp.stacklok.dev/generation"], undefined, "applied");
    await running!.controller.queue.idle();
    assert.equal(engine.processesStarted - previews, 1, "approved: one up, no second preview");
  });
});
