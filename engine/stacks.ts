// The Automation API edge: one Pulumi stack per VirtualMCPServer (`<namespace>.<name>`),
// an inline program declaring the VirtualMCPServer component (program/resources.ts), a
// DIY backend (a file backend by default; s3://, postgres://, … by URL). Stacks and their
// workspaces are created once and reused, so an operation costs only its own CLI calls.
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { tmpdir } from "node:os";
import {
  LocalWorkspace,
  PulumiCommand,
  Stack,
  StackAlreadyExistsError,
  type EngineEvent,
  type InlineProgramArgs,
  type LocalWorkspaceOptions,
  type OutputMap,
} from "@pulumi/pulumi/automation/index.js";
import type { DesiredState } from "../program/desired.js";
import { COMPONENT_TYPE, stackOutputsOf, VirtualMCPServer, type StackOutputs } from "../program/resources.js";
import { engineHome, sharedHome } from "./home.js";
import { pulumiEnv } from "./offline.js";
import { providerBinary, providerPool, type ProviderPool } from "./provider.js";
import { createStackFile, lockedStacksIn, PLAN, stackFileExists, stackName } from "./basics.js";
import { ENGINE_ID_VAR, killStackProcesses, OWNER_VAR, reapOrphans, selfMark, STACK_VAR } from "./orphans.js";

export { lockedStacksIn, planOf, stackName } from "./basics.js";

export const PROJECT = "vmcp-operator";

export interface StackKey {
  namespace: string;
  name: string;
}

export interface ResourceChange {
  urn: string;
  type: string;
  name: string;
  op: string;
  /** Top-level input paths that differ, e.g. "data", "spec.template". */
  fields: string[];
  /** The resource's inputs before and after (Pulumi secrets arrive masked). */
  before?: Record<string, unknown>;
  after?: Record<string, unknown>;
}

export interface PreviewResult {
  summary: Record<string, number>;
  changes: ResourceChange[];
}

export interface UpResult extends PreviewResult {
  /** `changes` are the up's own steps (its engine events): the same plan a preview shows. */
  outputs: StackOutputs;
  durationMs: number;
}

/** How the first apply of a stack treats objects that exist before it (adoption). */
export interface ApplyOptions {
  /**
   * Objects of the stack's names exist and adoptionStep let the stack take them over:
   * server-side apply with force of the fields the stack declares (program/resources.ts).
   */
  force?: boolean;
  /** The HMAC Secret exists and is taken over with its bytes (program/resources.ts). */
  adoptHmacSecret?: boolean;
  /** The field manager of the objects' server-side apply (controller/handover.ts). */
  fieldManager?: string;
}

export interface Engine {
  /** A separate preview (its own CLI process): only where a plan must be seen before the up. */
  preview(desired: DesiredState): Promise<PreviewResult>;
  /** One CLI process; the result carries the plan from the up's own events. */
  up(desired: DesiredState, opts?: ApplyOptions): Promise<UpResult>;
  /** refresh, then up: restores objects edited or deleted by hand. */
  repair(desired: DesiredState, opts?: ApplyOptions): Promise<UpResult>;
  /** Destroys the stack's objects, then removes the stack and its history. */
  destroy(key: StackKey): Promise<void>;
  /**
   * Clears a stale lock left by a killed process; only the holder of the stack's Lease may
   * call this, and only where the lock's holder (see setHolder) no longer holds its own.
   */
  unlock(key: StackKey): Promise<void>;
  /**
   * Fencing: SIGKILLs every Pulumi process this engine runs for these stacks (CLI and
   * plugins), synchronously, and starts none for them until unfence(); their operations
   * fail and their locks stay (stale, for the next holder to break). Returns the processes killed.
   */
  fence(stacks: ReadonlySet<string>): { pid: number; argv: string[] }[];
  /** Lets Pulumi processes start again for these stacks (their Lease taken again). */
  unfence(stacks: ReadonlySet<string>): void;
  /**
   * Called (and awaited) before each operation that takes the stack's lock, so the caller can
   * record who holds it (controller/holders.ts); a rejection fails the operation before any
   * Pulumi process starts. The function it resolves to is called when the operation ends.
   */
  setHolder(record: HolderHook): void;
  /**
   * Names (`<namespace>.<name>`) of the stacks that hold a lock, from one listing of the
   * backend, without a CLI process; undefined when the backend cannot be listed (not a
   * file backend): then every stack may be locked.
   */
  lockedStacks(): Promise<Set<string> | undefined>;
  /** Whether state exists for the stack. */
  exists(key: StackKey): Promise<boolean>;
  /** Pulumi CLI processes started so far. */
  readonly processesStarted: number;
  /** Pids of the long-lived provider processes (`provider: "shared"`), else none. */
  providerPids(): number[];
  /** Removes the workspaces' scratch directories. */
  close(): Promise<void>;
}

