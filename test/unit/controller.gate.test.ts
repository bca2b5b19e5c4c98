// One Pulumi process per change, and the optional preview gate (--preview-gate replacements):
// the pure decisions, then reconcile with the fake engine — what a user sees in status,
// Events and the engine calls.
import assert from "node:assert/strict";
import { MemoryCache } from "../../controller/cache.js";
import type { ResourceChange } from "../../controller/engine.js";
import type { RawObject, WatchedKind } from "../../controller/objects.js";
import { Reconciler } from "../../controller/reconcile.js";
import { changeApproved, disruptiveChanges, gateStep, type PreviewGate } from "../../controller/steps.js";
import type { Status } from "../../controller/status.js";
import { FakeEngine, FakeKube } from "../../controller/testing/fakes.js";
import { vmcpTriggerState, vmcpUpdateMatters } from "../../controller/triggers.js";
import { ANNOTATION_APPROVE_CHANGE } from "../../program/names.js";

const G = "toolhive.stacklok.dev/v1beta1";
const NS = "team";
const HASH = "0123456789abcdef0123456789abcdef";

const change = (kind: string, op: string, extra: Partial<ResourceChange> = {}): ResourceChange => ({
  urn: `urn:pulumi:s::p::kubernetes:x:${kind}::gw-${kind.toLowerCase()}`,
  type: `kubernetes:apps/v1:${kind}`,
  name: `gw-${kind.toLowerCase()}`,
  op,
  fields: [],
  ...extra,
});

describe("preview gate (pure)", () => {
  it("holds replacements and deletions of the Deployment/Service and selector changes, nothing else", () => {
    const sel = (app: string) => ({ spec: { selector: { matchLabels: { app } }, replicas: 1 } });
    assert.deepEqual(
      disruptiveChanges([
        change("Deployment", "create-replacement"),
        change("Deployment", "replace"),
        change("Deployment", "delete-replaced"),
        change("Service", "update", { before: sel("a"), after: sel("b") }),
        change("ConfigMap", "replace"),
        change("Secret", "delete"),
      ]),
      ["Deployment gw-deployment is replaced", "Service gw-service: spec.selector changes"],
    );
    assert.deepEqual(
      disruptiveChanges([
        change("Deployment", "update", {
          before: sel("a"),
          after: { spec: { ...sel("a").spec, replicas: 2 } },
        }),
        change("Service", "delete"),
      ]),
      ["Service gw-service is deleted"],
    );
    assert.deepEqual(disruptiveChanges([change("Deployment", "update", { fields: ["spec"] })]), []);
  });

  it("an approval names the change's hash (12 hex digits at least), never another one", () => {
    const a = (v: string) => ({ [ANNOTATION_APPROVE_CHANGE]: v });
    assert.equal(changeApproved(a(HASH.slice(0, 12)), HASH), true);
    assert.equal(changeApproved(a(HASH), HASH), true);
    assert.equal(changeApproved(a(HASH.slice(0, 6)), HASH), false, "too short to name one change");
    assert.equal(changeApproved(a("ffffffffffff"), HASH), false);
    assert.equal(changeApproved(undefined, HASH), false);
  });

  it("a held change: StackApplied=False/ChangeNeedsApproval naming the annotation, Degraded, one Warning", () => {
    const outcome = gateStep({ namespace: NS, name: "gw" }, ["Deployment gw is replaced"], HASH, new Map());
    const cond = outcome.conditions.find((c) => c.type === "StackApplied");
    assert.equal(cond?.status, "False");
    assert.equal(cond?.reason, "ChangeNeedsApproval");
    assert.equal(
      cond?.message,
      `Stack team.gw holds the change to 0123456789ab: Deployment gw is replaced. Annotate the ` +
        `VirtualMCPServer vmcp.stacklok.dev/approve-change=0123456789ab to apply it`,
    );
    assert.equal(outcome.phase?.phase, "Degraded");
    assert.equal(outcome.warnings?.length, 1);
    const again = gateStep(
      { namespace: NS, name: "gw" },
      ["Deployment gw is replaced"],
      HASH,
      new Map([["StackApplied", { ...cond!, lastTransitionTime: "t" }]]),
    );
    assert.equal(again.warnings?.length, 0, "the same held change warns once");
    // A second reconcile may read a status from before the first one's write: what this
    // process held already is not warned about again either.
    const raced = gateStep(
      { namespace: NS, name: "gw" },
      ["Deployment gw is replaced"],
      HASH,
      new Map(),
      true,
    );
    assert.equal(raced.warnings?.length, 0, "held before by this process: no second Warning");
  });

  it("the approve annotation triggers a reconcile", () => {
    const obj = (approve?: string): RawObject => ({
      metadata: {
        generation: 2,
        ...(approve ? { annotations: { [ANNOTATION_APPROVE_CHANGE]: approve } } : {}),
      },
    });
    assert.equal(vmcpUpdateMatters(vmcpTriggerState(obj()), vmcpTriggerState(obj("abc"))), true);
    assert.equal(vmcpUpdateMatters(vmcpTriggerState(obj("abc")), vmcpTriggerState(obj("abc"))), false);
  });
});

