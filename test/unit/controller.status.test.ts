// StatusCollector: intent recorded during a reconcile, one computed status, no change → no write.
import assert from "node:assert/strict";
import {
  PrunedFields,
  StatusCollector,
  statusMergePatch,
  sameStatus,
  type Status,
} from "../../controller/status.js";

const T1 = new Date("2026-01-01T00:00:00.123Z");
const T2 = new Date("2026-01-01T01:00:00Z");

describe("controller status collector", () => {
  it("sets phase, conditions, backends and backendCount (ready + unauthenticated)", () => {
    const s = new StatusCollector(3)
      .setPhase("Ready", "ok")
      .setCondition("Valid", "True", "ValidationSucceeded", "fine")
      .setDiscoveredBackends([
        { name: "b", status: "ready" },
        { name: "a", status: "unauthenticated" },
        { name: "c", status: "unavailable" },
      ])
      .setUrl("http://x");
    const { status, changed } = s.apply(undefined, T1);
    assert.equal(changed, true);
    assert.equal(status.phase, "Ready");
    assert.equal(status.observedGeneration, 3);
    assert.equal(status.backendCount, 2);
    assert.deepEqual(
      status.discoveredBackends?.map((b) => b.name),
      ["a", "b", "c"],
    );
    assert.deepEqual(status.conditions, [
      {
        type: "Valid",
        status: "True",
        reason: "ValidationSucceeded",
        message: "fine",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: 3,
      },
    ]);
  });

  it("keeps lastTransitionTime while a condition's status is unchanged, and reports no change", () => {
    const first = new StatusCollector(1)
      .setPhase("Pending", "p")
      .setCondition("Ready", "False", "A", "m")
      .apply(undefined, T1).status;
    const again = new StatusCollector(1)
      .setPhase("Pending", "p")
      .setCondition("Ready", "False", "A", "m")
      .apply(first, T2);
    assert.equal(again.changed, false);
    const reasonOnly = new StatusCollector(1)
      .setPhase("Pending", "p")
      .setCondition("Ready", "False", "B", "m2")
      .apply(first, T2);
    assert.equal(reasonOnly.changed, true);
    assert.equal(reasonOnly.status.conditions?.[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
    const flipped = new StatusCollector(1)
      .setPhase("Ready", "p")
      .setCondition("Ready", "True", "B", "m2")
      .apply(first, T2);
    assert.equal(flipped.status.conditions?.[0]?.lastTransitionTime, "2026-01-01T01:00:00Z");
  });

  it("keeps conditions of its own it did not touch and fields it does not manage; drops another writer's conditions", () => {
    const condition = (type: string) => ({
      type,
      status: "True" as const,
      reason: "R",
      message: "",
      lastTransitionTime: "2025-01-01T00:00:00Z",
    });
    const current: Status = {
      phase: "Ready",
      authzConfigHash: "h",
      // SessionStorageWarning: ToolHive's operator's, left from before a migration
      conditions: [condition("SessionStorageWarning"), condition("Valid")],
    };
    const { status, changed } = new StatusCollector(2)
      .setCondition("Ready", "True", "OK", "")
      .apply(current, T1);
    assert.equal(status.authzConfigHash, "h");
    assert.deepEqual(
      status.conditions?.map((c) => c.type),
      ["Ready", "Valid"],
    );
    assert.equal(changed, true);
  });

  it("prunes stale per-backend conditions by prefix but keeps the ones set now", () => {
    const current: Status = {
      conditions: ["BackendAuthConfig-a", "BackendAuthConfig-b", "Ready"].map((type) => ({
        type,
        status: "False" as const,
        reason: "R",
        message: "",
        lastTransitionTime: "2025-01-01T00:00:00Z",
      })),
    };
    const { status } = new StatusCollector(1)
      .setCondition("BackendAuthConfig-b", "False", "R", "")
      .removeConditionsWithPrefix("BackendAuthConfig-")
      .apply(current, T1);
    assert.deepEqual(
      status.conditions?.map((c) => c.type),
      ["BackendAuthConfig-b", "Ready"],
    );
  });

  it("records the preview summary without unchanged resources", () => {
    const { status } = new StatusCollector(1)
      .setLastPreview(
        {
          summary: { update: 1, same: 2 },
          changes: [
            { urn: "u1", type: "kubernetes:core/v1:ConfigMap", name: "cm", op: "update", fields: ["data"] },
            { urn: "u2", type: "kubernetes:apps/v1:Deployment", name: "d", op: "same", fields: [] },
          ],
        },
        T1,
      )
      .apply(undefined, T1);
    assert.deepEqual(status.lastPreview, {
      summary: { update: 1, same: 2 },
      changes: [{ kind: "ConfigMap", name: "cm", op: "update", fields: ["data"] }],
      time: "2026-01-01T00:00:00Z",
    });
  });

  it("compares semantically and patches only what changed (removed keys as null)", () => {
    assert.equal(sameStatus({ a: 1, b: { x: 1, y: 2 } }, { b: { y: 2, x: 1 }, a: 1 }), true);
    assert.deepEqual(
      statusMergePatch({ phase: "Pending", message: "m", url: "u" }, { phase: "Ready", url: "u" }),
      {
        phase: "Ready",
        message: null,
      },
    );
  });

  it("learns which fields the API server prunes and stops comparing them", () => {
    const pruned = new PrunedFields();
    const sent: Status = {
      phase: "Ready",
      appliedHash: "h",
      discoveredBackends: [{ name: "a", status: "ready", transport: "sse" }],
    };
    const stored: Status = { phase: "Ready", discoveredBackends: [{ name: "a", status: "ready" }] };
    assert.deepEqual(pruned.learn(sent, stored).sort(), ["appliedHash", "discoveredBackends[].transport"]);
    assert.deepEqual(pruned.strip(sent), stored);
    assert.deepEqual(pruned.learn(sent, stored), [], "learned once");
  });
});
