// The reference index: which VirtualMCPServers does an object affect? Maintained
// incrementally from informer events. For every object it remembers what it referenced
// last time, so an update reports the VirtualMCPServers affected by the old AND the new
// version (a member that leaves a group still triggers that group's servers), and a
// delete reports the ones the object affected last.
import { keyOf, type Key } from "./keys.js";

export const MEMBER_KINDS = ["MCPServer", "MCPRemoteProxy", "MCPServerEntry"] as const;
export const OWNED_KINDS = ["ConfigMap", "Deployment", "Service"] as const;
export type WatchedKind =
  | "VirtualMCPServer"
  | "MCPGroup"
  | (typeof MEMBER_KINDS)[number]
  | "MCPExternalAuthConfig"
  | "MCPToolConfig"
  | "VirtualMCPCompositeToolDefinition"
  | "MCPOIDCConfig"
  | "MCPAuthzConfig"
  | "MCPTelemetryConfig"
  | "EmbeddingServer"
  | (typeof OWNED_KINDS)[number];

/** The fields of an object the index reads; anything else is ignored. */
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
    ownerReferences?: { kind?: string; name?: string; apiVersion?: string }[];
  };
  spec?: unknown;
  status?: unknown;
}

type Dict = Record<string, unknown>;
const asDict = (v: unknown): Dict | undefined =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Dict) : undefined;
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);
const nameOf = (ref: unknown): string | undefined => str(asDict(ref)?.name);

/** A reference from a VirtualMCPServer: "Kind/namespace/name". */
const refKey = (kind: string, ns: string, name: string): string => `${kind}/${ns}/${name}`;

/** Everything a VirtualMCPServer's spec points at (raw, so invalid specs are indexed too). */
export function vmcpRefs(obj: RawObject): string[] {
  const ns = obj.metadata?.namespace ?? "default";
  const spec = asDict(obj.spec) ?? {};
  const refs = new Set<string>();
  const group = nameOf(spec.groupRef);
  if (group) refs.add(refKey("MCPGroup", ns, group));
  const out = asDict(spec.outgoingAuth);
  const authRef = (b: unknown): void => {
    const n = nameOf(asDict(b)?.externalAuthConfigRef);
    if (n) refs.add(refKey("MCPExternalAuthConfig", ns, n));
  };
  authRef(out?.default);
  for (const b of Object.values(asDict(out?.backends) ?? {})) authRef(b);
  const config = asDict(spec.config);
  for (const t of asList(asDict(config?.aggregation)?.tools)) {
    const n = nameOf(asDict(t)?.toolConfigRef);
    if (n) refs.add(refKey("MCPToolConfig", ns, n));
  }
  for (const r of asList(config?.compositeToolRefs)) {
    const n = nameOf(r);
    if (n) refs.add(refKey("VirtualMCPCompositeToolDefinition", ns, n));
  }
  return [...refs].sort();
}

/** What a member workload contributes: its group and its own auth config. */
function memberRefs(obj: RawObject): { group?: string; auth?: string } {
  const spec = asDict(obj.spec) ?? {};
  return { group: nameOf(spec.groupRef), auth: nameOf(spec.externalAuthConfigRef) };
}

/** The VirtualMCPServer owning a ConfigMap/Deployment/Service, if any. */
export function ownerVmcp(obj: RawObject): string | undefined {
  const owner = obj.metadata?.ownerReferences?.find(
    (o) => o.kind === "VirtualMCPServer" && o.apiVersion?.startsWith("toolhive.stacklok.dev/"),
  );
  if (owner?.name) return owner.name;
  // Objects created before the owner had a uid carry no owner reference; the labels say it too.
  const labels = obj.metadata?.labels ?? {};
  return (
    labels["toolhive.stacklok.io/virtual-mcp-server"] ??
    (labels.app === "virtualmcpserver" ? labels["app.kubernetes.io/instance"] : undefined)
  );
}