function harness(previewGate?: PreviewGate) {
  const cache = new MemoryCache();
  const kube = new FakeKube();
  const engine = new FakeEngine();
  const r = new Reconciler({
    cache,
    engine,
    kube,
    settings: { vmcpImage: "vmcp:test" },
    now: () => new Date("2026-03-01T00:00:00Z"),
    applyGraceMs: 0,
    ...(previewGate ? { previewGate } : {}),
  });
  engine.onApply = (d) => {
    for (const o of d.objects) {
      if (!["ConfigMap", "Deployment", "Service"].includes(o.kind)) continue;
      const copy = structuredClone(o) as RawObject;
      if (o.kind === "Deployment") copy.status = { readyReplicas: 1 };
      cache.set(o.kind as WatchedKind, copy);
    }
  };
  cache.set("MCPGroup", {
    apiVersion: G,
    kind: "MCPGroup",
    metadata: { name: "eng", namespace: NS },
    spec: {},
    status: { phase: "Ready" },
  });
  cache.set("MCPServer", {
    apiVersion: G,
    kind: "MCPServer",
    metadata: { name: "fetch", namespace: NS },
    spec: { image: "img", transport: "streamable-http", groupRef: { name: "eng" } },
    status: { phase: "Ready", url: `http://mcp-fetch-proxy.${NS}.svc.cluster.local:8080/mcp` },
  });
  let generation = 1;
  const put = (spec: Record<string, unknown>, annotations?: Record<string, string>) => {
    const current = kube.objects.get(`${NS}/gw`);
    const obj: RawObject = {
      apiVersion: G,
      kind: "VirtualMCPServer",
      metadata: {
        ...(current?.metadata ?? {}),
        name: "gw",
        namespace: NS,
        uid: "uid-gw",
        generation: generation++,
        ...(annotations ? { annotations } : {}),
      },
      spec: { groupRef: { name: "eng" }, incomingAuth: { type: "anonymous" }, ...spec },
      ...(current?.status ? { status: current.status } : {}),
    };
    cache.set("VirtualMCPServer", kube.put(obj));
  };
  const reconcile = async () => {
    await r.reconcile(`${NS}/gw`);
    cache.set("VirtualMCPServer", kube.objects.get(`${NS}/gw`)!);
  };
  const status = () => (kube.objects.get(`${NS}/gw`)?.status ?? {}) as Status;
  const cond = (type: string) => status().conditions?.find((c) => c.type === type);
  const ops = () => engine.calls.map((c) => c.op);
  const reasons = () => kube.events.map((e) => e.reason);
  return { engine, kube, put, reconcile, status, cond, ops, reasons };
}

const timeout = (s: number) => ({ config: { operational: { timeouts: { default: `${s}s` } } } });

describe("one Pulumi process per change (fake engine)", () => {
  it("a spec change is one up; its plan (from the up) is the Preview Event and status.lastPreview", async () => {
    const h = harness();
    h.put(timeout(10));
    await h.reconcile();
    h.put(timeout(20));
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up", "up"]);
    assert.equal(h.engine.processesStarted, 2);
    assert.deepEqual(h.reasons(), ["Preview", "StackUpdated", "Preview", "StackUpdated"]);
    const preview = h.kube.events[2]!.message;
    assert.match(preview, /^Preview: update=1: update ConfigMap gw-vmcp-config \[data\]/);
    assert.deepEqual(h.status().lastPreview?.changes, [
      { kind: "ConfigMap", name: "gw-vmcp-config", op: "update", fields: ["data"] },
    ]);
  });
});

describe("--preview-gate replacements (fake engine)", () => {
  const replaceDeployment: ResourceChange[] = [
    change("Deployment", "replace", { name: "gw", fields: ["spec"] }),
    change("ConfigMap", "update", { name: "gw-vmcp-config", fields: ["data"] }),
  ];

  it("no preview for a first apply; a harmless change is previewed, then applied; its plan recorded once", async () => {
    const h = harness("replacements");
    h.put(timeout(10));
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up"], "a new stack has nothing to replace: no preview");
    h.put(timeout(20));
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up", "preview", "up"]);
    assert.equal(h.reasons().filter((r) => r === "Preview").length, 2, "one Preview Event per change");
    assert.equal(h.cond("StackApplied")?.status, "True");
  });

  it("a replacement is held until the approve annotation names its hash; then one up, no second preview", async () => {
    const h = harness("replacements");
    h.put(timeout(10));
    await h.reconcile();
    const appliedHash = h.status().appliedHash;
    h.engine.planOverride = replaceDeployment;
    h.put(timeout(20));
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up", "preview"], "held: no up");
    const held = h.cond("StackApplied");
    assert.equal(held?.status, "False");
    assert.equal(held?.reason, "ChangeNeedsApproval");
    assert.match(held?.message ?? "", /Deployment gw is replaced/);
    const hash = /approve-change=([0-9a-f]{12})/.exec(held?.message ?? "")?.[1];
    assert.ok(hash, held?.message);
    assert.equal(h.status().phase, "Degraded");
    assert.equal(h.status().appliedHash, appliedHash, "nothing applied");
    assert.equal(h.status().lastPreview?.changes[0]?.op, "replace", "the preview is recorded");
    assert.equal(h.kube.events.filter((e) => e.reason === "ChangeNeedsApproval").length, 1);

    await h.reconcile(); // a resync, an object event: no second preview, no second Warning
    assert.deepEqual(h.ops(), ["up", "preview"]);
    assert.equal(h.kube.events.filter((e) => e.reason === "ChangeNeedsApproval").length, 1);

    h.put(timeout(20), { [ANNOTATION_APPROVE_CHANGE]: "ffffffffffff" });
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up", "preview"], "an approval of another hash approves nothing");

    h.put(timeout(20), { [ANNOTATION_APPROVE_CHANGE]: hash });
    await h.reconcile();
    assert.deepEqual(h.ops(), ["up", "preview", "up"]);
    assert.equal(h.cond("StackApplied")?.status, "True");
    assert.equal(h.status().phase, "Ready");
    assert.notEqual(h.status().appliedHash, appliedHash);
  });
});
