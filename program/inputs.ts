// Everything the builder needs for one VirtualMCPServer, gathered from a set of
// objects (the informer cache in the controller, manifest files in `render`).
import type { PodTemplatePolicy } from "./podpolicy.js";
import type {
  EmbeddingServer,
  MCPAuthzConfig,
  MCPExternalAuthConfig,
  MCPOIDCConfig,
  MCPTelemetryConfig,
  MCPGroup,
  MCPRemoteProxy,
  MCPServer,
  MCPServerEntry,
  MCPToolConfig,
  VirtualMCPCompositeToolDefinition,
  VirtualMCPServer,
} from "../api/index.js";

export type Member =
  | { kind: "MCPServer"; object: MCPServer }
  | { kind: "MCPRemoteProxy"; object: MCPRemoteProxy }
  | { kind: "MCPServerEntry"; object: MCPServerEntry };

export interface VmcpInputs {
  vmcp: VirtualMCPServer;
  /** Undefined when the referenced MCPGroup does not exist. */
  group: MCPGroup | undefined;
  /** Workloads of the namespace whose spec.groupRef names the group. */
  members: Member[];
  authConfigs: ReadonlyMap<string, MCPExternalAuthConfig>;
  toolConfigs: ReadonlyMap<string, MCPToolConfig>;
  compositeDefinitions: ReadonlyMap<string, VirtualMCPCompositeToolDefinition>;
  /** The objects named by the single-object references below; undefined when missing. */
  oidcConfig: MCPOIDCConfig | undefined;
  authzConfig: MCPAuthzConfig | undefined;
  /** incomingAuth.authzConfig.configMap (type configMap), as the object set holds it. */
  authzConfigMap: ConfigMapData | undefined;
  telemetryConfig: MCPTelemetryConfig | undefined;
  embeddingServer: EmbeddingServer | undefined;
  /** Every object the VirtualMCPServer's spec names (see referencesOf). */
  references: VmcpReference[];
}

/** A core/v1 ConfigMap as far as the builder reads it. */
export interface ConfigMapData {
  name: string;
  namespace: string;
  data: Readonly<Record<string, string>>;
}

/** Settings of the operator itself, not of any one VirtualMCPServer. */
export interface OperatorSettings {
  vmcpImage: string;
  /** What spec.podTemplateSpec may change (program/podpolicy.ts); default restricted. */
  podTemplatePolicy?: PodTemplatePolicy;
}

/** A namespaced object of any of our kinds, as read from the API or a file. */
export type AnyObject =
  | VirtualMCPServer
  | MCPGroup
  | MCPServer
  | MCPRemoteProxy
  | MCPServerEntry
  | MCPExternalAuthConfig
  | MCPToolConfig
  | VirtualMCPCompositeToolDefinition
  | MCPOIDCConfig
  | MCPAuthzConfig
  | MCPTelemetryConfig
  | EmbeddingServer;

type Kinded<K extends string> = Extract<AnyObject, { kind: K }>;

/** The objects of one namespace, by kind and name. */
export interface ObjectSet {
  byKind<K extends AnyObject["kind"]>(kind: K, namespace: string): Kinded<K>[];
  get<K extends AnyObject["kind"]>(kind: K, namespace: string, name: string): Kinded<K> | undefined;
  /** A ConfigMap (the authz policies of authzConfig.type configMap live in one). */
  configMap(namespace: string, name: string): ConfigMapData | undefined;
}

