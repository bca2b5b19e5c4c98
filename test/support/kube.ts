// The ToolHive objects of one namespace, for the integration tests and the benchmarks.
// Objects are named by kind: plural and apiVersion come from api/, so a test is short and
// cannot drift from the group and version the CRDs store.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from "@kubernetes/client-node";
import { GROUP, PLURALS, STORAGE_VERSION, type KindName } from "../../api/index.js";
import type { Status } from "../../controller/status.js";

export const VERSION = STORAGE_VERSION;
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The options argument of a JSON merge patch (client-node sends JSON patch otherwise). */
export const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

type Spec = Record<string, unknown>;

/** A custom object as the API server returns it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation: number;
    resourceVersion: string;
    finalizers?: string[];
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec?: Spec;
  status?: Record<string, unknown>;
}

/** A VirtualMCPServer, with the status our controller writes. */
export type VmcpObject = Omit<KubeObject, "status"> & { status?: Status };

export interface Kube {
  custom(): CustomObjectsApi;
  core(): CoreV1Api;
  apps(): AppsV1Api;
  /** Creates the `kind` object `name` with `spec`. */
  create(kind: KindName, name: string, spec: Spec): Promise<KubeObject>;
  /** Creates an object as written (e.g. parsed from a manifest): its kind picks the plural. */
  createObject(body: { kind: string }): Promise<KubeObject>;
  get(kind: KindName, name: string): Promise<KubeObject>;
  list(kind: KindName): Promise<KubeObject[]>;
  /** A JSON merge patch of the object (metadata, spec). */
  patch(kind: KindName, name: string, body: Record<string, unknown>): Promise<KubeObject>;
  /** A JSON merge patch of the spec. */
  patchSpec(kind: KindName, name: string, spec: Spec): Promise<KubeObject>;
  /** A JSON merge patch of the status subresource (playing a controller that does not run here). */
  patchStatus(kind: KindName, name: string, status: Record<string, unknown>): Promise<KubeObject>;
  remove(kind: KindName, name: string): Promise<unknown>;
  vmcp(name: string): Promise<VmcpObject>;
  /** The VirtualMCPServer's status; {} before the controller wrote one. */
  statusOf(name: string): Promise<Status>;
  /** An MCPGroup in phase Ready (no MCPGroup controller runs in the tests). */
  readyGroup(name: string): Promise<void>;
  /** An MCPServerEntry of `group`, streamable HTTP at `url`. */
  entry(name: string, group: string, url: string): Promise<KubeObject>;
}

type Lazy<T> = T | (() => T);
const now = <T>(v: Lazy<T>): T => (typeof v === "function" ? (v as () => T)() : v);

/**
 * Clients for the objects of namespace `ns`. Both arguments may be functions, read at each
 * call: tests declare the helpers before `before()` has made the namespace.
 */
export function kube(kubeconfig: Lazy<KubeConfig>, ns: Lazy<string>): Kube {
  const custom = () => now(kubeconfig).makeApiClient(CustomObjectsApi);
  const at = (kind: KindName) => ({
    group: GROUP,
    version: VERSION,
    namespace: now(ns),
    plural: PLURALS[kind],
  });
  const k: Kube = {
    custom,
    core: () => now(kubeconfig).makeApiClient(CoreV1Api),
    apps: () => now(kubeconfig).makeApiClient(AppsV1Api),
    create: async (kind, name, spec) =>
      (await custom().createNamespacedCustomObject({
        ...at(kind),
        body: { apiVersion: API_VERSION, kind, metadata: { name, namespace: now(ns) }, spec },
      })) as KubeObject,
    createObject: async (body) => {
      if (!(body.kind in PLURALS)) throw new Error(`createObject: ${body.kind} is not a ToolHive kind`);
      return (await custom().createNamespacedCustomObject({
        ...at(body.kind as KindName),
        body,
      })) as KubeObject;
    },
    get: async (kind, name) =>
      (await custom().getNamespacedCustomObject({ ...at(kind), name })) as KubeObject,
    list: async (kind) =>
      ((await custom().listNamespacedCustomObject(at(kind))) as { items: KubeObject[] }).items,
    patch: async (kind, name, body) =>
      (await custom().patchNamespacedCustomObject({ ...at(kind), name, body }, mergePatch)) as KubeObject,
    patchSpec: (kind, name, spec) => k.patch(kind, name, { spec }),
    patchStatus: async (kind, name, status) =>
      (await custom().patchNamespacedCustomObjectStatus(
        { ...at(kind), name, body: { status } },
        mergePatch,
      )) as KubeObject,
    remove: (kind, name) => custom().deleteNamespacedCustomObject({ ...at(kind), name }),
    vmcp: async (name) => (await k.get("VirtualMCPServer", name)) as VmcpObject,
    statusOf: async (name) => (await k.vmcp(name)).status ?? {},
    async readyGroup(name) {
      await k.create("MCPGroup", name, {});
      await k.patchStatus("MCPGroup", name, { phase: "Ready" });
    },
    entry: (name, group, url) =>
      k.create("MCPServerEntry", name, {
        remoteUrl: url,
        transport: "streamable-http",
        groupRef: { name: group },
      }),
  };
  return k;
}

/** The condition `type` of a status. */
export const conditionOf = (s: Status | undefined, type: string) =>
  s?.conditions?.find((c) => c.type === type);

/** The discovered backend `name` of a status. */
export const backendOf = (s: Status | undefined, name: string) =>
  s?.discoveredBackends?.find((b) => b.name === name);
