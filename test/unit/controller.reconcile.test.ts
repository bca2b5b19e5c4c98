// reconcile(key) with the fake engine: what a user sees in status, events and the stack.
import assert from "node:assert/strict";
import { stackOutputsOf } from "../../program/resources.js";
import { MemoryCache } from "../../controller/cache.js";
import type { RawObject, WatchedKind } from "../../controller/objects.js";
import { Reconciler } from "../../controller/reconcile.js";
import { FINALIZER } from "../../program/names.js";
import { DONE } from "../../controller/queue.js";
import { decideStack, type OwnedState } from "../../controller/steps.js";
import type { Status } from "../../controller/status.js";
import { FakeEngine, FakeKube } from "../../controller/testing/fakes.js";
import type { DesiredState } from "../../program/desired.js";

const G = "toolhive.stacklok.dev/v1beta1";
const NS = "team";

function vmcp(spec: Record<string, unknown> = {}, name = "gw"): RawObject {
  return {
    apiVersion: G,
    kind: "VirtualMCPServer",
    metadata: { name, namespace: NS, generation: 1, uid: `uid-${name}` },
    spec: { groupRef: { name: "eng" }, incomingAuth: { type: "anonymous" }, ...spec },
  };
}
const group = (phase = "Ready"): RawObject => ({
  apiVersion: G,
  kind: "MCPGroup",
  metadata: { name: "eng", namespace: NS },
  spec: {},
  status: { phase },
});
function server(name: string, extra: Record<string, unknown> = {}): RawObject {
  return {
    apiVersion: G,
    kind: "MCPServer",
    metadata: { name, namespace: NS },
    spec: { image: "img", transport: "streamable-http", groupRef: { name: "eng" }, ...extra },
    status: { phase: "Ready", url: `http://mcp-${name}-proxy.${NS}.svc.cluster.local:8080/mcp` },
  };
}

class Harness {
  cache = new MemoryCache();
  kube = new FakeKube();
  engine = new FakeEngine();
  now = new Date("2026-03-01T00:00:00Z");
  deploymentReady = true;
  r = new Reconciler({
    cache: this.cache,
    engine: this.engine,
    kube: this.kube,
    settings: { vmcpImage: "vmcp:test" },
    now: () => this.now,
    applyGraceMs: 0,
  });

  constructor() {
    // The fake engine "creates" the objects: mirror them into the cache as the informers would.
    this.engine.onApply = (d) => this.mirror(d);
    this.engine.onDestroy = (k) => {
      for (const kind of ["ConfigMap", "Deployment", "Service"] as const)
        for (const o of this.cache.list(kind, k.namespace))
          this.cache.delete(kind, k.namespace, o.metadata?.name ?? "");
    };
  }

  mirror(d: DesiredState): void {
    for (const o of d.objects) {
      if (!["ConfigMap", "Deployment", "Service"].includes(o.kind)) continue;
      const copy = structuredClone(o) as RawObject;
      if (o.kind === "Deployment") copy.status = { readyReplicas: this.deploymentReady ? 1 : 0 };
      this.cache.set(o.kind as WatchedKind, copy);
    }
  }

  put(kind: WatchedKind, obj: RawObject): void {
    if (kind === "VirtualMCPServer") this.cache.set(kind, this.kube.put(obj));
    else this.cache.set(kind, obj);
  }

  /** The informer's view catches up with the "API server". */
  sync(): void {
    for (const [k, o] of this.kube.objects) {
      void k;
      this.cache.set("VirtualMCPServer", o);
    }
  }

  async reconcile(name = "gw") {
    const res = await this.r.reconcile(`${NS}/${name}`);
    this.sync();
    return res;
  }

  status(name = "gw"): Status {
    return (this.kube.objects.get(`${NS}/${name}`)?.status ?? {}) as Status;
  }

  cond(type: string, name = "gw") {
    return this.status(name).conditions?.find((c) => c.type === type);
  }
}

