// Child-process supervision. Every component runs in its own process group (detached ⇒
// setsid), so a terminal's Ctrl-C never reaches it directly and one kill(-pgid) takes the
// component and anything it forked. Three independent nets make sure nothing outlives us:
//   1. stop(): SIGTERM each group, SIGKILL after a grace period;
//   2. process 'exit' and SIGINT/SIGTERM/SIGHUP hooks: synchronous SIGKILL of every group;
//   3. a detached `sh` watchdog that SIGKILLs the recorded groups when our pid disappears
//      (covers `kill -9` of the parent, where no JS hook can run).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface ProcessSpec {
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningProcess {
  readonly name: string;
  readonly pid: number;
  readonly command: string;
  readonly logFile: string;
  /** Resolves when the process has exited and been reaped. */
  readonly exited: Promise<ExitInfo>;
  /** Set once the process has exited. */
  exit: ExitInfo | undefined;
}

/** A pid recorded for later teardown (state file, watchdog). */
export interface RecordedProcess {
  name: string;
  pid: number;
  command: string;
}

const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
/** Anything that can kill what it started without awaiting (a Supervisor, the process kubelet). */
export interface EmergencyStop {
  killSync(): void;
}
const live = new Set<EmergencyStop>();

/** Registers `s` with the exit/signal hooks; returns the function that unregisters it. */
export function onEmergency(s: EmergencyStop): () => void {
  installHooks();
  live.add(s);
  return () => live.delete(s);
}
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const s of live) s.killSync();
  });
  for (const signal of SIGNALS) {
    const handler = (): void => {
      // Someone else (the CLI, mocha) owns this signal and will exit; the 'exit' hook
      // and the watchdog still clean up after it.
      if (process.listenerCount(signal) > 1) return;
      for (const s of live) s.killSync();
      process.removeListener(signal, handler);
      process.kill(process.pid, signal); // die the default way, with the right status
    };
    process.on(signal, handler);
  }
}

/** True if `pid` exists and is not a zombie (a zombie answers kill(pid, 0) but is dead). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 3 (state) follows the parenthesised command name, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** True if `pid` is alive and still runs `command` (guards against pid reuse). */
export function runsCommand(pid: number, command: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
    return argv0 === command;
  } catch {
    return false;
  }
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

