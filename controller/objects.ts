// The controller's core vocabulary: the kinds it caches and the fields of an object it
// reads. Objects come straight from the API server (unparsed), so every field is optional.

import type { KindName } from "../api/index.js";

export const MEMBER_KINDS = ["MCPServer", "MCPRemoteProxy", "MCPServerEntry"] as const;
export const OWNED_KINDS = ["ConfigMap", "Deployment", "Service"] as const;
export type OwnedKind = (typeof OWNED_KINDS)[number];
/** Every ToolHive kind of api/ (members included), and the objects we own. */
export type WatchedKind = KindName | OwnedKind;

/** The kinds of the objects a stack declares (program/resources.ts). */
export const STACK_OBJECT_KINDS = [
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ConfigMap",
  "Deployment",
  "Service",
  "PodDisruptionBudget",
  "Secret",
] as const;
export type StackObjectKind = (typeof STACK_OBJECT_KINDS)[number];

export type ObjectMeta = NonNullable<RawObject["metadata"]>;

/** One entry of metadata.managedFields (fieldsV1: the field set, leaves `{}`). */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  subresource?: string;
  fieldsType?: string;
  fieldsV1?: unknown;
  time?: unknown;
}

/** An object as the API server sends it; anything not listed here is ignored. */
export interface RawObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    generation?: number;
    resourceVersion?: string;
    uid?: string;
    deletionTimestamp?: unknown;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind?: string; name?: string; apiVersion?: string; uid?: string }[];
    managedFields?: ManagedFieldsEntry[];
  };
  spec?: unknown;
  status?: unknown;
}
