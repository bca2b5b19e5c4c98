// The engine, loaded at its first Pulumi operation. The Automation API and the program's
// libraries (@pulumi/pulumi, @pulumi/kubernetes) are ≈ 90 MiB of RSS at import
// (docs/benchmarks.md): a controller with nothing to apply (every stack at its applied
// hash, e.g. after a restart) never needs them. What it calls before an operation — the
// lock listing, fencing, the holder — needs no Pulumi and is answered here; what it
// decided before the load (fenced stacks, the holder) is handed to the engine when it loads.
// Orphans of a killed predecessor are still stopped at once, and a missing CLI still fails
// the start (its version is checked when the engine loads).
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { lockedStacksIn } from "./basics.js";
import { reapOrphans } from "./orphans.js";
import type { Engine, EngineOptions, HolderHook } from "./stacks.js";

const loadEngine = async (opts: EngineOptions): Promise<Engine> =>
  (await import("./stacks.js")).createEngine(opts);

/** bin/pulumi under the root (option, else $VMCP_PULUMI_ROOT), else `pulumi` on PATH; throws if absent. */
async function checkCli(root: string | undefined): Promise<void> {
  const candidates = root
    ? [join(root, "bin", "pulumi")]
    : (process.env.PATH ?? "")
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, "pulumi"));
  for (const c of candidates)
    if (
      await access(c, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return;
  throw new Error(
    root ? `no Pulumi CLI at ${join(root, "bin", "pulumi")}` : "no Pulumi CLI (`pulumi`) on PATH",
  );
}

export async function createLazyEngine(
  opts: EngineOptions,
  load: (opts: EngineOptions) => Promise<Engine> = loadEngine,
): Promise<Engine> {
  const stopped = await reapOrphans();
  if (stopped.length) opts.onOrphansStopped?.(stopped.map(({ pid, argv }) => ({ pid, argv })));
  await checkCli(opts.pulumiRoot ?? process.env.VMCP_PULUMI_ROOT);
  // Where createEngine puts a file backend; none = a fresh scratch directory, empty until loaded.
  const backend = opts.backendUrl ?? (opts.stateDir ? `file://${opts.stateDir}` : undefined);
  const stateDir = backend?.startsWith("file://") ? backend.slice("file://".length) : undefined;

  let engine: Engine | undefined;
  let loading: Promise<Engine> | undefined;
  const fenced = new Set<string>();
  let holderOf: HolderHook | undefined;
  const real = (): Promise<Engine> =>
    (loading ??= load(opts).then(
      (e) => {
        if (holderOf) e.setHolder(holderOf);
        if (fenced.size) e.fence(fenced); // nothing runs yet: kills nothing, blocks their processes
        engine = e;
        return e;
      },
      (err: unknown) => {
        loading = undefined; // the next operation tries again
        throw err;
      },
    ));

  return {
    get processesStarted() {
      return engine?.processesStarted ?? 0;
    },
    providerPids: () => engine?.providerPids() ?? [],
    preview: async (desired) => (await real()).preview(desired),
    up: async (desired, apply) => (await real()).up(desired, apply),
    repair: async (desired, apply) => (await real()).repair(desired, apply),
    destroy: async (key) => (await real()).destroy(key),
    unlock: async (key) => (await real()).unlock(key),
    exists: async (key) => (await real()).exists(key),
    fence: (names) => {
      if (engine) return engine.fence(names);
      for (const n of names) fenced.add(n);
      return [];
    },
    unfence: (names) => {
      if (engine) return engine.unfence(names);
      for (const n of names) fenced.delete(n);
    },
    setHolder: (f) => {
      holderOf = f;
      engine?.setHolder(f);
    },
    lockedStacks: async () => {
      if (engine) return engine.lockedStacks();
      if (backend === undefined) return new Set(); // the scratch backend does not exist yet
      return stateDir !== undefined ? lockedStacksIn(stateDir) : undefined;
    },
    close: async () => {
      const e = engine ?? (await loading?.catch(() => undefined));
      await e?.close();
    },
  };
}
