// A memory cgroup for one child process: the limit a container would have, its peak usage
// and its OOM kills, on cgroup v1 (memory controller) and v2 alike. Needs root (or a
// delegated cgroup). The cgroup is made under this process's own memory cgroup, so it stays
// inside whatever limits that one has; VMCP_CGROUP_PARENT names another parent directory.
//
//   node dist/bench/cgroup.js --limit 200M -- node -e "…"
//       runs the command in a fresh cgroup limited to 200 MiB, prints its peak and OOM kills.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { onEmergency } from "../localcluster/processes.js";

export type CgroupVersion = 1 | 2;

/** The files that differ between the two versions. */
const FILES = {
  1: {
    limit: "memory.limit_in_bytes",
    peak: "memory.max_usage_in_bytes",
    oom: "memory.oom_control",
  },
  2: { limit: "memory.max", peak: "memory.peak", oom: "memory.events" },
} as const;

export interface MemoryUsage {
  /** Highest usage the kernel charged to the cgroup (anonymous memory and page cache), bytes; undefined when the kernel does not keep it (v2 before Linux 5.19). */
  peakBytes: number | undefined;
  /** Processes the OOM killer killed in the cgroup (`oom_kill` of v1 memory.oom_control, v2 memory.events). */
  oomKills: number;
}

/** "200M", "2G", "2Gi", "512MiB", "1048576": bytes, binary units (as Docker and systemd read them). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B?)\s*$/i.exec(text);
  if (!m) throw new Error(`not a memory size: ${JSON.stringify(text)} (e.g. 512M, 2G)`);
  const power = " KMGT".indexOf((m[2] || " ").toUpperCase());
  return Math.floor(Number(m[1]) * 1024 ** power);
}

/** A `key value` line of a flat keyed file (memory.events, memory.oom_control); 0 when absent. */
export function keyed(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Where this process's memory cgroup is, from /proc/self/mounts and /proc/self/cgroup: the v1
 * memory hierarchy if one is mounted, else the v2 unified one. The directory is the mount
 * point joined with the process's path in that hierarchy (mounts inside a cgroup namespace
 * show "/" for it, which gives the mount point itself).
 */
export function ownMemoryCgroup(
  mounts: string,
  selfCgroup: string,
): { version: CgroupVersion; mount: string; dir: string }[] {
  const found: { version: CgroupVersion; mount: string; dir: string }[] = [];
  const paths = new Map<string, string>();
  for (const line of selfCgroup.split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) paths.set(m[1] as string, m[2] as string);
  }
  for (const line of mounts.split("\n")) {
    const [, mount, type, options] = line.split(" ");
    if (!mount || !options) continue;
    if (type === "cgroup" && options.split(",").includes("memory"))
      found.unshift({ version: 1, mount, dir: join(mount, paths.get("memory") ?? "/") });
    if (type === "cgroup2") found.push({ version: 2, mount, dir: join(mount, paths.get("") ?? "/") });
  }
  return found;
}

export interface MemoryCgroup {
  readonly version: CgroupVersion;
  readonly dir: string;
  readonly limitBytes: number;
  /**
   * Starts `command` inside the cgroup: a shell writes its own pid into cgroup.procs and
   * execs the command, so the returned child's pid is the command's and everything it
   * forks is charged from its first instruction on.
   */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  usage(): MemoryUsage;
  /** SIGKILLs whatever still runs in the cgroup and removes it. Idempotent; also runs on exit and on SIGINT/SIGTERM/SIGHUP. */
  remove(): void;
}

const read = (dir: string, file: string): string | undefined => {
  try {
    return readFileSync(join(dir, file), "utf8");
  } catch {
    return undefined;
  }
};

/** Sleeps synchronously (remove() runs from the exit hook too, where nothing can be awaited). */
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** The first hierarchy that has the memory controller (VMCP_CGROUP_PARENT: that directory of it). */
function parentHierarchy(): { version: CgroupVersion; dir: string } {
  const candidates = ownMemoryCgroup(
    readFileSync("/proc/self/mounts", "utf8"),
    readFileSync("/proc/self/cgroup", "utf8"),
  );
  const parent = process.env.VMCP_CGROUP_PARENT;
  for (const c of candidates) {
    if (parent && !`${parent}/`.startsWith(`${c.mount}/`)) continue;
    const dir = parent ?? c.dir;
    if (c.version === 1 && existsSync(join(dir, FILES[1].limit))) return { version: 1, dir };
    if (c.version === 2 && (read(dir, "cgroup.controllers") ?? "").split(/\s+/).includes("memory"))
      return { version: 2, dir };
  }
  throw new Error(
    `no usable memory cgroup controller (looked at ${candidates.map((c) => `v${c.version} ${c.dir}`).join(", ") || "no cgroup mount"}${parent ? `, VMCP_CGROUP_PARENT=${parent}` : ""})`,
  );
}