function basic(): Harness {
  const h = new Harness();
  h.put("MCPGroup", group());
  h.put("MCPServer", server("fetch"));
  h.put("MCPServer", server("github"));
  h.put("VirtualMCPServer", vmcp());
  return h;
}

describe("controller reconcile (fake engine)", () => {
  it("first reconcile: finalizer, one up (its plan recorded), Ready status with URL and backends, events", async () => {
    const h = basic();
    await h.reconcile();
    assert.deepEqual(h.kube.objects.get(`${NS}/gw`)?.metadata?.finalizers, [FINALIZER]);
    assert.deepEqual(
      h.engine.calls.map((c) => c.op),
      ["up"],
    );
    const st = h.status();
    assert.equal(st.phase, "Ready");
    assert.equal(st.url, "http://vmcp-gw.team.svc.cluster.local:4483");
    assert.equal(st.backendCount, 2);
    assert.deepEqual(
      st.discoveredBackends?.map((b) => [b.name, b.status, b.transport]),
      [
        ["fetch", "ready", "streamable-http"],
        ["github", "ready", "streamable-http"],
      ],
    );
    assert.equal(st.observedGeneration, 1);
    for (const t of [
      "Valid",
      "GroupRefValidated",
      "BackendsDiscovered",
      "AuthConfigured",
      "Ready",
      "StackApplied",
    ])
      assert.equal(h.cond(t)?.status, "True", t);
    // What the engine was given and returned, not what the fake made up.
    const applied = h.engine.stacks.get(`${NS}.gw`);
    assert.ok(applied);
    assert.equal(st.appliedHash, applied.hash);
    assert.equal(h.engine.calls[0]?.hash, applied.hash);
    assert.deepEqual(st.stackOutputs, stackOutputsOf(applied));
    assert.equal(st.url, applied.url);
    assert.ok(st.lastPreview?.summary.create);
    assert.deepEqual(
      h.kube.events.map((e) => e.reason),
      ["Preview", "StackUpdated"],
    );
    assert.equal(h.kube.statusWrites, 1, "one status write");
  });

  it("unchanged second reconcile: no engine call, no status write", async () => {
    const h = basic();
    await h.reconcile();
    const calls = h.engine.calls.length;
    const writes = h.kube.statusWrites;
    h.now = new Date("2026-03-01T00:10:00Z");
    await h.reconcile();
    await h.reconcile();
    assert.equal(h.engine.calls.length, calls);
    assert.equal(h.kube.statusWrites, writes);
    assert.equal(h.engine.processesStarted, 1, "one Pulumi process: the up");
  });

  it("skips the engine across a restart when status holds the applied hash", async () => {
    const h = basic();
    await h.reconcile();
    const fresh = new Reconciler({
      cache: h.cache,
      engine: h.engine,
      kube: h.kube,
      settings: { vmcpImage: "vmcp:test" },
      applyGraceMs: 0,
    });
    await fresh.reconcile(`${NS}/gw`);
    assert.equal(h.engine.count("up"), 1);
  });

  it("invalid spec: Failed, Valid=False with the field path, nothing applied, no retry", async () => {
    const h = new Harness();
    h.put("MCPGroup", group());
    h.put("VirtualMCPServer", vmcp({ config: { aggregation: { conflictResolution: "priority" } } }));
    const res = await h.reconcile();
    assert.deepEqual(res, { kind: "terminal", reason: "ValidationFailed" });
    assert.equal(h.status().phase, "Failed");
    assert.equal(h.cond("Valid")?.status, "False");
    assert.equal(h.cond("Valid")?.reason, "ValidationFailed");
    assert.match(
      h.cond("Valid")?.message ?? "",
      /spec\.config\.aggregation\.conflictResolutionConfig\.priorityOrder/,
    );
    assert.equal(h.engine.calls.length, 0);
    assert.deepEqual(
      h.kube.events.map((e) => [e.type, e.reason]),
      [["Warning", "ValidationFailed"]],
    );
    await h.reconcile();
    assert.equal(h.kube.events.length, 1, "no repeated event while still invalid");
    assert.equal(h.kube.statusWrites, 1);
  });

  it("group missing or not Ready: Pending with a retry, no engine call", async () => {
    const h = new Harness();
    h.put("VirtualMCPServer", vmcp());
    assert.deepEqual(await h.reconcile(), { kind: "retry", reason: "GroupRefNotFound" });
    assert.equal(h.status().phase, "Pending");
    assert.equal(h.cond("GroupRefValidated")?.reason, "GroupRefNotFound");
    h.put("MCPGroup", group("Pending"));
    assert.deepEqual(await h.reconcile(), { kind: "retry", reason: "GroupRefNotReady" });
    assert.equal(h.cond("GroupRefValidated")?.reason, "GroupRefNotReady");
    assert.equal(h.engine.calls.length, 0);
    h.put("MCPGroup", group("Ready"));
    h.put("MCPServer", server("fetch"));
    await h.reconcile();
    assert.equal(h.status().phase, "Ready");
  });

  it("a member joining the group changes the hash: an up; leaving does too", async () => {
    const h = basic();
    await h.reconcile();
    h.put("MCPServer", server("osv"));
    await h.reconcile();
    assert.equal(h.engine.count("up"), 2);
    assert.equal(h.status().backendCount, 3);
    h.cache.delete("MCPServer", NS, "osv");
    await h.reconcile();
    assert.equal(h.engine.count("up"), 3);
    assert.equal(h.status().backendCount, 2);
  });

  it("missing tool config ref: condition, last good deployment kept (no engine call), Degraded", async () => {
    const h = basic();
    await h.reconcile();
    const withRef = vmcp({
      config: { aggregation: { tools: [{ workload: "fetch", toolConfigRef: { name: "tc" } }] } },
    });
    withRef.metadata = { ...withRef.metadata, generation: 2, finalizers: [FINALIZER] };
    h.put("VirtualMCPServer", { ...withRef, status: h.status() });
    await h.reconcile();
    assert.equal(h.engine.count("up"), 1, "no new up");
    assert.equal(h.cond("ToolConfigRefsValidated")?.status, "False");
    assert.equal(h.status().phase, "Degraded");
    assert.match(h.cond("Ready")?.message ?? "", /last applied configuration keeps running/);
    h.put("MCPToolConfig", {
      apiVersion: G,
      kind: "MCPToolConfig",
      metadata: { name: "tc", namespace: NS },
      spec: { toolsFilter: ["fetch"] },
    });
    await h.reconcile();
    assert.equal(h.engine.count("up"), 2);
    assert.equal(h.cond("ToolConfigRefsValidated")?.status, "True");
    assert.equal(h.status().phase, "Ready");
  });

  it("member auth problems: AuthConfigured=False, per-backend condition, backend left out (Degraded)", async () => {
    const h = basic();
    h.put("MCPServer", server("github", { externalAuthConfigRef: { name: "gh-auth" } }));
    await h.reconcile();
    assert.equal(h.cond("AuthConfigured")?.status, "False");
    assert.equal(h.cond("BackendAuthConfig-github")?.reason, "AuthConfigNotFound");
    assert.equal(h.status().phase, "Degraded");
    assert.equal(h.status().backendCount, 1);
    h.put("MCPExternalAuthConfig", {
      apiVersion: G,
      kind: "MCPExternalAuthConfig",
      metadata: { name: "gh-auth", namespace: NS },
      spec: {
        type: "headerInjection",
        headerInjection: { headerName: "X-Key", valueSecretRef: { name: "s", key: "k" } },
      },
    });
    await h.reconcile();
    assert.equal(h.cond("AuthConfigured")?.status, "True");
    assert.equal(h.cond("BackendAuthConfig-github"), undefined, "stale per-backend condition pruned");
    assert.equal(
      h.status().discoveredBackends?.find((b) => b.name === "github")?.authType,
      "header_injection",
    );
  });

  it("a group member that fails schema validation is named in ReferencesValid, status and one Warning Event", async () => {
    const h = basic();
    h.put("MCPServer", server("broken", { transport: "carrier-pigeon" }));
    await h.reconcile();
    const condition = h.cond("ReferencesValid");
    assert.equal(condition?.status, "False");
    assert.equal(condition?.reason, "GroupMemberInvalid");
    assert.match(
      condition?.message ?? "",
      /^MCPServer broken \(member of MCPGroup eng, left out\): spec\.transport: /,
    );
    const warnings = h.kube.events.filter((e) => e.type === "Warning");
    assert.deepEqual(
      warnings.map((e) => e.reason),
      ["GroupMemberInvalid"],
    );
    assert.match(warnings[0]?.message ?? "", /MCPServer broken .*spec\.transport/);
    const entry = h.status().discoveredBackends?.find((b) => b.name === "broken");
    assert.equal(entry?.status, "unavailable");
    assert.match(entry?.message ?? "", /MCPServer broken is invalid: spec\.transport/);
    assert.equal(h.status().phase, "Degraded", "2 of 3 backends usable");
    assert.equal(h.status().backendCount, 2);

    await h.reconcile();
    assert.equal(h.kube.events.filter((e) => e.type === "Warning").length, 1, "no repeated Warning");
    h.put("MCPServer", server("broken"));
    await h.reconcile();
    assert.equal(h.cond("ReferencesValid")?.status, "True");
    assert.equal(h.status().phase, "Ready");
  });

  it("an invalid member of another group is not reported", async () => {
    const h = basic();
    h.put("MCPServer", server("elsewhere", { transport: "carrier-pigeon", groupRef: { name: "other" } }));
    await h.reconcile();
    assert.equal(h.cond("ReferencesValid"), undefined);
    assert.equal(h.status().phase, "Ready");
  });

  it("zero routable backends is never Ready: 0 of 3 usable → Failed, an empty group → NoBackends", async () => {
    const h = new Harness();
    h.put("MCPGroup", group());
    for (const name of ["a", "b", "c"])
      h.put("MCPServer", server(name, { externalAuthConfigRef: { name: "missing" } }));
    h.put("VirtualMCPServer", vmcp());
    await h.reconcile();
    assert.equal(h.cond("Ready")?.status, "False");
    assert.equal(h.cond("Ready")?.reason, "NoRoutableBackends");
    assert.match(h.cond("Ready")?.message ?? "", /0\/3 routable/);
    assert.equal(h.status().phase, "Failed");
    assert.equal(h.status().backendCount, 0);

    const empty = new Harness();
    empty.put("MCPGroup", group());
    empty.put("VirtualMCPServer", vmcp());
    await empty.reconcile();
    assert.equal(empty.cond("Ready")?.status, "False");
    assert.equal(empty.cond("Ready")?.reason, "NoBackends");
    assert.equal(empty.cond("BackendsDiscovered")?.reason, "NoBackends");
    assert.notEqual(empty.status().phase, "Ready");
  });

  it("phase and backend transitions are Events, at most one per kind and backend per minute", async () => {
    const h = basic();
    const auth: RawObject = {
      apiVersion: G,
      kind: "MCPExternalAuthConfig",
      metadata: { name: "gh-auth", namespace: NS },
      spec: {
        type: "headerInjection",
        headerInjection: { headerName: "X-Key", valueSecretRef: { name: "s", key: "k" } },
      },
    };
    h.put("MCPServer", server("github", { externalAuthConfigRef: { name: "gh-auth" } }));
    h.put("MCPExternalAuthConfig", auth);
    await h.reconcile();
    assert.equal(h.status().phase, "Ready");
    const transitions = () =>
      h.kube.events
        .filter((e) => ["PhaseChanged", "BackendUnavailable", "BackendRecovered"].includes(e.reason))
        .map((e) => [e.type, e.reason, e.message]);
    assert.deepEqual(transitions(), []);

    // The backend flaps three times within a minute: one Event per kind, not six.
    for (let i = 0; i < 3; i++) {
      h.cache.delete("MCPExternalAuthConfig", NS, "gh-auth");
      await h.reconcile();
      assert.equal(h.status().phase, "Degraded");
      h.put("MCPExternalAuthConfig", auth);
      await h.reconcile();
      assert.equal(h.status().phase, "Ready");
      h.now = new Date(h.now.getTime() + 5_000);
    }
    const first = transitions();
    assert.equal(first.length, 4, JSON.stringify(first, null, 1));
    assert.deepEqual(
      first.map(([type, reason]) => [type, reason]),
      [
        ["Warning", "BackendUnavailable"],
        ["Warning", "PhaseChanged"],
        ["Normal", "BackendRecovered"],
        ["Normal", "PhaseChanged"],
      ],
    );
    assert.match(
      first[0]?.[2] ?? "",
      /^Backend github is unavailable: left out: outgoing auth could not be built/,
    );
    assert.match(first[1]?.[2] ?? "", /^Phase Ready → Degraded: /);
    assert.equal(first[2]?.[2], "Backend github is ready again");
    assert.match(first[3]?.[2] ?? "", /^Phase Degraded → Ready: /);

    // A minute later the next transition gets through and says how many were held back.
    h.now = new Date(h.now.getTime() + 60_000);
    h.cache.delete("MCPExternalAuthConfig", NS, "gh-auth");
    await h.reconcile();
    const later = transitions().slice(first.length);
    assert.deepEqual(
      later.map(([, reason]) => reason),
      ["BackendUnavailable", "PhaseChanged"],
    );
    assert.match(later[0]?.[2] ?? "", /\(2 more like this held back since the last one\)$/);
  });

  it("hand-deleted Deployment: repair (refresh + up), no preview", async () => {
    const h = basic();
    await h.reconcile();
    h.cache.delete("Deployment", NS, "gw");
    await h.reconcile();
    assert.deepEqual(
      h.engine.calls.map((c) => c.op),
      ["up", "repair"],
    );
    assert.ok(h.kube.events.some((e) => e.reason === "DriftRepaired"));
    assert.ok(h.cache.get("Deployment", NS, "gw"));
  });

  it("hand-edited ConfigMap checksum: repair", async () => {
    const h = basic();
    await h.reconcile();
    const cm = structuredClone(h.cache.get("ConfigMap", NS, "gw-vmcp-config")) as RawObject;
    cm.metadata!.annotations = { "toolhive.stacklok.dev/content-checksum": "tampered" };
    h.cache.set("ConfigMap", cm);
    await h.reconcile();
    assert.equal(h.engine.count("repair"), 1);
  });

  it("Deployment not ready yet: Pending/DeploymentNotReady; ready later → Ready without engine call", async () => {
    const h = basic();
    h.deploymentReady = false;
    await h.reconcile();
    assert.equal(h.status().phase, "Pending");
    assert.equal(h.cond("Ready")?.reason, "DeploymentNotReady");
    const dep = structuredClone(h.cache.get("Deployment", NS, "gw")) as RawObject;
    dep.status = { readyReplicas: 1 };
    h.cache.set("Deployment", dep);
    await h.reconcile();
    assert.equal(h.status().phase, "Ready");
    assert.equal(h.engine.count("up"), 1);
  });

  it("engine failure: StackApplied=False, Warning event, error thrown for backoff; success later recovers", async () => {
    const h = basic();
    h.engine.failNext = new Error("pulumi exploded");
    await assert.rejects(h.reconcile(), /pulumi exploded/);
    h.sync();
    assert.equal(h.status().phase, "Failed");
    assert.equal(h.cond("StackApplied")?.reason, "StackUpdateFailed");
    assert.ok(h.kube.events.some((e) => e.type === "Warning" && e.reason === "StackUpdateFailed"));
    await h.reconcile();
    assert.equal(h.status().phase, "Ready");
  });

  it("deletion: destroy the stack, then remove the finalizer", async () => {
    const h = basic();
    await h.reconcile();
    const o = h.kube.objects.get(`${NS}/gw`)!;
    h.put("VirtualMCPServer", {
      ...o,
      metadata: { ...o.metadata, deletionTimestamp: "2026-03-01T00:00:00Z" },
    });
    await h.reconcile();
    assert.equal(h.engine.calls.at(-1)?.op, "destroy");
    assert.equal(h.kube.objects.has(`${NS}/gw`), false, "finalizer removed, object gone");
    assert.ok(h.kube.events.some((e) => e.reason === "StackDestroyed"));
  });

  it("deletion seen again from a stale cache: no second destroy, no error", async () => {
    const h = basic();
    await h.reconcile();
    const o = h.kube.objects.get(`${NS}/gw`)!;
    const deleting = { ...o, metadata: { ...o.metadata, deletionTimestamp: "2026-03-01T00:00:00Z" } };
    h.put("VirtualMCPServer", deleting);
    await h.reconcile();
    const destroys = h.engine.calls.filter((c) => c.op === "destroy").length;
    // the destroy's own events re-enqueue the key before the cache sees the object go
    h.cache.set("VirtualMCPServer", h.kube.put(deleting));
    h.kube.objects.delete(`${NS}/gw`);
    assert.deepEqual(await h.reconcile(), DONE);
    assert.equal(h.engine.calls.filter((c) => c.op === "destroy").length, destroys);
  });

  it("a VirtualMCPServer deleted while its reconcile runs ends the reconcile quietly", async () => {
    const h = basic();
    h.kube.objects.delete(`${NS}/gw`); // gone from the server, still in the cache
    assert.deepEqual(await h.reconcile(), DONE);
    assert.equal(h.engine.calls.length, 0);
  });

  it("status write conflicts are retried on a fresh read", async () => {
    const h = basic();
    h.kube.conflicts = 2;
    await h.reconcile();
    assert.equal(h.status().phase, "Ready");
    assert.equal(h.kube.statusWrites, 1);
  });

  it("fields the CRD prunes are written once, then no longer compared (no write loop)", async () => {
    const h = basic();
    h.kube.prune = ["appliedHash", "stackOutputs", "lastPreview"];
    await h.reconcile();
    assert.equal(h.kube.statusWrites, 1);
    await h.reconcile();
    await h.reconcile();
    assert.equal(h.kube.statusWrites, 1);
    assert.equal(h.engine.count("up"), 1, "the in-memory applied hash covers the pruned status field");
  });

  it("decideStack: pure decisions", () => {
    const ok: OwnedState = { missing: [], edited: [], total: 3 };
    const gone: OwnedState = { missing: ["Deployment gw"], edited: [], total: 3 };
    const none: OwnedState = { missing: ["a", "b", "c"], edited: [], total: 3 };
    assert.deepEqual(decideStack("h", { hash: "h" }, ok, undefined, 1000), { action: "skip" });
    assert.equal(decideStack("h", { hash: "h" }, gone, 10, 1000).action, "wait");
    assert.equal(decideStack("h", { hash: "h" }, gone, 5000, 1000).action, "repair");
    assert.equal(decideStack("h2", { hash: "h" }, ok, undefined, 1000).action, "up");
    assert.equal(decideStack("h2", { hash: "h" }, gone, undefined, 1000).action, "repair");
    assert.equal(decideStack("h", undefined, none, undefined, 1000).action, "up");
    assert.equal(decideStack("h", undefined, gone, undefined, 1000).action, "repair");
  });
});
