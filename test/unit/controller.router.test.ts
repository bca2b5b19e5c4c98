// Informer events → keys: status-only updates of a VirtualMCPServer do not trigger reconciles.
import assert from "node:assert/strict";
import { EventRouter } from "../../controller/router.js";
import type { RawObject } from "../../controller/objects.js";

const vmcp = (
  generation: number,
  extra: Partial<NonNullable<RawObject["metadata"]>> = {},
  status?: unknown,
): RawObject => ({
  kind: "VirtualMCPServer",
  metadata: { name: "gw", namespace: "ns", generation, ...extra },
  spec: { groupRef: { name: "g" } },
  status,
});

describe("controller event router", () => {
  it("drops status-only updates of a VirtualMCPServer, keeps spec, deletion and finalizer changes", () => {
    const r = new EventRouter();
    assert.deepEqual(r.route("VirtualMCPServer", "add", vmcp(1)), ["ns/gw"]);
    assert.deepEqual(r.route("VirtualMCPServer", "update", vmcp(1, {}, { phase: "Ready" })), []);
    assert.equal(r.ignored, 1);
    assert.deepEqual(r.route("VirtualMCPServer", "update", vmcp(2)), ["ns/gw"]);
    assert.deepEqual(r.route("VirtualMCPServer", "update", vmcp(2, { finalizers: ["x"] })), ["ns/gw"]);
    assert.deepEqual(
      r.route("VirtualMCPServer", "update", vmcp(2, { finalizers: ["x"], deletionTimestamp: "t" })),
      ["ns/gw"],
    );
    assert.deepEqual(r.route("VirtualMCPServer", "delete", vmcp(2)), ["ns/gw"]);
    assert.deepEqual(r.keys(), []);
  });

  it("routes other kinds through the index (status changes of members do count)", () => {
    const r = new EventRouter();
    r.route("VirtualMCPServer", "add", vmcp(1));
    const m: RawObject = {
      kind: "MCPServer",
      metadata: { name: "s", namespace: "ns" },
      spec: { groupRef: { name: "g" } },
    };
    assert.deepEqual(r.route("MCPServer", "add", m), ["ns/gw"]);
    assert.deepEqual(r.route("MCPServer", "update", { ...m, status: { url: "http://x" } }), ["ns/gw"]);
    assert.deepEqual(
      r.route("MCPGroup", "update", {
        kind: "MCPGroup",
        metadata: { name: "g", namespace: "ns" },
        status: { phase: "Ready" },
      }),
      ["ns/gw"],
    );
    assert.deepEqual(r.keys(), ["ns/gw"]);
  });
});