/** Makes a memory cgroup limited to `limitBytes` (no swap beyond it where the kernel allows setting that). */
export function createMemoryCgroup(
  limitBytes: number,
  name = `vmcp-bench-${randomBytes(4).toString("hex")}`,
): MemoryCgroup {
  const { version, dir: parent } = parentHierarchy();
  const files = FILES[version];
  if (version === 2) {
    // Children get the memory controller only when the parent hands it down; on v2 that
    // fails (EBUSY) in a cgroup that has processes of its own: then set VMCP_CGROUP_PARENT.
    if (!(read(parent, "cgroup.subtree_control") ?? "").split(/\s+/).includes("memory"))
      try {
        writeFileSync(join(parent, "cgroup.subtree_control"), "+memory");
      } catch (err) {
        throw new Error(
          `cannot enable the memory controller for children of ${parent} (${(err as Error).message}); set VMCP_CGROUP_PARENT to a cgroup without processes of its own`,
        );
      }
  }
  const dir = join(parent, name);
  mkdirSync(dir);
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    for (let i = 0; i < 100; i++) {
      const pids = (read(dir, "cgroup.procs") ?? "").split("\n").filter(Boolean).map(Number);
      for (const pid of pids)
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          /* gone already */
        }
      try {
        rmdirSync(dir);
        removed = true;
        unregister();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          removed = true;
          unregister();
          return;
        }
        sleepSync(50); // EBUSY: killed processes take a moment to leave
      }
    }
    console.error(`[cgroup] could not remove ${dir}: processes left in it`);
  };
  const unregister = onEmergency({ killSync: remove });
  try {
    writeFileSync(join(dir, files.limit), String(limitBytes));
    // No swap beyond the limit (as on a Kubernetes node): with swap accounting, cap
    // memory+swap too. (v1's memory.failcnt then stays 0, so limit hits are not reported.)
    if (version === 1 && existsSync(join(dir, "memory.memsw.limit_in_bytes")))
      writeFileSync(join(dir, "memory.memsw.limit_in_bytes"), String(limitBytes));
    if (version === 2 && existsSync(join(dir, "memory.swap.max")))
      writeFileSync(join(dir, "memory.swap.max"), "0");
  } catch (err) {
    remove();
    throw err;
  }
  const procs = join(dir, "cgroup.procs");
  return {
    version,
    dir,
    limitBytes,
    spawn: (command, args, options = {}) =>
      spawn("/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', procs, command, ...args], options),
    usage: () => {
      const peak = read(dir, files.peak);
      const oom = read(dir, files.oom) ?? "";
      return {
        peakBytes: peak === undefined ? undefined : Number(peak),
        oomKills: keyed(oom, "oom_kill"),
      };
    },
    remove,
  };
}

/** "312 MiB" (or "-" when unknown). */
export const formatMiB = (bytes: number | undefined): string =>
  bytes === undefined ? "-" : `${(bytes / 2 ** 20).toFixed(0)} MiB`;

// ---- node dist/bench/cgroup.js --limit SIZE -- COMMAND ARGS… --------------------------------

async function main(argv: string[]): Promise<number> {
  const sep = argv.indexOf("--");
  const li = argv.indexOf("--limit");
  if (sep < 0 || li < 0 || li > sep || !argv[sep + 1]) {
    console.error("usage: node dist/bench/cgroup.js --limit SIZE -- COMMAND [ARGS…]");
    return 2;
  }
  const cg = createMemoryCgroup(parseMemorySize(argv[li + 1] ?? ""));
  try {
    const child = cg.spawn(argv[sep + 1] as string, argv.slice(sep + 2), { stdio: "inherit" });
    const [code, signal] = (await new Promise((r) => child.once("exit", (c, s) => r([c, s])))) as [
      number | null,
      NodeJS.Signals | null,
    ];
    const u = cg.usage();
    console.error(
      `[cgroup] v${cg.version} ${cg.dir}: limit ${formatMiB(cg.limitBytes)}, peak ${formatMiB(u.peakBytes)}, OOM kills ${u.oomKills}; exit ${signal ?? code}`,
    );
    return code ?? 1;
  } finally {
    cg.remove();
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1])
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
