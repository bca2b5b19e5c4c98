// Before a stack's first apply: which existing objects of its derived names it may take
// over (steps.ts adoptionStep), and what the reconcile does when one is not its own.
import assert from "node:assert/strict";
import { CONDITION, REASON } from "../../controller/conditions.js";
import type { ObjectMeta, RawObject } from "../../controller/objects.js";
import { Reconciler } from "../../controller/reconcile.js";
import { FINALIZER } from "../../program/names.js";
import {
  adoptionStep,
  PENDING_DELETION_RECHECK_MS,
  previousConditions,
  stackObjects,
  takeOverOf,
  type AdoptionFacts,
  type ExistingObject,
} from "../../controller/steps.js";
import { MemoryCache } from "../../controller/cache.js";
import { FakeEngine, FakeKube } from "../../controller/testing/fakes.js";
import type { Status } from "../../controller/status.js";
import type { DesiredState } from "../../program/desired.js";
import { baseLabels, configMapLabels, ANNOTATION_ADOPT } from "../../program/names.js";

const G = "toolhive.stacklok.dev/v1beta1";
const NS = "team";
const UID = "uid-gw";
const stack = { namespace: NS, name: "gw" };

const foreignService: ExistingObject = {
  kind: "Service",
  name: "vmcp-gw",
  metadata: {
    name: "vmcp-gw",
    managedFields: [{ manager: "kubectl-client-side-apply", operation: "Update" }],
  },
};
const facts = (existing: ExistingObject[], extra: Partial<AdoptionFacts> = {}): AdoptionFacts => ({
  stack,
  uid: UID,
  annotations: undefined,
  existing,
  previous: previousConditions(undefined),
  ...extra,
});
const ownedBy = (uid: string, name = "gw"): ObjectMeta["ownerReferences"] => [
  { apiVersion: G, kind: "VirtualMCPServer", name, uid },
];

