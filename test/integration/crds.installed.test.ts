// The local plane must serve exactly the CRDs in crds/ — the ones users install. A lossy
// install (e.g. through a typed serializer) once dropped every CEL rule, enum and default,
// so every integration test ran against weaker validation than users get.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { readCrdFiles } from "../../localcluster/crds.js";
import { kubeRequest, KubeRequestError } from "../../localcluster/rawrequest.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, newNamespace } from "./fixture.js";

const CRD_DIR = join(ROOT, "crds");
const GROUP = "toolhive.stacklok.dev";

type Crd = { spec: { group: string; names: unknown; scope: string; versions: unknown[] } };

function countKey(value: unknown, key: string): number {
  if (Array.isArray(value)) return value.reduce<number>((n, v) => n + countKey(v, key), 0);
  if (typeof value !== "object" || value === null) return 0;
  return Object.entries(value).reduce((n, [k, v]) => n + (k === key ? 1 : 0) + countKey(v, key), 0);
}

describe("CRDs served by the local plane", () => {
  const files = readCrdFiles(CRD_DIR);

  it("are exactly the files in crds/: every schema, CEL rule, enum and default", async () => {
    assert.ok(files.length >= 8, `found ${files.length} CRDs in ${CRD_DIR}`);
    let rules = 0;
    for (const file of files) {
      const name = file.metadata?.name ?? "";
      const live = (await kubeRequest(
        adminKubeConfig(),
        "GET",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
      )) as Crd;
      const want = file.spec as unknown as Crd["spec"];
      assert.deepEqual(live.spec.versions, want.versions, `${name}: served versions differ from crds/`);
      assert.deepEqual(live.spec.names, { ...(want.names as object), ...(live.spec.names as object) });
      assert.equal(live.spec.scope, want.scope);
      rules += countKey(live.spec.versions, "x-kubernetes-validations");
    }
    assert.equal(
      rules,
      files.reduce((n, f) => n + countKey(f.spec.versions, "x-kubernetes-validations"), 0),
    );
    assert.ok(rules > 0, "the served CRDs carry CEL rules");
  });

  it("enforce the enums and defaults: status.phase Bogus is rejected, an omitted phase defaults", async () => {
    const namespace = await newNamespace("crds");
    const custom = adminKubeConfig().makeApiClient(CustomObjectsApi);
    const created = (await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1beta1",
      namespace,
      plural: "virtualmcpservers",
      body: {
        apiVersion: `${GROUP}/v1beta1`,
        kind: "VirtualMCPServer",
        metadata: { name: "enum-check" },
        spec: { groupRef: { name: "g" }, incomingAuth: { type: "anonymous" } },
      },
    })) as { spec: { config?: unknown } };
    assert.ok(created.spec, "created");
    const path = `/apis/${GROUP}/v1beta1/namespaces/${namespace}/virtualmcpservers/enum-check/status`;
    await assert.rejects(
      kubeRequest(
        adminKubeConfig(),
        "PATCH",
        path,
        { status: { phase: "Bogus" } },
        "application/merge-patch+json",
      ),
      (err: unknown) => err instanceof KubeRequestError && err.status === 422 && /phase/.test(err.message),
    );
    const patched = (await kubeRequest(
      adminKubeConfig(),
      "PATCH",
      path,
      { status: { message: "x" } },
      "application/merge-patch+json",
    )) as { status: { phase?: string } };
    assert.equal(patched.status.phase, "Pending", "the CRD's default for status.phase applies");
  });
});
