// Informer events → VirtualMCPServer keys to reconcile. Feeds the reference index and
// drops the VirtualMCPServer updates that cannot change anything we do (the rules are
// triggers.ts's: vmcpUpdateMatters).
import { vmcpKey, type Key } from "./keys.js";
import type { RawObject, WatchedKind } from "./objects.js";
import { ReferenceIndex } from "./refindex.js";
import { vmcpTriggerState, vmcpUpdateMatters, type VmcpTriggerState } from "./triggers.js";

export type Verb = "add" | "update" | "delete";

export class EventRouter {
  readonly index = new ReferenceIndex();
  private readonly seen = new Map<Key, VmcpTriggerState>();
  /** VirtualMCPServer updates dropped as status/metadata-only (for tests and metrics). */
  ignored = 0;

  route(kind: WatchedKind, verb: Verb, obj: RawObject): Key[] {
    if (kind === "VirtualMCPServer") {
      const key = vmcpKey(obj.metadata?.namespace, obj.metadata?.name ?? "");
      if (verb === "delete") {
        this.seen.delete(key);
        return this.index.remove(kind, obj);
      }
      const now = vmcpTriggerState(obj);
      const before = this.seen.get(key);
      this.seen.set(key, now);
      const keys = this.index.upsert(kind, obj);
      if (verb === "update" && before && !vmcpUpdateMatters(before, now)) {
        this.ignored++;
        return [];
      }
      return keys;
    }
    return verb === "delete" ? this.index.remove(kind, obj) : this.index.upsert(kind, obj);
  }

  /** Every VirtualMCPServer key seen (for the resync). */
  keys(): Key[] {
    return [...this.seen.keys()];
  }
}