async function waitUntilDead(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/**
 * Terminates process groups that may not be our children (e.g. from a state file):
 * SIGTERM, then SIGKILL for whatever is left after `graceMs`. Pids that no longer run
 * the recorded command are skipped. Returns the names of processes that were signalled.
 */
export async function terminateGroups(procs: readonly RecordedProcess[], graceMs = 5000): Promise<string[]> {
  const targets = procs.filter((p) => runsCommand(p.pid, p.command));
  for (const p of targets) signalGroup(p.pid, "SIGTERM");
  const stubborn = await waitUntilDead(
    targets.map((p) => p.pid),
    graceMs,
  );
  for (const pid of stubborn) signalGroup(pid, "SIGKILL");
  await waitUntilDead(stubborn, 2000);
  return targets.map((p) => p.name);
}

/** Last `lines` lines of a log file, for error messages when a component dies. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

const WATCHDOG = `
parent=$1 pids=$2 dir=$3 links=$4
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
if [ -f "$pids" ]; then while read -r pid; do kill -s KILL -- "-$pid" 2>/dev/null; done < "$pids"; fi
if [ -n "$links" ]; then
  for l in $(ip -o link show | sed -n 's/^[0-9]*: \\([^:@]*\\).*/\\1/p' | grep -E "^($links)"); do ip link del "$l" 2>/dev/null; done
fi
if [ -n "$dir" ]; then rm -rf -- "$dir"; fi
`;

/**
 * A detached `sh` that waits for this process to disappear (even by SIGKILL), then SIGKILLs
 * the process groups listed in `pidFile`, deletes the network links whose names match the
 * extended regex `links` (anchored at the start) and removes `dir`.
 */
export function spawnWatchdog(pidFile: string, opts: { dir?: string; links?: string } = {}): ChildProcess {
  const dog = spawn(
    "sh",
    ["-c", WATCHDOG, "vmcp-watchdog", String(process.pid), pidFile, opts.dir ?? "", opts.links ?? ""],
    { detached: true, stdio: "ignore" },
  );
  dog.unref();
  return dog;
}

export interface SupervisorOptions {
  /** Where each component's combined stdout/stderr goes (`<logDir>/<name>.log`). */
  logDir: string;
  /** File listing one pid per line, read by the watchdog. */
  pidFile: string;
  /** Directory the watchdog removes after killing the groups (only if we own all of it). */
  removeOnOrphan?: string;
  /** Synchronous extra cleanup run by the exit/signal hooks after the kill. */
  onEmergency?: () => void;
}

export class Supervisor {
  private readonly procs: RunningProcess[] = [];
  private readonly children = new Map<number, ChildProcess>();
  private watchdog: ChildProcess | undefined;

  private readonly unregister: () => void;

  constructor(private readonly options: SupervisorOptions) {
    this.unregister = onEmergency(this);
  }

  get processes(): readonly RunningProcess[] {
    return this.procs;
  }

  start(spec: ProcessSpec): RunningProcess {
    this.ensureWatchdog();
    const logFile = join(this.options.logDir, `${spec.name}.log`);
    const fd = openSync(logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(spec.command, [...spec.args], {
        detached: true,
        stdio: ["ignore", fd, fd],
        env: spec.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    // Don't let a forgotten stop() keep Node alive; the exit hook then kills the group.
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`failed to start ${spec.name} (${spec.command})`);
    const proc: RunningProcess = {
      name: spec.name,
      pid,
      command: spec.command,
      logFile,
      exit: undefined,
      exited: new Promise<ExitInfo>((resolve) => {
        child.once("exit", (code, signal) => {
          proc.exit = { code, signal };
          resolve(proc.exit);
        });
      }),
    };
    this.procs.push(proc);
    this.children.set(pid, child);
    this.writePidFile();
    return proc;
  }

  /**
   * Stops the processes in reverse start order, in tiers: everything started after the
   * second process (clients of the apiserver) at once, then the second (apiserver), then
   * the first (etcd) — a server whose backend vanished first shuts down slowly. Each tier
   * gets SIGTERM, then SIGKILL after `graceMs`.
   */
  async stop(graceMs = 5000): Promise<void> {
    const tiers = [this.procs.slice(2), this.procs.slice(1, 2), this.procs.slice(0, 1)];
    for (const tier of tiers) await this.terminate(tier, graceMs);
    // Kill the groups again: catches grandchildren that survived their leader.
    for (const p of this.procs) signalGroup(p.pid, "SIGKILL");
    this.stopWatchdog();
    this.unregister();
  }

  private async terminate(procs: readonly RunningProcess[], graceMs: number): Promise<void> {
    const running = procs.filter((p) => p.exit === undefined);
    if (running.length === 0) return;
    // Children are unref'd; while we wait for their exit the loop must stay alive.
    for (const p of running) this.children.get(p.pid)?.ref();
    for (const p of running) signalGroup(p.pid, "SIGTERM");
    const timer = setTimeout(() => {
      for (const p of running) if (p.exit === undefined) signalGroup(p.pid, "SIGKILL");
    }, graceMs);
    try {
      await Promise.all(running.map((p) => p.exited));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Emergency path for exit/signal hooks: no awaiting possible. */
  killSync(): void {
    for (const p of this.procs) signalGroup(p.pid, "SIGKILL");
    this.stopWatchdog();
    this.unregister();
    this.options.onEmergency?.();
  }

  private writePidFile(): void {
    writeFileSync(this.options.pidFile, this.procs.map((p) => `${p.pid}\n`).join(""));
  }

  private ensureWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = spawnWatchdog(this.options.pidFile, {
      ...(this.options.removeOnOrphan !== undefined ? { dir: this.options.removeOnOrphan } : {}),
    });
  }

  private stopWatchdog(): void {
    if (this.watchdog?.pid !== undefined) signalGroup(this.watchdog.pid, "SIGKILL");
    this.watchdog = undefined;
    try {
      rmSync(this.options.pidFile, { force: true });
    } catch {
      // the directory may already be gone
    }
  }
}
