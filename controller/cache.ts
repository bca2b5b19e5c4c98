// The read side of the controller: what reconcile reads, never the API server directly.
// The informers implement Cache; unit tests use MemoryCache. cacheObjectSet adapts a
// namespace of the cache to the builder's ObjectSet, parsing (and memoising) each object.
import { parseObject, formatFieldErrors, type KindName } from "../api/index.js";
import type { AnyObject, ObjectSet } from "../program/inputs.js";
import { MEMBER_KINDS, type RawObject, type WatchedKind } from "./objects.js";
import { memberRefs } from "./triggers.js";

export interface Cache {
  get(kind: WatchedKind, namespace: string, name: string): RawObject | undefined;
  list(kind: WatchedKind, namespace?: string): RawObject[];
}

export class MemoryCache implements Cache {
  private readonly objects = new Map<string, RawObject>();

  private id(kind: string, ns: string, name: string): string {
    return `${kind}/${ns}/${name}`;
  }

  set(kind: WatchedKind, obj: RawObject): void {
    const ns = obj.metadata?.namespace ?? "default";
    this.objects.set(this.id(kind, ns, obj.metadata?.name ?? ""), obj);
  }

  delete(kind: WatchedKind, namespace: string, name: string): void {
    this.objects.delete(this.id(kind, namespace, name));
  }

  get(kind: WatchedKind, namespace: string, name: string): RawObject | undefined {
    return this.objects.get(this.id(kind, namespace, name));
  }

  list(kind: WatchedKind, namespace?: string): RawObject[] {
    const prefix = namespace === undefined ? `${kind}/` : `${kind}/${namespace}/`;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }
}

type Parsed = { ok: true; value: AnyObject } | { ok: false; message: string };
const parsedMemo = new WeakMap<object, Parsed>();

/** Parses a ToolHive object of the cache once per version (objects are replaced on update). */
export function parseCached(kind: KindName, raw: RawObject): Parsed {
  const hit = parsedMemo.get(raw);
  if (hit) return hit;
  const r = parseObject(kind, raw);
  const parsed: Parsed = r.ok
    ? { ok: true, value: r.value as AnyObject }
    : { ok: false, message: formatFieldErrors(r.errors) };
  parsedMemo.set(raw, parsed);
  return parsed;
}

export interface CachedObjectSet extends ObjectSet {
  /** Objects read through this set that failed schema validation: "Kind name" → errors. */
  readonly invalid: Map<string, string>;
}

/** The builder's view of one namespace of the cache. Invalid objects are left out and recorded. */
export function cacheObjectSet(cache: Cache): CachedObjectSet {
  const invalid = new Map<string, string>();
  const parse = (kind: KindName, raw: RawObject): AnyObject | undefined => {
    const p = parseCached(kind, raw);
    if (p.ok) return p.value;
    invalid.set(`${kind} ${raw.metadata?.name ?? "?"}`, p.message);
    return undefined;
  };
  return {
    invalid,
    byKind: (kind, namespace) =>
      cache
        .list(kind, namespace)
        .map((o) => parse(kind, o))
        .filter((o) => o !== undefined) as never,
    get: (kind, namespace, name) => {
      const raw = cache.get(kind, namespace, name);
      return (raw ? parse(kind, raw) : undefined) as never;
    },
    configMap: (namespace, name) => {
      const raw = cache.get("ConfigMap", namespace, name) as (RawObject & { data?: unknown }) | undefined;
      if (!raw) return undefined;
      const data = raw.data && typeof raw.data === "object" ? (raw.data as Record<string, string>) : {};
      return { namespace, name, data };
    },
  };
}

/** A member of a group that failed schema validation: the builder cannot use it. */
export interface InvalidMember {
  kind: (typeof MEMBER_KINDS)[number];
  name: string;
  errors: string;
}

/**
 * Members of `group` (by the raw spec.groupRef, which parsing cannot vouch for) that fail
 * schema validation: the builder never sees them, so they must be reported, not dropped.
 */
export function invalidMembers(cache: Cache, namespace: string, group: string): InvalidMember[] {
  const out: InvalidMember[] = [];
  for (const kind of MEMBER_KINDS)
    for (const raw of cache.list(kind, namespace)) {
      if (memberRefs(raw).group !== group) continue;
      const parsed = parseCached(kind, raw);
      if (!parsed.ok) out.push({ kind, name: raw.metadata?.name ?? "?", errors: parsed.message });
    }
  return out.sort((a, b) => `${a.kind} ${a.name}`.localeCompare(`${b.kind} ${b.name}`));
}