export class ReferenceIndex {
  /** ref key → VirtualMCPServer keys referencing it. */
  private readonly byRef = new Map<string, Set<Key>>();
  /** VirtualMCPServer key → the ref keys it was indexed under. */
  private readonly vmcpRefsOf = new Map<Key, string[]>();
  /** member ("Kind/ns/name") → {group, auth} it was indexed under. */
  private readonly members = new Map<string, { ns: string; group?: string; auth?: string }>();
  /** "ns/authConfig" → member ids referencing it through spec.externalAuthConfigRef. */
  private readonly membersByAuth = new Map<string, Set<string>>();
  /** owned object ("Kind/ns/name") → owning VirtualMCPServer key. */
  private readonly owned = new Map<string, Key>();

  /** An object was added or updated: returns the VirtualMCPServer keys to reconcile. */
  upsert(kind: WatchedKind, obj: RawObject): Key[] {
    return this.apply(kind, obj, false);
  }

  /** An object was deleted: returns the VirtualMCPServer keys to reconcile. */
  remove(kind: WatchedKind, obj: RawObject): Key[] {
    return this.apply(kind, obj, true);
  }

  /** VirtualMCPServers that reference `kind/ns/name` directly (group, auth, tool, composite refs). */
  referencing(kind: string, ns: string, name: string): Key[] {
    return [...(this.byRef.get(refKey(kind, ns, name)) ?? [])].sort();
  }

  /** Number of indexed objects (for tests and metrics). */
  get size(): number {
    return this.vmcpRefsOf.size + this.members.size + this.owned.size;
  }

  private apply(kind: WatchedKind, obj: RawObject, deleted: boolean): Key[] {
    const ns = obj.metadata?.namespace ?? "default";
    const name = obj.metadata?.name;
    if (!name) return [];
    const affected = new Set<Key>();
    const add = (keys: Iterable<Key> | undefined): void => {
      for (const k of keys ?? []) affected.add(k);
    };
    const id = `${kind}/${ns}/${name}`;
    switch (kind) {
      case "VirtualMCPServer": {
        const key = keyOf(ns, name);
        affected.add(key);
        for (const r of this.vmcpRefsOf.get(key) ?? []) this.unlink(this.byRef, r, key);
        this.vmcpRefsOf.delete(key);
        if (!deleted) {
          const refs = vmcpRefs(obj);
          for (const r of refs) this.link(this.byRef, r, key);
          this.vmcpRefsOf.set(key, refs);
        }
        break;
      }
      case "MCPServer":
      case "MCPRemoteProxy":
      case "MCPServerEntry": {
        const old = this.members.get(id);
        if (old?.group) add(this.byRef.get(refKey("MCPGroup", ns, old.group)));
        if (old?.auth) this.unlink(this.membersByAuth, `${ns}/${old.auth}`, id);
        this.members.delete(id);
        if (!deleted) {
          const now = memberRefs(obj);
          if (now.group) add(this.byRef.get(refKey("MCPGroup", ns, now.group)));
          if (now.auth) this.link(this.membersByAuth, `${ns}/${now.auth}`, id);
          this.members.set(id, { ns, ...now });
        }
        break;
      }
      case "MCPExternalAuthConfig": {
        add(this.byRef.get(id));
        for (const m of this.membersByAuth.get(`${ns}/${name}`) ?? []) {
          const group = this.members.get(m)?.group;
          if (group) add(this.byRef.get(refKey("MCPGroup", ns, group)));
        }
        break;
      }
      case "MCPGroup":
      case "MCPToolConfig":
      case "VirtualMCPCompositeToolDefinition":
        add(this.byRef.get(id));
        break;
      case "ConfigMap":
      case "Deployment":
      case "Service": {
        const old = this.owned.get(id);
        if (old) affected.add(old);
        this.owned.delete(id);
        const owner = ownerVmcp(obj);
        if (owner) {
          affected.add(keyOf(ns, owner));
          if (!deleted) this.owned.set(id, keyOf(ns, owner));
        }
        break;
      }
    }
    return [...affected].sort();
  }

  private link(map: Map<string, Set<string>>, k: string, v: string): void {
    let set = map.get(k);
    if (!set) map.set(k, (set = new Set()));
    set.add(v);
  }

  private unlink(map: Map<string, Set<string>>, k: string, v: string): void {
    const set = map.get(k);
    if (!set) return;
    set.delete(v);
    if (set.size === 0) map.delete(k);
  }
}
