// Everything the builder needs for one VirtualMCPServer, gathered from a set of
// objects (the informer cache in the controller, manifest files in `render`).
import type {
  MCPExternalAuthConfig,
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
}

/** Settings of the operator itself, not of any one VirtualMCPServer. */
export interface OperatorSettings {
  vmcpImage: string;
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
  | VirtualMCPCompositeToolDefinition;

type Kinded<K extends string> = Extract<AnyObject, { kind: K }>;

/** The objects of one namespace, by kind and name. */
export interface ObjectSet {
  byKind<K extends AnyObject["kind"]>(kind: K, namespace: string): Kinded<K>[];
  get<K extends AnyObject["kind"]>(kind: K, namespace: string, name: string): Kinded<K> | undefined;
}

export function objectSet(objects: readonly AnyObject[]): ObjectSet {
  const index = new Map<string, AnyObject[]>();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata.namespace ?? "default"}`;
    index.set(key, [...(index.get(key) ?? []), o]);
  }
  return {
    byKind: (kind, namespace) => (index.get(`${kind}/${namespace}`) ?? []) as never,
    get: (kind, namespace, name) =>
      (index.get(`${kind}/${namespace}`) ?? []).find((o) => o.metadata.name === name) as never,
  };
}

function groupOf(member: Member): string | undefined {
  return member.object.spec.groupRef?.name;
}

function byName<T extends { metadata: { name: string } }>(items: T[]): ReadonlyMap<string, T> {
  return new Map(items.map((i) => [i.metadata.name, i]));
}

export function gatherInputs(objects: ObjectSet, vmcp: VirtualMCPServer): VmcpInputs {
  const ns = vmcp.metadata.namespace ?? "default";
  const groupName = vmcp.spec.groupRef.name;
  const members: Member[] = [
    ...objects.byKind("MCPServer", ns).map((object) => ({ kind: "MCPServer" as const, object })),
    ...objects.byKind("MCPRemoteProxy", ns).map((object) => ({ kind: "MCPRemoteProxy" as const, object })),
    ...objects.byKind("MCPServerEntry", ns).map((object) => ({ kind: "MCPServerEntry" as const, object })),
  ].filter((m) => groupOf(m) === groupName);
  return {
    vmcp,
    group: objects.get("MCPGroup", ns, groupName),
    members,
    authConfigs: byName(objects.byKind("MCPExternalAuthConfig", ns)),
    toolConfigs: byName(objects.byKind("MCPToolConfig", ns)),
    compositeDefinitions: byName(objects.byKind("VirtualMCPCompositeToolDefinition", ns)),
  };
}
