// The reference index: which VirtualMCPServers does an object affect? Maintained
// incrementally from informer events. For every object it remembers what it referenced
// last time, so an update reports the VirtualMCPServers affected by the old AND the new
// version (a member that leaves a group still triggers that group's servers), and a
// delete reports the ones the object affected last. What references what is triggers.ts's.
import { vmcpKey, type Key } from "./keys.js";
import type { RawObject, WatchedKind } from "./objects.js";
import { memberRefs, ownerVmcp, referenceId, vmcpRefs, type ReferencedKind } from "./triggers.js";

const refKey = (kind: ReferencedKind, namespace: string, name: string): string =>
  referenceId({ kind, namespace, name });

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
    return [...(this.byRef.get(`${kind}/${ns}/${name}`) ?? [])].sort();
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
      for (const key of keys ?? []) affected.add(key);
    };
    const id = `${kind}/${ns}/${name}`;
    switch (kind) {
      case "VirtualMCPServer": {
        const key = vmcpKey(ns, name);
        affected.add(key);
        for (const ref of this.vmcpRefsOf.get(key) ?? []) this.unlink(this.byRef, ref, key);
        this.vmcpRefsOf.delete(key);
        if (!deleted) {
          const refs = vmcpRefs(obj).map(referenceId);
          for (const ref of refs) this.link(this.byRef, ref, key);
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
        add(this.byRef.get(refKey(kind, ns, name)));
        for (const member of this.membersByAuth.get(`${ns}/${name}`) ?? []) {
          const group = this.members.get(member)?.group;
          if (group) add(this.byRef.get(refKey("MCPGroup", ns, group)));
        }
        break;
      }
      case "MCPGroup":
      case "MCPToolConfig":
      case "VirtualMCPCompositeToolDefinition":
      case "MCPOIDCConfig":
      case "MCPAuthzConfig":
      case "MCPTelemetryConfig":
      case "EmbeddingServer":
        add(this.byRef.get(refKey(kind, ns, name)));
        break;
      case "ConfigMap":
        // A user's ConfigMap holding authz policies, or one of ours (or both).
        add(this.byRef.get(refKey(kind, ns, name)));
        this.ownedChanged(id, obj, deleted, affected);
        break;
      case "Deployment":
      case "Service":
        this.ownedChanged(id, obj, deleted, affected);
        break;
    }
    return [...affected].sort();
  }

  /** An object we create: its owning VirtualMCPServer (before and after) must look again. */
  private ownedChanged(id: string, obj: RawObject, deleted: boolean, affected: Set<Key>): void {
    const ns = obj.metadata?.namespace ?? "default";
    const old = this.owned.get(id);
    if (old) affected.add(old);
    this.owned.delete(id);
    const owner = ownerVmcp(obj);
    if (owner) {
      affected.add(vmcpKey(ns, owner));
      if (!deleted) this.owned.set(id, vmcpKey(ns, owner));
    }
  }

  private link(map: Map<string, Set<string>>, from: string, to: string): void {
    let set = map.get(from);
    if (!set) map.set(from, (set = new Set()));
    set.add(to);
  }

  private unlink(map: Map<string, Set<string>>, from: string, to: string): void {
    const set = map.get(from);
    if (!set) return;
    set.delete(to);
    if (set.size === 0) map.delete(from);
  }
}
