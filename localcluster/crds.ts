// Installs CustomResourceDefinitions and waits until the apiserver serves them: a CRD is
// usable only once Established=True (storage ready) and NamesAccepted=True (no name clash).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ApiextensionsV1Api, KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { kubeRequest } from "./rawrequest.js";
import { waitFor } from "./readiness.js";

const FIELD_MANAGER = "vmcp-localcluster";

function isCrd(doc: unknown): doc is V1CustomResourceDefinition {
  if (typeof doc !== "object" || doc === null) return false;
  const o = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
  return (
    o.kind === "CustomResourceDefinition" &&
    o.apiVersion === "apiextensions.k8s.io/v1" &&
    typeof o.metadata?.name === "string"
  );
}

/** Every CRD document in the `.yaml`/`.yml` files of `dir` (non-CRD documents are ignored). */
export function readCrdFiles(dir: string): V1CustomResourceDefinition[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort();
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? "invalid YAML"}`);
      const value: unknown = doc.toJS();
      if (isCrd(value)) crds.push(value);
    }
  }
  return crds;
}

function conditionTrue(crd: V1CustomResourceDefinition, type: string): boolean {
  return crd.status?.conditions?.some((c) => c.type === type && c.status === "True") ?? false;
}

/** True when the CRD can be used: Established=True and NamesAccepted=True. */
export function crdReady(crd: V1CustomResourceDefinition): boolean {
  return conditionTrue(crd, "Established") && conditionTrue(crd, "NamesAccepted");
}

/**
 * Server-side applies each CRD exactly as read from its file (raw JSON, not through
 * client-node's model serializer, which would drop every `x-kubernetes-validations` rule),
 * then waits until all are ready. Returns their names.
 */
export async function applyCrds(
  kc: KubeConfig,
  crds: readonly V1CustomResourceDefinition[],
  opts: { timeoutMs?: number } = {},
): Promise<string[]> {
  for (const crd of crds) {
    const body = { ...crd, metadata: { ...crd.metadata } };
    delete body.status;
    delete body.metadata.resourceVersion;
    const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${body.metadata.name ?? ""}`;
    const query = `?fieldManager=${FIELD_MANAGER}&force=true`;
    await kubeRequest(kc, "PATCH", path + query, body, "application/apply-patch+yaml");
  }
  const names = crds.map((c) => c.metadata?.name ?? "");
  await waitForCrds(kc, names, opts.timeoutMs ?? 30_000);
  return names;
}

export async function waitForCrds(
  kc: KubeConfig,
  names: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const pending = new Set(names);
  await waitFor(
    `CRDs ${[...pending].join(", ")} to be Established and NamesAccepted`,
    async () => {
      for (const name of [...pending]) {
        if (crdReady(await api.readCustomResourceDefinition({ name }))) pending.delete(name);
      }
      return pending.size === 0;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Applies every CRD found in `dir`; an empty or CRD-less dir is not an error. */
export async function installCrdsFromDir(
  kc: KubeConfig,
  dir: string,
  opts: { timeoutMs?: number } = {},
): Promise<string[]> {
  return applyCrds(kc, readCrdFiles(dir), opts);
}
