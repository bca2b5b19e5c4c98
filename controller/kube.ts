// The controller's writes to the API server: the status subresource (JSON merge patch,
// optimistic on resourceVersion), finalizers, and core/v1 Events on the VirtualMCPServer;
// and one read, the metadata of an object of a stack's names before its first apply.
import { randomBytes } from "node:crypto";
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
} from "@kubernetes/client-node";
import { GROUP, PLURALS, STORAGE_VERSION } from "../api/index.js";
import type { ObjectMeta, RawObject, StackObjectKind } from "./objects.js";
import { errorMessage, silentLogger, type Logger } from "./log.js";
import { FIELD_MANAGER } from "../program/names.js";
import { ConflictError, GoneError, type KubeWriter } from "./reconcile.js";

export const COMPONENT = "vmcp-operator";

function code(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const c =
    (err as { code?: unknown; statusCode?: unknown })?.code ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof c === "number" ? c : undefined;
}

function rethrow(err: unknown): never {
  if (code(err) === 409) throw new ConflictError(errorMessage(err).slice(0, 300));
  if (code(err) === 404) throw new GoneError(errorMessage(err).slice(0, 300));
  throw err;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
// The API server answers with the object's metadata only: no spec, no Secret data on the wire.
const metadataOnly = setHeaderOptions(
  "Accept",
  "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
);

export class KubeClient implements KubeWriter {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly rbac: RbacAuthorizationV1Api;
  private readonly policy: PolicyV1Api;
  private readonly log: Logger;
  private readonly host = process.env.HOSTNAME ?? "local";

  constructor(kc: KubeConfig, log?: Logger) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    this.policy = kc.makeApiClient(PolicyV1Api);
    this.log = log ?? silentLogger;
  }

  private base(namespace: string, name: string) {
    return { group: GROUP, version: STORAGE_VERSION, namespace, plural: PLURALS.VirtualMCPServer, name };
  }

  async getVmcp(namespace: string, name: string): Promise<RawObject | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject(this.base(namespace, name))) as RawObject;
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  }

  async getObjectMeta(
    kind: StackObjectKind,
    namespace: string,
    name: string,
  ): Promise<ObjectMeta | undefined> {
    const at = { namespace, name };
    const read: Record<StackObjectKind, () => Promise<{ metadata?: unknown }>> = {
      ServiceAccount: () => this.core.readNamespacedServiceAccount(at, metadataOnly),
      Role: () => this.rbac.readNamespacedRole(at, metadataOnly),
      RoleBinding: () => this.rbac.readNamespacedRoleBinding(at, metadataOnly),
      ConfigMap: () => this.core.readNamespacedConfigMap(at, metadataOnly),
      Deployment: () => this.apps.readNamespacedDeployment(at, metadataOnly),
      Service: () => this.core.readNamespacedService(at, metadataOnly),
      PodDisruptionBudget: () => this.policy.readNamespacedPodDisruptionBudget(at, metadataOnly),
      Secret: () => this.core.readNamespacedSecret(at, metadataOnly),
    };
    try {
      return ((await read[kind]()).metadata ?? {}) as ObjectMeta;
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  }

  async setManagedFields(
    kind: Exclude<StackObjectKind, "Secret">,
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    managedFields: NonNullable<ObjectMeta["managedFields"]>,
  ): Promise<void> {
    const at = {
      namespace,
      name,
      body: { metadata: { managedFields, ...(resourceVersion ? { resourceVersion } : {}) } },
    };
    const patch: Record<typeof kind, () => Promise<unknown>> = {
      ServiceAccount: () => this.core.patchNamespacedServiceAccount(at, mergePatch),
      Role: () => this.rbac.patchNamespacedRole(at, mergePatch),
      RoleBinding: () => this.rbac.patchNamespacedRoleBinding(at, mergePatch),
      ConfigMap: () => this.core.patchNamespacedConfigMap(at, mergePatch),
      Deployment: () => this.apps.patchNamespacedDeployment(at, mergePatch),
      Service: () => this.core.patchNamespacedService(at, mergePatch),
      PodDisruptionBudget: () => this.policy.patchNamespacedPodDisruptionBudget(at, mergePatch),
    };
    try {
      await patch[kind]();
    } catch (err) {
      // Deleted since it was looked up: nothing left to hand over (the apply creates it).
      if (code(err) === 404) return;
      rethrow(err);
    }
  }

  async patchStatus(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    status: Record<string, unknown>,
  ): Promise<RawObject> {
    const body: Record<string, unknown> = { status };
    if (resourceVersion) body.metadata = { resourceVersion };
    try {
      return (await this.custom.patchNamespacedCustomObjectStatus(
        { ...this.base(namespace, name), body, fieldManager: FIELD_MANAGER },
        mergePatch,
      )) as RawObject;
    } catch (err) {
      return rethrow(err);
    }
  }

  async setFinalizers(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    finalizers: string[],
  ): Promise<RawObject> {
    const metadata: Record<string, unknown> = { finalizers };
    if (resourceVersion) metadata.resourceVersion = resourceVersion;
    try {
      return (await this.custom.patchNamespacedCustomObject(
        { ...this.base(namespace, name), body: { metadata }, fieldManager: FIELD_MANAGER },
        mergePatch,
      )) as RawObject;
    } catch (err) {
      return rethrow(err);
    }
  }

  async listPods(namespace: string, labelSelector: string): Promise<RawObject[]> {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items as unknown as RawObject[];
  }

  async event(obj: RawObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const namespace = obj.metadata?.namespace ?? "default";
    const name = obj.metadata?.name ?? "";
    const now = new Date();
    const event: CoreV1Event = {
      metadata: { name: `${name}.${now.getTime().toString(16)}${randomBytes(3).toString("hex")}`, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion ?? `${GROUP}/${STORAGE_VERSION}`,
        kind: "VirtualMCPServer",
        name,
        namespace,
        uid: obj.metadata?.uid,
        resourceVersion: obj.metadata?.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: COMPONENT },
      reportingComponent: COMPONENT,
      reportingInstance: this.host,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.core.createNamespacedEvent({ namespace, body: event });
    } catch (err) {
      this.log.warn("could not record event", {
        key: `${namespace}/${name}`,
        reason,
        error: errorMessage(err),
      });
    }
  }
}
