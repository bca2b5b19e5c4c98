// What starts a reconcile of a VirtualMCPServer, in one place: the kinds watched, the
// label selectors of the owned objects, which VirtualMCPServer updates matter, and what
// each kind references. main.ts wires these into the informers; the router and the
// reference index (refindex.ts) apply them to each event.
import { KIND_NAMES, type KindName } from "../api/index.js";
import { ANNOTATION_ADOPT, ANNOTATION_APPROVE_CHANGE } from "../program/names.js";
import type { OwnedKind, RawObject } from "./objects.js";
import type { ReferencedKind as SpecReferencedKind } from "../program/inputs.js";

/** Every ToolHive kind is watched (the CRDs' storage version). */
export const WATCHED_TOOLHIVE_KINDS: readonly KindName[] = KIND_NAMES;

/**
 * Label selectors of the owned objects (ToolHive's labels, which the builder sets).
 * ConfigMaps are watched unfiltered: besides our own, a VirtualMCPServer reads its Cedar
 * policies from a user's ConfigMap (authzConfig.type configMap), as ToolHive's operator does.
 */
export const OWNED_SELECTORS: Readonly<Record<OwnedKind, string | undefined>> = {
  ConfigMap: undefined,
  Deployment: "app=virtualmcpserver",
  Service: "app=virtualmcpserver",
};

/** The parts of a VirtualMCPServer whose change is worth a reconcile. */
export interface VmcpTriggerState {
  /** Bumped by the API server on every spec change. */
  generation: number | undefined;
  deleting: boolean;
  finalizers: string;
  /** The opt-in to adopt existing objects (names.ts ANNOTATION_ADOPT). */
  adopt: string | undefined;
  /** The approval of a held change (names.ts ANNOTATION_APPROVE_CHANGE). */
  approve: string | undefined;
}

export function vmcpTriggerState(obj: RawObject): VmcpTriggerState {
  return {
    generation: obj.metadata?.generation,
    deleting: obj.metadata?.deletionTimestamp !== undefined && obj.metadata?.deletionTimestamp !== null,
    finalizers: (obj.metadata?.finalizers ?? []).join(","),
    adopt: obj.metadata?.annotations?.[ANNOTATION_ADOPT],
    approve: obj.metadata?.annotations?.[ANNOTATION_APPROVE_CHANGE],
  };
}

/**
 * Whether a VirtualMCPServer update can change anything we do. Status-only writes (our
 * own, the runtime's) and metadata noise cannot; spec, deletion, finalizer, adopt- and
 * approve-annotation changes can.
 */
export function vmcpUpdateMatters(before: VmcpTriggerState, after: VmcpTriggerState): boolean {
  return (
    before.generation !== after.generation ||
    before.deleting !== after.deleting ||
    before.finalizers !== after.finalizers ||
    before.adopt !== after.adopt ||
    before.approve !== after.approve
  );
}

/** The kinds a VirtualMCPServer's spec points at (ToolHive kinds and the authz ConfigMap). */
export type ReferencedKind = SpecReferencedKind;

/** One object a VirtualMCPServer's spec points at (always in its own namespace). */
export interface Reference {
  kind: ReferencedKind;
  namespace: string;
  name: string;
}

/** A stable id of a reference, for maps and sorting. */
export const referenceId = (ref: Reference): string => `${ref.kind}/${ref.namespace}/${ref.name}`;

type Dict = Record<string, unknown>;
const asDict = (value: unknown): Dict | undefined =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Dict) : undefined;
const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const nameOf = (ref: unknown): string | undefined => {
  const name = asDict(ref)?.name;
  return typeof name === "string" && name ? name : undefined;
};

/** Everything a VirtualMCPServer's spec points at (read raw, so invalid specs are indexed too). */
export function vmcpRefs(obj: RawObject): Reference[] {
  const namespace = obj.metadata?.namespace ?? "default";
  const spec = asDict(obj.spec) ?? {};
  const refs = new Map<string, Reference>();
  const add = (kind: ReferencedKind, name: string | undefined): void => {
    if (!name) return;
    const ref: Reference = { kind, namespace, name };
    refs.set(referenceId(ref), ref);
  };
  add("MCPGroup", nameOf(spec.groupRef));
  const outgoing = asDict(spec.outgoingAuth);
  const authRef = (backend: unknown): void =>
    add("MCPExternalAuthConfig", nameOf(asDict(backend)?.externalAuthConfigRef));
  authRef(outgoing?.default);
  for (const backend of Object.values(asDict(outgoing?.backends) ?? {})) authRef(backend);
  const config = asDict(spec.config);
  for (const tools of asList(asDict(config?.aggregation)?.tools))
    add("MCPToolConfig", nameOf(asDict(tools)?.toolConfigRef));
  for (const ref of asList(config?.compositeToolRefs)) add("VirtualMCPCompositeToolDefinition", nameOf(ref));
  const incoming = asDict(spec.incomingAuth);
  add("MCPOIDCConfig", nameOf(incoming?.oidcConfigRef));
  add("MCPAuthzConfig", nameOf(incoming?.authzConfigRef));
  const authz = asDict(incoming?.authzConfig);
  // The CRD defaults authzConfig.type to configMap.
  if (authz && (authz.type ?? "configMap") === "configMap") add("ConfigMap", nameOf(authz.configMap));
  add("MCPTelemetryConfig", nameOf(spec.telemetryConfigRef));
  add("EmbeddingServer", nameOf(spec.embeddingServerRef));
  return [...refs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, ref]) => ref);
}

/** What a member workload contributes: its group and its own auth config. */
export function memberRefs(obj: RawObject): { group?: string; auth?: string } {
  const spec = asDict(obj.spec) ?? {};
  return { group: nameOf(spec.groupRef), auth: nameOf(spec.externalAuthConfigRef) };
}

/** The VirtualMCPServer owning a ConfigMap/Deployment/Service, if any. */
export function ownerVmcp(obj: RawObject): string | undefined {
  const owner = obj.metadata?.ownerReferences?.find(
    (ref) => ref.kind === "VirtualMCPServer" && ref.apiVersion?.startsWith("toolhive.stacklok.dev/"),
  );
  if (owner?.name) return owner.name;
  // Objects created before the owner had a uid carry no owner reference; the labels say it too.
  const labels = obj.metadata?.labels ?? {};
  return (
    labels["toolhive.stacklok.io/virtual-mcp-server"] ??
    (labels.app === "virtualmcpserver" ? labels["app.kubernetes.io/instance"] : undefined)
  );
}
