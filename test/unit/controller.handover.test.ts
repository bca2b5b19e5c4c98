import assert from "node:assert/strict";
import { handOver, HANDOVER_FIELD_MANAGER } from "../../controller/handover.js";
import type { ManagedFieldsEntry } from "../../controller/objects.js";

const UID = "0b5c-uid";
const ownerRef = { "f:metadata": { "f:ownerReferences": { [`k:{"uid":"${UID}"}`]: {} } } };
const entry = (
  manager: string,
  operation: string,
  fieldsV1: object,
  extra: Partial<ManagedFieldsEntry> = {},
) => ({
  manager,
  operation,
  apiVersion: "apps/v1",
  fieldsType: "FieldsV1",
  fieldsV1,
  ...extra,
});

describe("controller: handing a previous controller's fields to the stack (handover.ts)", () => {
  it("the Update manager that set the owner reference becomes one Apply entry of ours; others stay", () => {
    const env = {
      "f:spec": { "f:template": { "f:spec": { "f:containers": { 'k:{"name":"vmcp"}': { "f:env": {} } } } } },
    };
    const injector = entry("mesh-injector", "Apply", { "f:metadata": { "f:labels": { "f:mesh": {} } } });
    const status = entry("kube-controller-manager", "Update", { "f:status": {} }, { subresource: "status" });
    const out = handOver(
      { managedFields: [entry("thv-operator", "Update", { ...ownerRef, ...env }), injector, status] },
      UID,
    );
    assert.ok(out);
    assert.deepEqual(
      out.map((e) => `${e.manager}/${e.operation}`),
      ["mesh-injector/Apply", "kube-controller-manager/Update", `${HANDOVER_FIELD_MANAGER}/Apply`],
    );
    assert.deepEqual(out[2]!.fieldsV1, { ...ownerRef, ...env });
  });

  it("nothing to hand over: no owner reference to this uid, only our own managers, or a subresource", () => {
    assert.equal(
      handOver({ managedFields: [entry("kubectl-edit", "Update", { "f:spec": {} })] }, UID),
      undefined,
    );
    assert.equal(
      handOver({ managedFields: [entry("pulumi-kubernetes-1a2b", "Update", ownerRef)] }, UID),
      undefined,
    );
    assert.equal(
      handOver(
        { managedFields: [entry("thv-operator", "Update", ownerRef, { subresource: "status" })] },
        UID,
      ),
      undefined,
    );
    assert.equal(
      handOver({ managedFields: [entry("thv-operator", "Update", ownerRef)] }, "another-uid"),
      undefined,
    );
    assert.equal(handOver({}, UID), undefined);
  });

  it("merges into an Apply entry of ours that is already there", () => {
    const ours = entry(HANDOVER_FIELD_MANAGER, "Apply", { "f:data": { "f:a": {} } });
    const out = handOver(
      { managedFields: [ours, entry("thv-operator", "Update", { ...ownerRef, "f:data": { "f:b": {} } })] },
      UID,
    );
    assert.deepEqual(out, [{ ...ours, fieldsV1: { "f:data": { "f:a": {}, "f:b": {} }, ...ownerRef } }]);
  });
});
