// Reads from a cluster: the ToolHive objects of some namespaces, parsed like manifests
// (`vmcpctl preview`, the root program's from-cluster mode), a referenced ConfigMap, and
// who manages a VirtualMCPServer (the root program's check before it applies anything).
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig } from "@kubernetes/client-node";
import { GROUP, KINDS, PLURALS, STORAGE_VERSION, type KindName } from "../api/index.js";
import { formatFieldErrors, parseObject } from "../api/validate.js";
import type { AnyObject, ConfigMapData } from "./inputs.js";
import { derivedObjects, type DerivedKind, type LiveMeta, type OwnershipFacts } from "./ownership.js";

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

const isNotFound = (err: unknown): boolean => (err as { code?: unknown }).code === 404;

const API_VERSION_OF: Record<DerivedKind, string> = {
  ServiceAccount: "v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  ConfigMap: "v1",
  Deployment: "apps/v1",
  Service: "v1",
};

/**
 * What ownershipRefusal decides on: the VirtualMCPServer `namespace/name` of the cluster
 * (raw metadata: finalizers and managed fields are not part of the parsed object) and the
 * objects of its derived names. Throws when the cluster cannot answer (unreachable,
 * forbidden); a missing object or CRD is an answer.
 */
export async function readOwnershipFacts(
  kc: KubeConfig,
  mode: OwnershipFacts["mode"],
  namespace: string,
  name: string,
): Promise<OwnershipFacts> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const live = (await custom
    .getNamespacedCustomObject({
      group: GROUP,
      version: STORAGE_VERSION,
      namespace,
      plural: PLURALS.VirtualMCPServer,
      name,
    })
    .catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    })) as { metadata?: LiveMeta } | undefined;
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const existing: OwnershipFacts["existing"][number][] = [];
  for (const d of derivedObjects(name)) {
    const o = await objects
      .read({ apiVersion: API_VERSION_OF[d.kind], kind: d.kind, metadata: { name: d.name, namespace } })
      .catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
    if (o) existing.push({ ...d, metadata: o.metadata as LiveMeta });
  }
  return { mode, namespace, name, live: live ? (live.metadata ?? {}) : undefined, existing };
}

/** A ConfigMap's data (a referenced authz policy), or undefined when it does not exist. */
export async function readConfigMap(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<ConfigMapData | undefined> {
  const cm = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ namespace, name })
    .catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  return cm ? { namespace, name, data: cm.data ?? {} } : undefined;
}
