// Who holds a stack's lock: the record a replica writes beside the Pulumi lock before each
// operation (file backend: `.pulumi/vmcp-holders/<stack>.json`), naming the shard Lease and
// the term (leaseTransitions) under which it operates, its identity, pid and start time. A
// stale lock is broken only when that holder no longer holds that Lease in that term.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

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

const holderPath = (stateDir: string, stack: string): string =>
  join(stateDir, ".pulumi", "vmcp-holders", `${stack}.json`);

/** Written before the operation takes the Pulumi lock (rename: never a half-written record). */
export async function writeHolder(stateDir: string, stack: string, record: HolderRecord): Promise<void> {
  const path = holderPath(stateDir, stack);
  await mkdir(join(stateDir, ".pulumi", "vmcp-holders"), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(record));
  await rename(tmp, path);
}

export async function readHolder(stateDir: string, stack: string): Promise<HolderRecord | undefined> {
  const text = await readFile(holderPath(stateDir, stack), "utf8").catch(() => undefined);
  return text === undefined ? undefined : parseHolder(text);
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
