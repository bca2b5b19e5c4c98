// CPU and memory of a process and everything below it (Linux /proc), for comparing two
// operators that run as child processes: the process tree is what a pod would be charged.
import { readdirSync, readFileSync } from "node:fs";

interface Stat {
  ppid: number;
  /** utime + stime, seconds */
  own: number;
  /** cutime + cstime: descendants already reaped, seconds */
  reaped: number;
}

const TICK = 100; // USER_HZ on Linux

function readStat(pid: number): Stat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after "pid (comm) ": state ppid … utime(14) stime cutime cstime, shifted by 3
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    return { ppid: f[1]!, own: (f[11]! + f[12]!) / TICK, reaped: (f[13]! + f[14]!) / TICK };
  } catch {
    return undefined;
  }
}

/** Live pids of `root` and its descendants (by parent pid, so detached children count). */
export function treePids(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync("/proc"))
    if (/^\d+$/.test(d)) {
      const s = readStat(Number(d));
      if (s) parent.set(Number(d), s.ppid);
    }
  const pids = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent)
      if (pids.has(ppid) && !pids.has(pid)) {
        pids.add(pid);
        grew = true;
      }
  }
  return [...pids];
}

/**
 * CPU seconds of the tree: every live process's own time plus what each has reaped. A
 * process that ends between two reads moves from "own" into its parent's "reaped", so the
 * difference of two reads is the CPU spent between them.
 */
export function treeCpuS(root: number): { tree: number; root: number } {
  let tree = 0;
  let self = 0;
  for (const pid of treePids(root)) {
    const s = readStat(pid);
    if (!s) continue;
    tree += s.own + s.reaped;
    if (pid === root) self = s.own;
  }
  return { tree, root: self };
}

/** utime + stime of one process, seconds (0 when gone). */
export const ownCpuS = (pid: number): number => readStat(pid)?.own ?? 0;

/** VmRSS of one process in bytes (0 when gone). */
export function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export const treeRss = (root: number): number => treePids(root).reduce((s, p) => s + rssOf(p), 0);

/** Samples the tree's RSS every `everyMs` and keeps the peak. */
export function rssPeak(root: number, everyMs = 100): { peak(): number; stop(): void } {
  let peak = treeRss(root);
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(root))), everyMs);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}
