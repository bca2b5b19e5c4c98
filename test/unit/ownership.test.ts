// The root program's check before it applies anything (program/ownership.ts): when a
// controller manages the VirtualMCPServer, `pulumi up` refuses and says how to proceed.
import assert from "node:assert/strict";
import { FINALIZER, FIELD_MANAGER } from "../../program/names.js";
import { derivedObjects, ownershipRefusal, type OwnershipFacts } from "../../program/ownership.js";

const G = "toolhive.stacklok.dev/v1beta1";
const owned = (uid: string, name = "gw") => ({
  ownerReferences: [{ apiVersion: G, kind: "VirtualMCPServer", name, uid }],
  managedFields: [{ manager: "pulumi-kubernetes-1a2b3c4d", operation: "Apply" }],
});
const controlled = {
  uid: "uid-gw",
  finalizers: [FINALIZER],
  managedFields: [
    { manager: "kubectl", operation: "Apply" },
    { manager: FIELD_MANAGER, operation: "Update", subresource: "status" },
  ],
};
const facts = (f: Partial<OwnershipFacts>): OwnershipFacts => ({
  mode: "manifests",
  namespace: "team",
  name: "gw",
  live: undefined,
  existing: [],
  ...f,
});
const controllerObjects = derivedObjects("gw").map((d) => ({ ...d, metadata: owned("uid-gw") }));

describe("ownership check of the root program", () => {
  it("nothing in the cluster: go ahead, in either mode", () => {
    assert.equal(ownershipRefusal(facts({})), undefined);
    assert.equal(ownershipRefusal(facts({ mode: "cluster", live: { uid: "u" } })), undefined);
  });

  it("manifests of a VirtualMCPServer the controller manages: refused, naming it, its managers and the ways on", () => {
    const r = ownershipRefusal(facts({ live: controlled, existing: controllerObjects }));
    assert.ok(r);
    assert.match(
      r.message,
      /VirtualMCPServer team\/gw exists in the cluster \(managed by the vmcp-operator controller \(finalizer vmcp\.stacklok\.dev\/stack\); status written by vmcp-operator\)/,
    );
    assert.match(
      r.message,
      /Deployment gw is owned by VirtualMCPServer gw \(field managers pulumi-kubernetes-1a2b3c4d\)/,
    );
    assert.match(r.message, /Nothing was changed/);
    assert.match(r.message, /pulumi config set vmcp:takeOver true/);
    assert.match(r.message, /vmcpctl preview/);
    assert.equal(r.claims.length, 1 + 6);
  });

  it("manifests of a VirtualMCPServer nobody manages: refused, pointing at from-cluster mode", () => {
    const r = ownershipRefusal(facts({ live: { uid: "u" } }));
    assert.match(r?.message ?? "", /no controller claims it: no finalizer, no status writer/);
    assert.match(r?.message ?? "", /pulumi config rm vmcp:manifests.*vmcp:namespace=team and vmcp:name=gw/);
  });

  it("manifests, the VirtualMCPServer deleted but its objects not yet collected: refused", () => {
    const r = ownershipRefusal(facts({ existing: controllerObjects.slice(0, 1) }));
    assert.match(r?.message ?? "", /ServiceAccount gw-vmcp is owned by VirtualMCPServer gw/);
  });

  it("manifests, objects of a previous `pulumi up` (no owner): go ahead", () => {
    const existing = derivedObjects("gw").map((d) => ({
      ...d,
      metadata: { managedFields: [{ manager: "pulumi-kubernetes-9f8e7d6c" }] },
    }));
    assert.equal(ownershipRefusal(facts({ existing })), undefined);
  });

  it("cluster mode, a controller's finalizer or status writer: refused", () => {
    const r = ownershipRefusal(facts({ mode: "cluster", live: controlled, existing: controllerObjects }));
    assert.match(r?.message ?? "", /VirtualMCPServer team\/gw is managed by the vmcp-operator controller/);
    // The live VirtualMCPServer's own objects are not claims of their own in cluster mode.
    assert.equal(r?.claims.length, 1);
    const thv = ownershipRefusal(
      facts({ mode: "cluster", live: { uid: "u", finalizers: ["toolhive.stacklok.dev/finalizer"] } }),
    );
    assert.match(thv?.message ?? "", /managed by finalizer toolhive\.stacklok\.dev\/finalizer/);
  });

  it("cluster mode, nobody manages it and its objects are its own (a previous up): go ahead", () => {
    assert.equal(
      ownershipRefusal(facts({ mode: "cluster", live: { uid: "uid-gw" }, existing: controllerObjects })),
      undefined,
    );
  });

  it("cluster mode, objects owned by an earlier VirtualMCPServer of that name: refused", () => {
    const r = ownershipRefusal(
      facts({ mode: "cluster", live: { uid: "uid-new" }, existing: controllerObjects.slice(4, 5) }),
    );
    assert.match(r?.message ?? "", /Deployment gw is owned by VirtualMCPServer gw/);
  });
});