export interface EngineOptions {
  /** Directory of the DIY backend (`file://`); ignored when backendUrl is set. */
  stateDir?: string;
  /** Any Pulumi backend URL (s3://, gs://, azblob://, postgres://, file://). */
  backendUrl?: string;
  passphrase: string;
  /** Path of a kubeconfig for the provider; unset = in-cluster / ambient. */
  kubeconfig?: string;
  /** Directory holding bin/pulumi; default $VMCP_PULUMI_ROOT, else `pulumi` on PATH. */
  pulumiRoot?: string;
  pulumiHome?: string;
  /**
   * Keep the Pulumi CLI's automatic debug log of every command (in pulumiHome/logs). Off by
   * default: the CLI then runs with a PULUMI_HOME of this engine's own that shares
   * pulumiHome's plugins (engine/home.ts).
   */
  cliLogs?: boolean;
  /**
   * "per-operation" (default): every CLI process starts its own Kubernetes provider.
   * "shared": CLI processes attach to long-lived provider processes, one per concurrent
   * operation (engine/provider.ts).
   */
  provider?: "per-operation" | "shared";
  /** Scratch directory for workspaces; default a fresh one under the OS temp dir. */
  workDir?: string;
  /** Wait for Deployments/Services to become ready during up (default false). */
  awaitReadiness?: boolean;
  /** Updates kept in a file backend's history per stack (default 10); older ones are deleted. */
  historyKeep?: number;
  /** Told which Pulumi processes of a killed engine createEngine stopped (see orphans.ts). */
  onOrphansStopped?: (stopped: { pid: number; argv: string[] }[]) => void;
}

export type HolderHook = (key: StackKey, op: string) => Promise<(() => void) | undefined>;

/**
 * A file backend keeps every update forever (`<stack>-<time>.history.json` plus a full
 * `.checkpoint.json` copy): keep the newest `keep` updates of one stack, delete the rest.
 */
export async function pruneHistory(stateDir: string, stack: string, keep: number): Promise<number> {
  const dir = join(stateDir, ".pulumi", "history", PROJECT, stack);
  const files = await readdir(dir).catch(() => [] as string[]);
  // Each file may have a `.attrs` sidecar (the blob store's metadata).
  const stamp = (f: string) =>
    /-(\d+)\.(?:history|checkpoint)\.json(?:\.gz|\.zst)?(?:\.attrs)?$/.exec(f)?.[1];
  const times = [...new Set(files.map(stamp).filter((t): t is string => t !== undefined))].sort((a, b) =>
    BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0,
  );
  const old = new Set(times.slice(keep));
  const doomed = files.filter((f) => old.has(stamp(f) ?? ""));
  await Promise.all(doomed.map((f) => rm(join(dir, f), { force: true })));
  return doomed.length;
}

function keyOf(desired: DesiredState): StackKey {
  return { namespace: desired.namespace, name: desired.name };
}

/** Parses a resource URN's last segment (the logical name). */
function urnName(urn: string): string {
  return urn.split("::").pop() ?? urn;
}

/** Top-level keys whose values differ between two input maps. */
function changedKeys(before: Record<string, unknown> = {}, after: Record<string, unknown> = {}): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
    (key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
  );
}

