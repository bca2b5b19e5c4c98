// Who holds a stack's lock, readable by every replica whatever the state backend: before
// each operation a replica records itself (identity, pid, start time, the operation) in an
// annotation of the Lease that entitles it to operate the stack (its shard's, or the single
// leader's), with the term (leaseTransitions) it holds it in. The record rides on the
// replica's own writes of that Lease: one write when the operation starts, none when it
// ends (the next renewal drops it). A replica that finds a stack locked breaks the lock only
// when no live record names it: a record is live while its writer still holds that Lease,
// in that term, renewed within its duration. Pure: leader.ts writes, main.ts reads.
import type { V1Lease } from "@kubernetes/client-node";

export const HOLDERS_ANNOTATION = "vmcp.stacklok.dev/holders";

export interface HolderRecord {
  /** The replica identity (the Lease holderIdentity it writes). */
  identity: string;
  /** namespace/name of the Lease that entitles it to operate the stack. */
  lease: string;
  /** The Lease's leaseTransitions when the holder took it. */
  transitions: number;
  pid: number;
  /** When the holder process started (ISO time). */
  started: string;
  /** The operation and when it began. */
  op: string;
  at: string;
}

export function parseHolder(text: string): HolderRecord | undefined {
  try {
    const o = JSON.parse(text) as Partial<HolderRecord>;
    if (typeof o.identity !== "string" || typeof o.lease !== "string" || typeof o.transitions !== "number")
      return undefined;
    return o as HolderRecord;
  } catch {
    return undefined;
  }
}

/**
 * Whether the Lease (as read now) still entitles the recorded holder: same holder, same term,
 * renewed within its duration by `now`. Pure: the caller reads the Lease.
 */
export function holderStillHolds(
  record: HolderRecord,
  lease:
    | { holderIdentity?: string; leaseTransitions?: number; renewTime?: Date; durationSeconds?: number }
    | undefined,
  now: number,
): boolean {
  if (!lease || (lease.holderIdentity ?? "") !== record.identity) return false;
  if ((lease.leaseTransitions ?? 0) !== record.transitions) return false;
  const renew = lease.renewTime?.getTime() ?? 0;
  return renew + (lease.durationSeconds ?? 0) * 1000 > now;
}

/** `annotations` with HOLDERS_ANNOTATION set to `records` (by stack), or removed when there are none. */
export function withHolders(
  annotations: Record<string, string> | undefined,
  records: ReadonlyMap<string, HolderRecord>,
): Record<string, string> | undefined {
  const { [HOLDERS_ANNOTATION]: _old, ...rest } = annotations ?? {};
  if (records.size === 0) return Object.keys(rest).length ? rest : undefined;
  return { ...rest, [HOLDERS_ANNOTATION]: JSON.stringify(Object.fromEntries(records)) };
}

/** The records on a Lease, by stack (unreadable ones skipped). */
export function holdersOf(lease: V1Lease): Map<string, HolderRecord> {
  const out = new Map<string, HolderRecord>();
  const text = lease.metadata?.annotations?.[HOLDERS_ANNOTATION];
  if (!text) return out;
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return out;
  }
  if (!o || typeof o !== "object") return out;
  for (const [stack, v] of Object.entries(o as Record<string, unknown>)) {
    const rec = parseHolder(JSON.stringify(v));
    if (rec) out.set(stack, rec);
  }
  return out;
}

/** This process, as its records name it. */
export interface Self {
  identity: string;
  pid: number;
  started: string;
}

/**
 * Whether a stale lock of `stack` may be broken, given the Leases as read now: no, while a
 * record names the stack on a Lease whose writer still holds it (same identity, same term,
 * unexpired), unless that record is this very process's (its own operation, killed when it
 * lost the Lease: fencing). A stack no record names (the operation ended, or its Lease was
 * taken over since) may be unlocked.
 */
export function mayBreakLock(stack: string, leases: readonly V1Lease[], self: Self, now: number): boolean {
  for (const lease of leases) {
    const rec = holdersOf(lease).get(stack);
    if (!rec) continue;
    if (rec.identity === self.identity && rec.pid === self.pid && rec.started === self.started) continue;
    const spec = lease.spec;
    const live = holderStillHolds(
      rec,
      spec && {
        ...(spec.holderIdentity !== undefined ? { holderIdentity: spec.holderIdentity } : {}),
        ...(spec.leaseTransitions !== undefined ? { leaseTransitions: spec.leaseTransitions } : {}),
        ...(spec.renewTime ? { renewTime: new Date(spec.renewTime) } : {}),
        ...(spec.leaseDurationSeconds !== undefined ? { durationSeconds: spec.leaseDurationSeconds } : {}),
      },
      now,
    );
    if (live) return false;
  }
  return true;
}
