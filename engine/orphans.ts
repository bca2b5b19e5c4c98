// Pulumi processes that outlive the engine that started them. The Pulumi CLI starts each
// plugin (provider, language host) in a process group of its own and stops them only when
// it exits normally: when the controller and its CLI are SIGKILLed (a crash, an OOM kill, a
// test), the plugins are re-parented to init and run forever.
//
// So every CLI process the engine starts carries an owner mark in its environment, which
// the CLI hands down to its plugins: the engine process's PID namespace, pid and start time.
// A marked process whose owner is no longer alive is an orphan of ours, and createEngine
// stops those before it starts anything. The mark names one process incarnation, so a
// reused pid, the processes of a live controller (another replica, a parallel test) and
// Pulumi processes we did not start (a person's `pulumi up`: no mark) are never touched.
//
// Why not a parent-death signal: Node cannot call prctl(PR_SET_PDEATHSIG), and `setpriv
// --pdeathsig` would cover only the CLI (the kernel clears it in the CLI's children, the
// plugins that leak). Why not a PID namespace (`unshare --pid --kill-child`): as non-root it
// needs unprivileged user namespaces, which container runtimes' default seccomp profiles
// and some distributions deny. An environment mark needs nothing but /proc.
//
// Linux only (/proc); elsewhere the mark is still set and the sweep finds nothing.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export const OWNER_VAR = "VMCP_OPERATOR_ENGINE";

export interface Proc {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22): with pid, one incarnation. */
  start: string;
  argv: string[];
  /** The value of OWNER_VAR in its environment, if any (readable only for our own uid). */
  owner?: string;
}

/** `<pid namespace>/<pid>/<start time>` of one process. */
export const ownerMark = (pidns: string, pid: number, start: string): string => `${pidns}/${pid}/${start}`;

/** State and start time from the text of /proc/<pid>/stat (comm may hold spaces and parentheses). */
export function parseStat(stat: string): { state: string; start: string } | undefined {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [state, start] = [fields[0], fields[19]]; // fields[0] is field 3 of proc(5)
  return state && start && /^\d+$/.test(start) ? { state, start } : undefined;
}

/** The value of `name` in the text of /proc/<pid>/environ. */
export function environValue(environ: string, name: string): string | undefined {
  const entry = environ.split("\0").find((e) => e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/**
 * The processes marked by an owner of our PID namespace that is not among `procs` (the
 * same pid with the same start time). Marks of another namespace (a container seen from
 * its host) name pids we cannot check: left alone.
 */
export function orphans(procs: Proc[], pidns: string): Proc[] {
  const alive = new Set(procs.map((p) => ownerMark(pidns, p.pid, p.start)));
  return procs.filter((p) => p.owner?.startsWith(`${pidns}/`) && !alive.has(p.owner));
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync("/proc/self/ns/pid"); // e.g. pid:[4026531836]
  } catch {
    return undefined;
  }
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
    if (!stat || stat.state === "Z") return undefined; // a zombie is dead, only not yet reaped
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    let owner: string | undefined;
    try {
      owner = environValue(readFileSync(`/proc/${pid}/environ`, "utf8"), OWNER_VAR);
    } catch {
      // another user's process: not ours
    }
    return { pid, start: stat.start, argv, owner };
  } catch {
    return undefined; // gone meanwhile
  }
}

function readProcs(): Proc[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e))
    .map((e) => readProc(Number(e)))
    .filter((p): p is Proc => p !== undefined);
}

/** The mark for processes this process starts; undefined without /proc. */
export function selfMark(): string | undefined {
  const pidns = pidNamespace();
  const self = pidns ? readProc(process.pid) : undefined;
  return pidns && self ? ownerMark(pidns, self.pid, self.start) : undefined;
}

const sameIncarnation = (p: Proc): boolean => readProc(p.pid)?.start === p.start;

/**
 * SIGKILLs every orphan of a dead engine (see above) and waits until they are gone.
 * Returns what it killed. Each victim is checked again right before its kill: its owner
 * must still be dead (scanning /proc is not atomic) and its pid must still be the same process.
 */
export async function reapOrphans(timeoutMs = 5_000): Promise<Proc[]> {
  const pidns = pidNamespace();
  if (!pidns) return [];
  const killed: Proc[] = [];
  for (const p of orphans(readProcs(), pidns)) {
    const [, ownerPid, ownerStart] = (p.owner ?? "").split("/");
    if (readProc(Number(ownerPid))?.start === ownerStart || !sameIncarnation(p)) continue;
    try {
      process.kill(p.pid, "SIGKILL");
      killed.push(p);
    } catch {
      // gone meanwhile
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (killed.some(sameIncarnation) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return killed;
}

/** Names the stack a CLI process (and, inherited, its plugins) works on. */
export const STACK_VAR = "VMCP_OPERATOR_STACK";
/** Names the engine instance that started it (several engines may share one process: tests). */
export const ENGINE_ID_VAR = "VMCP_OPERATOR_ENGINE_ID";

/**
 * Fencing: SIGKILLs, at once and without awaiting anything, every live process that engine
 * `engineId` started for one of `stacks` (the CLI and its plugins, wherever they were
 * re-parented). Synchronous on purpose: the caller lost the right to write these stacks and
 * nothing else may run before the kill.
 */
export function killStackProcesses(engineId: string, stacks: ReadonlySet<string>): Proc[] {
  const killed: Proc[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return killed;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${e}/environ`, "utf8");
    } catch {
      continue; // gone, or another user's
    }
    if (environValue(environ, ENGINE_ID_VAR) !== engineId) continue;
    const stack = environValue(environ, STACK_VAR);
    if (stack === undefined || !stacks.has(stack)) continue;
    const p = readProc(Number(e));
    if (!p) continue;
    try {
      process.kill(p.pid, "SIGKILL");
      killed.push(p);
    } catch {
      // gone meanwhile
    }
  }
  return killed;
}
