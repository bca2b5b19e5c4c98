// What the informers drop from each object before it enters the cache (controller/informers.ts).
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { LAST_APPLIED, trimForCache } from "../../controller/informers.js";

describe("objects trimmed for the cache", () => {
  it("drops managedFields and kubectl's last-applied copy, keeps every other annotation and field", () => {
    const obj: KubernetesObject & { data: Record<string, string> } = {
      metadata: {
        name: "policies",
        annotations: { [LAST_APPLIED]: '{"apiVersion":"v1","kind":"ConfigMap"}', "vmcp/adopt": "true" },
        managedFields: [{ manager: "kubectl", operation: "Apply" }],
      },
      data: { "policy.cedar": "permit(principal, action, resource);" },
    };
    trimForCache(obj);
    assert.deepEqual(obj, {
      metadata: { name: "policies", annotations: { "vmcp/adopt": "true" } },
      data: { "policy.cedar": "permit(principal, action, resource);" },
    });
  });

  it("leaves an object without metadata or annotations as it is", () => {
    const bare: KubernetesObject = { kind: "ConfigMap" };
    trimForCache(bare);
    assert.deepEqual(bare, { kind: "ConfigMap" });
    const plain: KubernetesObject = { metadata: { name: "x" } };
    trimForCache(plain);
    assert.deepEqual(plain, { metadata: { name: "x" } });
  });
});