export function objectSet(
  objects: readonly AnyObject[],
  configMaps: readonly ConfigMapData[] = [],
): ObjectSet {
  const index = new Map<string, AnyObject[]>();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.namespace ?? "default"}`;
    index.set(key, [...(index.get(key) ?? []), o]);
  }
  return {
    byKind: (kind, namespace) => (index.get(`${kind}/${namespace}`) ?? []) as never,
    get: (kind, namespace, name) =>
      (index.get(`${kind}/${namespace}`) ?? []).find((o) => o.metadata.name === name) as never,
    configMap: (namespace, name) => configMaps.find((c) => c.namespace === namespace && c.name === name),
  };
}

/** The kinds a VirtualMCPServer can name in its spec. */
export type ReferencedKind =
  | "MCPGroup"
  | "MCPExternalAuthConfig"
  | "MCPToolConfig"
  | "VirtualMCPCompositeToolDefinition"
  | "MCPOIDCConfig"
  | "MCPAuthzConfig"
  | "ConfigMap"
  | "MCPTelemetryConfig"
  | "EmbeddingServer";

/** One object a VirtualMCPServer's spec names, and the field that names it. */
export interface VmcpReference {
  kind: ReferencedKind;
  name: string;
  field: string;
}

/**
 * Every object (same namespace) the spec of a VirtualMCPServer names, sorted by kind
 * and name, one entry per object (the first field naming it). Group members are not
 * here: they name the group, not the other way round.
 */
export function referencesOf(vmcp: VirtualMCPServer): VmcpReference[] {
  const spec = vmcp.spec;
  const refs: VmcpReference[] = [];
  const add = (kind: ReferencedKind, name: string | undefined, field: string): void => {
    if (name && !refs.some((r) => r.kind === kind && r.name === name)) refs.push({ kind, name, field });
  };
  add("MCPGroup", spec.groupRef.name, "spec.groupRef");
  const incoming = spec.incomingAuth;
  add("MCPOIDCConfig", incoming.oidcConfigRef?.name, "spec.incomingAuth.oidcConfigRef");
  add("MCPAuthzConfig", incoming.authzConfigRef?.name, "spec.incomingAuth.authzConfigRef");
  if (incoming.authzConfig?.type === "configMap")
    add("ConfigMap", incoming.authzConfig.configMap?.name, "spec.incomingAuth.authzConfig.configMap");
  const outgoing = spec.outgoingAuth;
  add("MCPExternalAuthConfig", outgoing?.default?.externalAuthConfigRef?.name, "spec.outgoingAuth.default");
  for (const [backend, auth] of Object.entries(outgoing?.backends ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  ))
    add("MCPExternalAuthConfig", auth.externalAuthConfigRef?.name, `spec.outgoingAuth.backends.${backend}`);
  (spec.config?.aggregation?.tools ?? []).forEach((t, i) =>
    add("MCPToolConfig", t.toolConfigRef?.name, `spec.config.aggregation.tools[${i}].toolConfigRef`),
  );
  (spec.config?.compositeToolRefs ?? []).forEach((r, i) =>
    add("VirtualMCPCompositeToolDefinition", r.name, `spec.config.compositeToolRefs[${i}]`),
  );
  add("MCPTelemetryConfig", spec.telemetryConfigRef?.name, "spec.telemetryConfigRef");
  add("EmbeddingServer", spec.embeddingServerRef?.name, "spec.embeddingServerRef");
  return refs.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

function groupOf(member: Member): string | undefined {
  return member.object.spec.groupRef?.name;
}

function byName<T extends { metadata: { name: string } }>(items: T[]): ReadonlyMap<string, T> {
  return new Map(items.map((i) => [i.metadata.name, i]));
}

function named<K extends AnyObject["kind"]>(
  objects: ObjectSet,
  kind: K,
  ns: string,
  name: string | undefined,
): Kinded<K> | undefined {
  return name ? objects.get(kind, ns, name) : undefined;
}

export function gatherInputs(objects: ObjectSet, vmcp: VirtualMCPServer): VmcpInputs {
  const ns = vmcp.metadata.namespace ?? "default";
  const groupName = vmcp.spec.groupRef.name;
  const members: Member[] = [
    ...objects.byKind("MCPServer", ns).map((object) => ({ kind: "MCPServer" as const, object })),
    ...objects.byKind("MCPRemoteProxy", ns).map((object) => ({ kind: "MCPRemoteProxy" as const, object })),
    ...objects.byKind("MCPServerEntry", ns).map((object) => ({ kind: "MCPServerEntry" as const, object })),
  ].filter((m) => groupOf(m) === groupName);
  const incoming = vmcp.spec.incomingAuth;
  const cmName =
    incoming.authzConfig?.type === "configMap" ? incoming.authzConfig.configMap?.name : undefined;
  return {
    vmcp,
    group: objects.get("MCPGroup", ns, groupName),
    members,
    authConfigs: byName(objects.byKind("MCPExternalAuthConfig", ns)),
    toolConfigs: byName(objects.byKind("MCPToolConfig", ns)),
    compositeDefinitions: byName(objects.byKind("VirtualMCPCompositeToolDefinition", ns)),
    oidcConfig: named(objects, "MCPOIDCConfig", ns, incoming.oidcConfigRef?.name),
    authzConfig: named(objects, "MCPAuthzConfig", ns, incoming.authzConfigRef?.name),
    authzConfigMap: cmName === undefined ? undefined : objects.configMap(ns, cmName),
    telemetryConfig: named(objects, "MCPTelemetryConfig", ns, vmcp.spec.telemetryConfigRef?.name),
    embeddingServer: named(objects, "EmbeddingServer", ns, vmcp.spec.embeddingServerRef?.name),
    references: referencesOf(vmcp),
  };
}
