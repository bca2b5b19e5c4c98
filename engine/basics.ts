// What the controller needs of the engine without loading the Automation API (engine/lazy.ts):
// stack names, the plan a failed up carries, the lock listing of a file backend.
import { access, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import type { PreviewResult, StackKey } from "./stacks.js";

export const stackName = (key: StackKey): string => `${key.namespace}.${key.name}`;

/** The hidden property of an up's or repair's error that carries its plan (stacks.ts sets it). */
export const PLAN = Symbol("plan");

/**
 * The plan an up had carried out when it failed (its steps so far), or undefined: the
 * error an up or repair throws keeps its message and carries this as a hidden property.
 */
export function planOf(err: unknown): PreviewResult | undefined {
  const plan = (err as { [PLAN]?: PreviewResult } | undefined)?.[PLAN];
  return plan && plan.changes.length > 0 ? plan : undefined;
}

/**
 * Whether a file backend holds the stack's checkpoint (`.pulumi/stacks/[<project>/]<stack>.json`,
 * gzipped or not): a stack without one is new, and `stack init` can go first.
 */
export async function stackFileExists(stateDir: string, project: string, stack: string): Promise<boolean> {
  const dir = join(stateDir, ".pulumi", "stacks");
  const candidates = [join(dir, project, stack), join(dir, stack)].flatMap((f) => [
    `${f}.json`,
    `${f}.json.gz`,
  ]);
  const found = await Promise.all(
    candidates.map((f) =>
      access(f).then(
        () => true,
        () => false,
      ),
    ),
  );
  return found.includes(true);
}

/**
 * Stacks holding a lock file in a file backend (`.pulumi/locks/[organization/<project>/]<stack>/<id>.json`,
 * any project), from one recursive listing: a stale lock marks a killed operation.
 */
export async function lockedStacksIn(stateDir: string): Promise<Set<string>> {
  const root = join(stateDir, ".pulumi", "locks");
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return new Set(entries.filter((e) => e.isFile()).map((e) => basename(e.parentPath)));
}