function changeOf(event: EngineEvent): ResourceChange | undefined {
  const m = event.resourcePreEvent?.metadata;
  // The stack and the component are Pulumi's grouping, not objects in the cluster.
  if (!m || m.op === "same" || m.type === "pulumi:pulumi:Stack" || m.type === COMPONENT_TYPE)
    return undefined;
  // The Kubernetes provider reports neither `diffs` nor `keys` for an update (SSA mode);
  // then the detailed diff, else the inputs themselves, say which top-level fields differ.
  const paths = m.diffs?.length
    ? m.diffs
    : m.detailedDiff && Object.keys(m.detailedDiff).length
      ? Object.keys(m.detailedDiff)
      : m.op === "update" || m.op === "replace"
        ? changedKeys(m.old?.inputs, m.new?.inputs)
        : (m.keys ?? []);
  const fields = [...new Set(paths.map((d) => d.split(/[.[]/)[0] ?? d))].sort();
  return {
    urn: m.urn,
    type: m.type,
    name: urnName(m.urn),
    op: m.op,
    fields,
    before: m.old?.inputs,
    after: m.new?.inputs,
  };
}

export async function createEngine(opts: EngineOptions): Promise<Engine> {
  // Before this engine starts anything: stop what a killed one left running.
  const stopped = await reapOrphans();
  if (stopped.length) opts.onOrphansStopped?.(stopped.map(({ pid, argv }) => ({ pid, argv })));
  const root = opts.pulumiRoot ?? process.env.VMCP_PULUMI_ROOT;
  const cli = await PulumiCommand.get(root ? { root } : {});
  let processes = 0;
  const mark = selfMark();
  const engineId = randomUUID();
  /** Stacks whose Lease this replica lost: no process starts for them (see fence). */
  const fenced = new Set<string>();
  let holderHook: HolderHook | undefined;
  // Every CLI process the Automation API starts on our behalf: counted, and marked as ours.
  type Run = (
    args: string[],
    cwd: string,
    env: Record<string, string>,
    ...rest: unknown[]
  ) => Promise<unknown>;
  const counted = Object.create(cli) as PulumiCommand & { run: Run };
  const run = (cli as unknown as { run: Run }).run.bind(cli);
  let pool: ProviderPool | undefined;
  // Each stack's workspace directory is named after the stack: the stack a process works on.
  counted.run = async (args, cwd, env, ...rest) => {
    const stack = basename(cwd);
    if (fenced.has(stack)) throw new Error(`stack ${stack}: fenced (its Lease was lost)`);
    processes++;
    const tags = { [ENGINE_ID_VAR]: engineId, [STACK_VAR]: stack };
    const marked = { ...env, ...tags, ...(mark ? { [OWNER_VAR]: mark } : {}) };
    // Only the commands that run the program reach the provider.
    if (!pool || !["up", "preview", "refresh", "destroy"].includes(args[0] ?? ""))
      return run(args, cwd, marked, ...rest);
    const lease = await pool.lease();
    try {
      return await run(args, cwd, { ...marked, PULUMI_DEBUG_PROVIDERS: lease.debugProviders }, ...rest);
    } finally {
      lease.release();
    }
  };

  // Not a predictable /tmp path: mkdtemp makes it fresh and 0700 (workspaces hold the
  // kubeconfig path and the stack settings).
  const workRoot = opts.workDir ?? (await mkdtemp(join(tmpdir(), "vmcp-operator-")));
  const backend = opts.backendUrl ?? `file://${opts.stateDir ?? join(workRoot, "state")}`;
  const stateDir = backend.startsWith("file://") ? backend.slice("file://".length) : undefined;
  if (backend.startsWith("file://")) await mkdir(backend.slice("file://".length), { recursive: true });
  const env = pulumiEnv({
    passphrase: opts.passphrase,
    pulumiHome: opts.cliLogs
      ? opts.pulumiHome
      : await engineHome(join(workRoot, "pulumi-home"), sharedHome(opts.pulumiHome)),
    kubeconfig: opts.kubeconfig,
  });
  if (opts.provider === "shared")
    pool = providerPool({
      binary: providerBinary(sharedHome(opts.pulumiHome)),
      env: {
        ...(opts.kubeconfig ? { KUBECONFIG: opts.kubeconfig } : {}),
        ...(mark ? { [OWNER_VAR]: mark } : {}),
      },
    });
  const stacks = new Map<string, Stack>();
  /** Stacks found with a stale lock by unlock(): their next up refreshes first. */
  const interrupted = new Set<string>();

  async function stackFor(key: StackKey, create: boolean): Promise<Stack | undefined> {
    const name = stackName(key);
    const cached = stacks.get(name);
    if (cached) return cached;
    const workDir = join(workRoot, "workspaces", name);
    await mkdir(workDir, { recursive: true });
    const settings = {
      pulumiCommand: counted,
      workDir,
      envVars: env,
      projectSettings: { name: PROJECT, runtime: "nodejs" as const, backend: { url: backend } },
      secretsProvider: "passphrase",
    };
    // Replaced before every operation that runs it (see withProgram).
    const program = async (): Promise<StackOutputs> => {
      throw new Error(`stack ${name}: no desired state given to this operation`);
    };
    let stack: Stack;
    const args = { stackName: name, projectName: PROJECT, program };
    if (stateDir) {
      // A file backend: a stack is a file, so neither `stack select` (every command names its
      // stack) nor, once the CLI has laid the backend out, `stack init` needs a CLI process.
      const exists = await stackFileExists(stateDir, PROJECT, name);
      if (!exists && !create) return undefined;
      if (exists || (await createStackFile(stateDir, PROJECT, name)))
        stack = await unselected(args, settings);
      else
        stack = await LocalWorkspace.createStack(args, settings).catch((err: unknown) => {
          if (err instanceof StackAlreadyExistsError) return LocalWorkspace.selectStack(args, settings);
          throw err;
        });
    } else if (create) {
      stack = await LocalWorkspace.createOrSelectStack(args, settings);
    } else {
      try {
        stack = await LocalWorkspace.selectStack(args, settings);
      } catch (err) {
        if (err instanceof Error && /no stack named/i.test(err.message)) return undefined;
        throw err;
      }
    }
    stacks.set(name, stack);
    return stack;
  }

  /** The Stack of one that exists, without the `stack select` process Stack.select would run. */
  async function unselected(args: InlineProgramArgs, settings: LocalWorkspaceOptions): Promise<Stack> {
    const workspace = await LocalWorkspace.create({ ...settings, program: args.program });
    workspace.selectStack = async () => undefined;
    return Stack.select(args.stackName, workspace);
  }

  /** Runs one operation on a stack with its holder recorded first (see setHolder). */
  async function operate<T>(key: StackKey, op: string, run: () => Promise<T>): Promise<T> {
    const done = await holderHook?.(key, op);
    try {
      return await run();
    } finally {
      done?.();
    }
  }

  /** The stack of `desired`, with its inline program declaring exactly `desired`. */
  async function withProgram(desired: DesiredState, apply: ApplyOptions = {}): Promise<Stack> {
    const stack = (await stackFor(keyOf(desired), true)) as Stack;
    (stack.workspace as LocalWorkspace).program = async () =>
      new VirtualMCPServer(desired.name, {
        desired,
        // The inline program runs in this process, and the provider SDK defaults its
        // kubeconfig input to this process's $KUBECONFIG: name the engine's cluster.
        ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
        awaitReadiness: opts.awaitReadiness,
        forceApply: apply.force ?? false,
        adoptHmacSecret: apply.adoptHmacSecret ?? false,
        ...(apply.fieldManager ? { fieldManager: apply.fieldManager } : {}),
      }).stackOutputs;
    return stack;
  }

  // Callers (the controller's queue) run at most one operation per stack at a time;
  // operations on different stacks may run concurrently.
  async function up(desired: DesiredState, refreshFirst: boolean, apply?: ApplyOptions): Promise<UpResult> {
    const started = Date.now();
    const stack = await withProgram(desired, apply);
    const name = stackName(keyOf(desired));
    if (refreshFirst || interrupted.has(name)) await stack.refresh({ clearPendingCreates: true });
    interrupted.delete(name);
    // Stack.up() follows the update with three more CLI processes (`stack output` twice,
    // `stack history`) only to build its result. Our outputs are a pure function of the
    // desired state and the summary arrives on the event stream: answer those from here.
    let summary: Record<string, number> = {};
    const quick = stack as unknown as { outputs: () => Promise<OutputMap>; info: () => Promise<undefined> };
    quick.outputs = async () =>
      Object.fromEntries(
        Object.entries(stackOutputsOf(desired)).map(([k, value]) => [k, { value, secret: false }]),
      );
    quick.info = async () => undefined;
    // The up's resourcePreEvents are the steps a preview would have shown (op, diffs, old
    // and new inputs, secrets masked by the CLI): the plan without a second process.
    const changes: ResourceChange[] = [];
    try {
      await stack.up({
        onEvent: (e) => {
          const change = changeOf(e);
          if (change) changes.push(change);
          if (e.summaryEvent) summary = { ...e.summaryEvent.resourceChanges } as Record<string, number>;
        },
      });
    } catch (err) {
      if (err instanceof Error) Object.defineProperty(err, PLAN, { value: { summary, changes } });
      throw err;
    }
    if (stateDir) await pruneHistory(stateDir, stackName(keyOf(desired)), opts.historyKeep ?? 10);
    return { summary, changes, outputs: stackOutputsOf(desired), durationMs: Date.now() - started };
  }

  return {
    get processesStarted() {
      return processes;
    },
    providerPids: () => pool?.pids() ?? [],
    preview: (desired) =>
      operate(keyOf(desired), "preview", async () => {
        const stack = await withProgram(desired);
        const changes: ResourceChange[] = [];
        const result = await stack.preview({
          onEvent: (e) => {
            const c = changeOf(e);
            if (c) changes.push(c);
          },
        });
        return { summary: result.changeSummary as Record<string, number>, changes };
      }),
    up: (desired, apply) => operate(keyOf(desired), "up", () => up(desired, false, apply)),
    repair: (desired, apply) => operate(keyOf(desired), "repair", () => up(desired, true, apply)),
    destroy: async (key) => {
      const stack = await stackFor(key, false);
      if (!stack) return;
      await operate(key, "destroy", async () => {
        await stack.destroy();
        // Not workspace.removeStack(): without --remove-backups the CLI keeps a copy of the last
        // checkpoint (<stack>.json.bak) in the backend forever, for a stack that is gone.
        await counted.run(
          ["stack", "rm", "--yes", "--remove-backups", stackName(key)],
          (stack.workspace as LocalWorkspace).workDir,
          env,
        );
      });
      stacks.delete(stackName(key));
    },
    unlock: async (key) => {
      const stack = await stackFor(key, false);
      if (!stack) return;
      const name = stackName(key);
      const locked = !stateDir || (await lockedStacksIn(stateDir)).has(name);
      // A lock left behind means an operation was killed mid-way: its checkpoint may hold
      // pending creates, which only a refresh clears. The next up of that stack refreshes first.
      // Other backends' locks cannot be listed from here (nor does `pulumi cancel` say whether
      // there was one): any stack unlocked there is taken as interrupted.
      if (locked) interrupted.add(name);
      await stack.cancel();
    },
    fence: (names) => {
      for (const n of names) fenced.add(n);
      const killed = killStackProcesses(engineId, names);
      return killed.map(({ pid, argv }) => ({ pid, argv }));
    },
    unfence: (names) => {
      for (const n of names) fenced.delete(n);
    },
    setHolder: (hook) => {
      holderHook = hook;
    },
    lockedStacks: async () => (stateDir ? lockedStacksIn(stateDir) : undefined),
    exists: async (key) => (await stackFor(key, false)) !== undefined,
    close: async () => {
      stacks.clear();
      await pool?.close();
      if (!opts.workDir) await rm(workRoot, { recursive: true, force: true });
    },
  };
}
