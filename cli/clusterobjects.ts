// Reads the ToolHive objects of some namespaces from a cluster, parsed like manifests.
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { GROUP, KINDS, STORAGE_VERSION, type KindName } from "../api/index.js";
import { formatFieldErrors, parseObject } from "../api/validate.js";
import type { AnyObject } from "../program/inputs.js";

/**
 * A list, retried while the API server answers 429 (a CRD's storage still initialising
 * right after it was established, or priority-and-fairness throttling) for up to ~10 s.
 */
async function listWithRetry<T>(list: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await list();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 429 || attempt >= 10) throw err;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

export async function readClusterObjects(
  kc: KubeConfig,
  namespaces: readonly string[],
): Promise<{ objects: AnyObject[]; warnings: string[] }> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const objects: AnyObject[] = [];
  const warnings: string[] = [];
  for (const namespace of [...new Set(namespaces)].sort()) {
    for (const k of KINDS) {
      const list = (await listWithRetry(() =>
        api.listNamespacedCustomObject({
          group: GROUP,
          version: STORAGE_VERSION,
          namespace,
          plural: k.plural,
        }),
      )) as { items?: unknown[] };
      for (const item of list.items ?? []) {
        const parsed = parseObject(k.kind as KindName, item);
        if (parsed.ok) objects.push(parsed.value as AnyObject);
        else warnings.push(`cluster ${k.kind} in ${namespace}: ${formatFieldErrors(parsed.errors)}`);
      }
    }
  }
  return { objects, warnings };
}

/** Objects from files replace the cluster's of the same kind/namespace/name, keeping uid and status. */
export function overlay(cluster: readonly AnyObject[], files: readonly AnyObject[]): AnyObject[] {
  const key = (o: AnyObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
  const live = new Map(cluster.map((o) => [key(o), o]));
  const merged = new Map(live);
  for (const f of files) {
    const l = live.get(key(f));
    merged.set(key(f), {
      ...f,
      metadata: { ...f.metadata, uid: l?.metadata.uid ?? f.metadata.uid, generation: l?.metadata.generation },
      status: f.status ?? l?.status,
    } as AnyObject);
  }
  return [...merged.values()];
}
