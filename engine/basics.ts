// What the controller needs of the engine without loading the Automation API (engine/lazy.ts):
// stack names, the plan a failed up carries, and a file backend's stacks and locks as files.
import { access, link, mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
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
 * Creates a stack in a file backend as `stack init` does, by writing its empty checkpoint
 * (`.pulumi/stacks/<project>/<stack>.json`): a CLI process less per new stack (its Go start and
 * passphrase key, ≈ 0.3 CPU-s). The stack's first up stores the secrets manager's salt, as for
 * any stack whose config has none. Only in a backend laid out for project-scoped stacks
 * (`.pulumi/meta.yaml` at version 1, written here into a backend still empty); false in a
 * legacy layout, and `stack init` goes first. The file appears whole or not at all (written
 * aside, then linked: a stack that exists stays as it is).
 */
export async function createStackFile(
  stateDir: string,
  project: string,
  stack: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const root = join(stateDir, ".pulumi");
  const fresh = await access(root).then(
    () => false,
    () => true,
  );
  // A backend nothing has written to yet: laid out as the CLI would (project-scoped, unless
  // told to use the legacy layout).
  if (fresh && !/^(1|true)$/i.test(env.PULUMI_DIY_BACKEND_LEGACY_LAYOUT ?? "")) {
    await mkdir(root, { recursive: true });
    await writeFile(join(root, "meta.yaml"), "version: 1\n", { flag: "wx" }).catch(ignoreExisting);
  }
  const meta = await readFile(join(root, "meta.yaml"), "utf8").catch(() => "");
  if (!/^version:\s*1\s*$/m.test(meta)) return false;
  const dir = join(root, "stacks", project);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${stack}.json`);
  const aside = `${file}.${process.pid}.${Date.now()}.new`;
  const checkpoint = { version: 3, checkpoint: { stack: `organization/${project}/${stack}`, latest: null } };
  await writeFile(aside, JSON.stringify(checkpoint), { flag: "wx", mode: 0o600 });
  try {
    await link(aside, file).catch(ignoreExisting);
  } finally {
    await unlink(aside);
  }
  return true;
}

const ignoreExisting = (err: NodeJS.ErrnoException): void => {
  if (err.code !== "EEXIST") throw err;
};

/**
 * Stacks holding a lock file in a file backend (`.pulumi/locks/[organization/<project>/]<stack>/<id>.json`,
 * any project), from one recursive listing: a stale lock marks a killed operation.
 */
export async function lockedStacksIn(stateDir: string): Promise<Set<string>> {
  const root = join(stateDir, ".pulumi", "locks");
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return new Set(entries.filter((e) => e.isFile()).map((e) => basename(e.parentPath)));
}
