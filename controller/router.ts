// Informer events → VirtualMCPServer keys to reconcile. Feeds the reference index and
// drops the VirtualMCPServer updates that cannot change anything we do: status-only
// writes (our own, the runtime's) and metadata noise. Spec changes bump
// metadata.generation; deletion and finalizer changes are kept.
import { ReferenceIndex, type RawObject, type WatchedKind } from "./index.js";
import { keyOf, type Key } from "./keys.js";

export type Verb = "add" | "update" | "delete";

interface VmcpSeen {
  generation: number | undefined;
  deleting: boolean;
  finalizers: string;
}

export class EventRouter {
  readonly index = new ReferenceIndex();
  private readonly seen = new Map<Key, VmcpSeen>();
  /** VirtualMCPServer updates dropped as status/metadata-only (for tests and metrics). */
  ignored = 0;

  route(kind: WatchedKind, verb: Verb, obj: RawObject): Key[] {
    if (kind === "VirtualMCPServer") {
      const key = keyOf(obj.metadata?.namespace, obj.metadata?.name ?? "");
      if (verb === "delete") {
        this.seen.delete(key);
        return this.index.remove(kind, obj);
      }
      const now: VmcpSeen = {
        generation: obj.metadata?.generation,
        deleting: obj.metadata?.deletionTimestamp !== undefined && obj.metadata?.deletionTimestamp !== null,
        finalizers: (obj.metadata?.finalizers ?? []).join(","),
      };
      const before = this.seen.get(key);
      this.seen.set(key, now);
      const keys = this.index.upsert(kind, obj);
      if (
        verb === "update" &&
        before &&
        before.generation === now.generation &&
        before.deleting === now.deleting &&
        before.finalizers === now.finalizers
      ) {
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
