// The controller as a child process (`vmcpctl controller`, dist/cli/main.js), in its own
// process group, so a test can kill it the way a node or the kubelet kills a pod: SIGKILL
// to the controller AND everything it started (Pulumi CLI, provider plugins) at once.
// Also: which processes of that group are alive, and whether one of them is `pulumi up`; and
// which Pulumi processes it started are still running anywhere (the CLI starts provider
// plugins in process groups of their own, which the group kill does not reach).
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** dist/cli/main.js, found from this file (dist/test/support/controllerproc.js). */
function cliPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above controllerproc");
    dir = parent;
  }
  return join(dir, "dist", "cli", "main.js");
}

export interface ProcInfo {
  pid: number;
  pgid: number;
  argv: string[];
}

/** Every live process (Linux /proc), with its process group and command line. */
export function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue; // a zombie is dead, only not yet reaped
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(entry), pgid: Number(fields[2]), argv });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Tags every process a ControllerProc starts, down to the Pulumi plugins (they inherit it). */
export const TAG_VAR = "VMCP_TEST_CONTROLLER";

export interface PulumiProc {
  pid: number;
  /** /proc/<pid>/stat start time: with pid, one process. */
  start: string;
  argv: string[];
  /** TAG_VAR in its environment: the ControllerProc that started it (if readable and set). */
  tag?: string;
}

/** `pulumi`, `pulumi-resource-*`, `pulumi-language-*`, … by the executable's name. */
const isPulumiBinary = (argv0: string): boolean => /^pulumi(-[a-z]+-.+)?$/.test(argv0.split("/").pop() ?? "");

/** Every live Pulumi process on the machine (Linux /proc). */
export function pulumiProcesses(): PulumiProc[] {
  const out: PulumiProc[] = [];
  for (const p of processes()) {
    if (!isPulumiBinary(p.argv[0] ?? "")) continue;
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
      const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
      let tag: string | undefined;
      try {
        const env = readFileSync(`/proc/${p.pid}/environ`, "utf8").split("\0");
        tag = env.find((e) => e.startsWith(`${TAG_VAR}=`))?.slice(TAG_VAR.length + 1);
      } catch {
        // another user's process
      }
      out.push({ pid: p.pid, start, argv: p.argv, tag });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export const describeProcs = (ps: { pid: number; argv: string[] }[]): string =>
  ps.map((p) => `${p.pid} ${p.argv.join(" ")}`).join("; ");

export const isPulumiUp = (p: ProcInfo): boolean =>
  /(^|\/)pulumi$/.test(p.argv[0] ?? "") && p.argv.includes("up");

/** `vmcpctl controller` flags of one sharded replica, as the shard and fencing tests run them. */
export const shardedReplicaArgs = (o: {
  shards: number;
  leaseNamespace: string;
  leaseMs: number;
  metricsPort: number;
}) => [
  "--shards",
  String(o.shards),
  "--lease-namespace",
  o.leaseNamespace,
  "--lease-duration",
  `${o.leaseMs / 1000}s`,
  "--metrics-addr",
  `127.0.0.1:${o.metricsPort}`,
  "--resync",
  "1h",
];

export interface ControllerProcOptions {
  kubeconfig: string;
  namespace: string;
  /** The file backend's directory; without it, the backend comes from env (PULUMI_BACKEND_URL). */
  stateDir?: string;
  passphrase?: string;
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Extra CLI flags (e.g. ["--leader-elect"]). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Every output line (JSON logs), for the test to keep or print. */
  onLine?: (line: string) => void;
}

export class ControllerProc {
  readonly child: ChildProcess;
  readonly pid: number;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly lines: string[] = [];
  /** The value of TAG_VAR this controller and everything it starts run with. */
  readonly tag = randomUUID();

  constructor(opts: ControllerProcOptions) {
    const args = [
      cliPath(),
      "controller",
      "--kubeconfig",
      opts.kubeconfig,
      "--namespace",
      opts.namespace,
      ...(opts.stateDir ? ["--state-dir", opts.stateDir] : []),
      "--no-health-checks",
      "--metrics-addr",
      "",
      "--shutdown-timeout",
      "30s",
      "--log-level",
      opts.logLevel ?? "info",
      ...(opts.args ?? []),
    ];
    this.child = spawn(process.execPath, args, {
      detached: true, // its own process group: killed as a whole, like a container
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PULUMI_CONFIG_PASSPHRASE: opts.passphrase ?? "test",
        ...opts.env,
        [TAG_VAR]: this.tag,
      },
    });
    if (this.child.pid === undefined) throw new Error("controller process did not start");
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let buf = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          this.lines.push(line);
          if (this.lines.length > 5000) this.lines.shift();
          opts.onLine?.(line);
        }
      });
    }
  }

  /** Live processes of the controller's group (itself and what it started). */
  group(): ProcInfo[] {
    return processes().filter((p) => p.pgid === this.pid);
  }

  /** Live Pulumi processes this controller started, wherever they run now (e.g. orphaned to init). */
  pulumiLeft(): PulumiProc[] {
    return pulumiProcesses().filter((p) => p.tag === this.tag);
  }

  /**
   * kill(), then SIGKILL to the Pulumi processes it left, as the next controller start
   * would: for a test's teardown, where no controller follows.
   */
  async killAndSweep(): Promise<void> {
    await this.kill();
    for (const p of this.pulumiLeft()) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }

  /** Resolves with the first `pulumi up` of the group, polling every `intervalMs`. */
  async waitForPulumiUp(timeoutMs: number, intervalMs = 20): Promise<ProcInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const up = this.group().find(isPulumiUp);
      if (up) return up;
      if (Date.now() > deadline) throw new Error(`no pulumi up started within ${timeoutMs} ms`);
      if (this.child.exitCode !== null) throw new Error(`controller exited (${this.child.exitCode})`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** SIGKILL to the whole group; resolves once no process of the group is left. */
  async kill(timeoutMs = 10_000): Promise<void> {
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await this.exited;
    const deadline = Date.now() + timeoutMs;
    while (this.group().length > 0) {
      if (Date.now() > deadline)
        throw new Error(
          `processes survived SIGKILL of group ${this.pid}: ${this.group()
            .map((p) => `${p.pid} ${p.argv.join(" ")}`)
            .join("; ")}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGTERM (graceful shutdown); resolves with the exit status. */
  async terminate(timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    // A process still loading its modules has no SIGTERM handler yet (Node's default kills it):
    // the graceful path starts once the controller says it is working.
    const ready = Date.now() + 30_000;
    while (
      !this.lines.some((l) => l.includes('"msg":"controller working"')) &&
      this.child.exitCode === null
    ) {
      if (Date.now() > ready) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => void this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  get exitCode(): number | null {
    return this.child.exitCode;
  }
}