describe("adoptionStep (pure)", () => {
  it("goes ahead when nothing of the stack's names exists", () => {
    assert.equal(adoptionStep(facts([])), undefined);
  });

  it("adopts objects owned by this VirtualMCPServer (its uid), or labelled for it", () => {
    assert.equal(
      adoptionStep(
        facts([
          { kind: "Secret", name: "gw-hmac-secret", metadata: { ownerReferences: ownedBy(UID) } },
          { kind: "Service", name: "vmcp-gw", metadata: { labels: baseLabels("gw") } },
          { kind: "ConfigMap", name: "gw-vmcp-config", metadata: { labels: configMapLabels("gw") } },
        ]),
      ),
      undefined,
    );
  });

  it("refuses a foreign object: conditions name it, its owner and its managers; one Warning; terminal", () => {
    const out = adoptionStep(facts([foreignService]));
    assert.ok(out);
    const applied = out.conditions.find((c) => c.type === CONDITION.StackApplied);
    assert.equal(applied?.status, "False");
    assert.equal(applied?.reason, REASON.ObjectConflict);
    assert.match(
      applied?.message ?? "",
      /Service vmcp-gw \(no owner; managed by kubectl-client-side-apply\)/,
    );
    assert.match(applied?.message ?? "", /vmcp\.stacklok\.dev\/adopt=true/);
    assert.equal(out.conditions.find((c) => c.type === CONDITION.Ready)?.reason, REASON.ObjectConflict);
    assert.equal(out.phase?.phase, "Failed");
    assert.deepEqual(
      out.warnings?.map((w) => w.reason),
      [REASON.ObjectConflict],
    );
    assert.equal(out.stop?.kind, "terminal");
  });

  it("does not repeat the Warning while the conflict stays", () => {
    const previous = previousConditions({
      conditions: [
        {
          type: CONDITION.StackApplied,
          status: "False",
          reason: REASON.ObjectConflict,
          message: "",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    });
    const out = adoptionStep(facts([foreignService], { previous }));
    assert.deepEqual(out?.warnings, []);
    assert.equal(out?.stop?.kind, "terminal");
  });

  it("labels of another VirtualMCPServer, or another VirtualMCPServer as owner, are not ours", () => {
    const other = adoptionStep(
      facts([
        { kind: "Service", name: "vmcp-gw", metadata: { labels: baseLabels("gw2") } },
        { kind: "Role", name: "gw-vmcp", metadata: { ownerReferences: ownedBy("uid-x", "other") } },
      ]),
    );
    assert.equal(other?.stop?.kind, "terminal");
    assert.match(
      other?.conditions[0]?.message ?? "",
      /Role gw-vmcp \(owned by VirtualMCPServer other; managed by unknown\)/,
    );
  });

  it("takes everything over with the opt-in annotation", () => {
    assert.equal(
      adoptionStep(facts([foreignService], { annotations: { [ANNOTATION_ADOPT]: "true" } })),
      undefined,
    );
    assert.ok(adoptionStep(facts([foreignService], { annotations: { [ANNOTATION_ADOPT]: "yes" } })));
  });

  it("waits for an object a deleted VirtualMCPServer of this name still owns (garbage collection pending)", () => {
    const out = adoptionStep(
      facts([{ kind: "Secret", name: "gw-hmac-secret", metadata: { ownerReferences: ownedBy("uid-old") } }]),
    );
    assert.equal(out?.conditions[0]?.reason, REASON.ObjectPendingDeletion);
    assert.deepEqual(out?.stop, { kind: "after", ms: PENDING_DELETION_RECHECK_MS });
    assert.equal(out?.warnings, undefined);
  });
});

describe("reconcile: adoption before the first apply (fake engine)", () => {
  function harness() {
    const cache = new MemoryCache();
    const kube = new FakeKube();
    const engine = new FakeEngine();
    const r = new Reconciler({ cache, engine, kube, settings: { vmcpImage: "vmcp:test" }, applyGraceMs: 0 });
    cache.set("MCPGroup", {
      apiVersion: G,
      kind: "MCPGroup",
      metadata: { name: "eng", namespace: NS },
      spec: {},
      status: { phase: "Ready" },
    });
    const vmcp: RawObject = {
      apiVersion: G,
      kind: "VirtualMCPServer",
      metadata: { name: "gw", namespace: NS, generation: 1, uid: UID },
      spec: { groupRef: { name: "eng" }, incomingAuth: { type: "anonymous" } },
    };
    cache.set("VirtualMCPServer", kube.put(vmcp));
    const reconcile = async () => {
      const res = await r.reconcile(`${NS}/gw`);
      for (const o of kube.objects.values()) cache.set("VirtualMCPServer", o);
      return res;
    };
    const status = () => (kube.objects.get(`${NS}/gw`)?.status ?? {}) as Status;
    return { cache, kube, engine, r, reconcile, status };
  }

  it("looks up every object of the stack's names before an up, not when nothing changed", async () => {
    const h = harness();
    let desired: DesiredState | undefined;
    h.engine.onApply = (d) => {
      desired = d;
      for (const o of d.objects) h.cache.set(o.kind as "ConfigMap", o as unknown as RawObject);
    };
    await h.reconcile();
    assert.deepEqual(
      h.engine.calls.map((c) => c.op),
      ["up"],
    );
    assert.ok(desired);
    assert.deepEqual(
      h.kube.lookups.sort(),
      stackObjects(desired)
        .map((o) => `${o.kind} ${NS}/${o.name}`)
        .sort(),
    );
    assert.equal(h.kube.lookups.length, 7);
    await h.reconcile();
    assert.equal(h.engine.calls.length, 1, "unchanged: skipped");
    assert.equal(h.kube.lookups.length, 7, "no lookup for a skip");
    // A change: the up needs to know again which objects are not ours (they are the record).
    h.kube.existing.set(`Service ${NS}/vmcp-gw`, foreignService.metadata);
    const vmcp = h.kube.objects.get(`${NS}/gw`)!;
    h.cache.set("VirtualMCPServer", {
      ...vmcp,
      metadata: { ...vmcp.metadata, generation: 2 },
      spec: { ...(vmcp.spec as object), config: { operational: { logLevel: "debug" } } },
    });
    await h.r.reconcile(`${NS}/gw`);
    assert.deepEqual(
      h.engine.calls.map((c) => c.op),
      ["up", "up"],
    );
    assert.equal(h.kube.lookups.length, 14);
    assert.deepEqual(desired?.adopted, [{ kind: "Service", name: "vmcp-gw" }], "not ours: kept so");
    assert.equal(desired?.preexisting, undefined, "no force after the first apply");
  });

  it("takeOverOf: objects without an owner reference to this uid are adopted; all are forced at the first apply only", () => {
    const ours = { kind: "Secret", name: "gw-hmac-secret", metadata: { ownerReferences: ownedBy(UID) } };
    assert.deepEqual(takeOverOf(UID, [ours, foreignService], true), {
      adopted: [{ kind: "Service", name: "vmcp-gw" }],
      preexisting: [
        { kind: "Secret", name: "gw-hmac-secret" },
        { kind: "Service", name: "vmcp-gw" },
      ],
    });
    assert.deepEqual(takeOverOf(UID, [ours, foreignService], false).preexisting, []);
    assert.deepEqual(takeOverOf(UID, [ours], false).adopted, []);
  });

  it("a foreign Service: no Pulumi operation, StackApplied=False ObjectConflict, one Warning, terminal", async () => {
    const h = harness();
    h.kube.existing.set(`Service ${NS}/vmcp-gw`, foreignService.metadata);
    const res = await h.reconcile();
    assert.equal(res.kind, "terminal");
    assert.equal(h.engine.calls.length, 0, "nothing applied");
    assert.deepEqual(h.kube.objects.get(`${NS}/gw`)?.metadata?.finalizers, [FINALIZER]);
    const applied = h.status().conditions?.find((c) => c.type === CONDITION.StackApplied);
    assert.equal(applied?.reason, REASON.ObjectConflict);
    assert.equal(h.status().phase, "Failed");
    const warnings = () => h.kube.events.filter((e) => e.reason === REASON.ObjectConflict);
    assert.equal(warnings().length, 1);
    // a resync while it is still there: same condition, no second Event
    assert.equal((await h.reconcile()).kind, "terminal");
    assert.equal(warnings().length, 1);
    // gone: the next reconcile applies
    h.kube.existing.clear();
    await h.reconcile();
    assert.deepEqual(
      h.engine.calls.map((c) => c.op),
      ["up"],
    );
    assert.equal(h.status().conditions?.find((c) => c.type === CONDITION.StackApplied)?.status, "True");
  });
  it("one Warning even when the next reconcile runs before the cache holds the status (the finalizer's update)", async () => {
    const h = harness();
    h.kube.existing.set(`Service ${NS}/vmcp-gw`, foreignService.metadata);
    await h.r.reconcile(`${NS}/gw`);
    // the finalizer's update event: the object with our finalizer, not yet with the status
    const withFinalizer = structuredClone(h.kube.objects.get(`${NS}/gw`)!);
    delete withFinalizer.status;
    h.cache.set("VirtualMCPServer", withFinalizer);
    await h.r.reconcile(`${NS}/gw`);
    assert.equal(h.kube.events.filter((e) => e.reason === REASON.ObjectConflict).length, 1);
  });
});
