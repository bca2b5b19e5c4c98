// Scale benchmark (real local control plane, real Pulumi engine, the controller in a CHILD
// process so its memory is its own — `vmcpctl controller`, as deployed).
//
//   node dist/bench/scale.js --vmcps 100 --workers 1,2,4
//       For each worker count: a fresh namespace with one Ready MCPGroup of --members
//       MCPServerEntries, the controller started and ready, then N VirtualMCPServers
//       created at once; prints the time until the first / half / all are phase Ready,
//       the controller's peak RSS (VmHWM) and the peak RSS of its whole process tree
//       (controller + Pulumi CLI + language host + provider plugin), and the Pulumi
//       operation counts and mean durations from its /metrics.
//
//   node dist/bench/scale.js --cached 500
//       Controller memory with N VirtualMCPServers and their backends in its cache: N
//       groups of --members MCPServerEntries pointed at a few real loopback MCP servers
//       (probed: health checks on, --probe-interval), each VirtualMCPServer already
//       applied (its ConfigMap, Deployment and Service created from the builder's output and
//       status.appliedHash set), so the controller takes over without a Pulumi run. Prints
//       the time until all are Ready, RSS over a quiet minute and VmHWM.
//       --no-probe: entries at placeholder URLs and health checks off.
//
// Other flags: --timeout SECONDS (per run, default 1800), --keep (keep the plane's dir).
// Environment:
//   VMCP_SCALE_NODE_FLAGS   Node/V8 flags for the controller process (heap sizes, to measure
//                           them). With --cached, several sets separated by "|" (an empty set:
//                           no flags) run one after another, one table row each.
//   VMCP_SCALE_MEMORY_LIMIT e.g. 2G: every controller process (and the Pulumi processes it
//                           starts) runs in a memory cgroup of that size, as in a pod
//                           (bench/cgroup.ts; root); the tables add its peak and OOM kills.
//   VMCP_SCALE_KUBE_PROVIDER, VMCP_SCALE_HEAPSNAPSHOT, VMCP_SCALE_MEMLOG, VMCP_SCALE_LOG_LEVEL:
//                           see startControllerProcess.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, createWriteStream, statSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1ConfigMap,
  type V1Deployment,
  type V1Service,
} from "@kubernetes/client-node";
import { parseObject } from "../api/validate.js";
import { parseDurationMs, type VirtualMCPServer } from "../api/index.js";
import { installCrdsFromDir, startControlPlane, type ControlPlane } from "../localcluster/index.js";
import { build } from "../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../program/inputs.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import { startMcpServer, unusedPort, type McpTestServer } from "../samples/mcpservers.js";
import { kube, type Kube, type VmcpObject } from "../test/support/kube.js";
import { createMemoryCgroup, parseMemorySize, type MemoryUsage } from "./cgroup.js";
import { treeRss } from "./proctree.js";
import { loadAverage, pulumiWrapper, readCli } from "./pulumicalls.js";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..", "..");
const CLI = join(ROOT, "dist", "cli", "main.js");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (kb: number) => (kb / 1024).toFixed(0);

function args(): Record<string, string> {
  const out: Record<string, string> = {};
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i] as string;
    if (k.startsWith("--"))
      out[k.slice(2)] = a[i + 1]?.startsWith("--") || a[i + 1] === undefined ? "true" : (a[++i] as string);
  }
  return out;
}

// ---- /proc sampling ------------------------------------------------------------------------

function procStatus(pid: number): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const m of readFileSync(`/proc/${pid}/status`, "utf8").matchAll(/^(Vm\w+):\s+(\d+) kB$/gm))
      out[m[1] as string] = Number(m[2]);
    return out;
  } catch {
    return {};
  }
}

/**
 * CPU seconds of a process and its reaped descendants (utime+stime+cutime+cstime): the
 * controller waits for its Pulumi CLIs, which wait for their plugins, so this is the whole
 * tree's CPU — a figure that does not depend on what else the machine was running.
 */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields 14..17 of stat(5), here shifted by the two before ")": utime stime cutime cstime
    return [11, 12, 13, 14].reduce((t, i) => t + Number(f[i]), 0) / 100;
  } catch {
    return 0;
  }
}

/** RSS of the process and all its descendants, kB. */
const treeRssKb = (root: number): number => treeRss(root) / 1024;

class Sampler {
  peakTreeKb = 0;
  peakRssKb = 0;
  rss: number[] = [];
  private timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    everyMs = 500,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
  }
  sample(): void {
    const s = procStatus(this.pid);
    if (s.VmRSS) {
      this.rss.push(s.VmRSS);
      this.peakRssKb = Math.max(this.peakRssKb, s.VmRSS);
    }
    this.peakTreeKb = Math.max(this.peakTreeKb, treeRssKb(this.pid));
  }
  hwmKb(): number {
    return procStatus(this.pid).VmHWM ?? 0;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

// ---- cluster helpers ------------------------------------------------------------------------

interface Ctx {
  plane: ControlPlane;
  kc: KubeConfig;
  /** The ToolHive objects of one namespace. */
  k(ns: string): Kube;
  core: CoreV1Api;
  apps: AppsV1Api;
}

async function newNamespace(ctx: Ctx, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await ctx.core.createNamespace({ body: { metadata: { name } } });
  for (let i = 0; i < 300; i++) {
    if (
      await ctx.core.readNamespacedServiceAccount({ name: "default", namespace: name }).catch(() => undefined)
    )
      return name;
    await sleep(100);
  }
  throw new Error(`namespace ${name}: no default ServiceAccount`);
}

async function createAll<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

interface VmcpState {
  name: string;
  phase?: string;
}

async function phases(ctx: Ctx, ns: string): Promise<VmcpState[]> {
  const list = (await ctx.k(ns).list("VirtualMCPServer")) as VmcpObject[];
  return list.map((v) => ({
    name: v.metadata.name,
    ...(v.status?.observedGeneration === v.metadata.generation && v.status?.phase
      ? { phase: v.status.phase }
      : {}),
  }));
}

interface Controller {
  child: ChildProcess;
  port: number;
  sampler: Sampler;
  /** Peak and OOM kills of its memory cgroup (VMCP_SCALE_MEMORY_LIMIT), else undefined. */
  memory(): MemoryUsage | undefined;
  /** It exited (crashed, or was OOM-killed). */
  exited(): boolean;
  stop(): Promise<void>;
}

/** VMCP_SCALE_MEMORY_LIMIT ("2G"): each controller process runs in a memory cgroup of that size. */
function memoryLimit(): number | undefined {
  const v = process.env.VMCP_SCALE_MEMORY_LIMIT;
  return v ? parseMemorySize(v) : undefined;
}

/**
 * VMCP_SCALE_NODE_FLAGS: V8/Node flags for the controller; several sets separated by "|"
 * ("--max-semi-space-size=2|" is that flag, then none). Unset: one set, no flags.
 */
function nodeFlagSets(env: string | undefined): string[][] {
  return (env ?? "").split("|").map((set) => set.split(/\s+/).filter(Boolean));
}

/** The "cgroup peak (MiB) | OOM kills" cells of a table row; "-" without a cgroup. */
const cgroupCells = (m: MemoryUsage | undefined): string =>
  m ? `${m.peakBytes === undefined ? "-" : mib(m.peakBytes / 1024)} | ${m.oomKills}` : "- | -";

async function startControllerProcess(
  ctx: Ctx,
  ns: string,
  workers: number,
  opts: {
    healthChecks: boolean;
    logFile: string;
    stateDir: string;
    pulumiRoot?: string;
    nodeFlags: readonly string[];
  },
): Promise<Controller> {
  const port = await unusedPort();
  const stateDir = opts.stateDir;
  const log = createWriteStream(opts.logFile, { flags: "a" });
  // VMCP_SCALE_HEAPSNAPSHOT=DIR: the controller writes a heap snapshot there on SIGUSR2 (sent at the end).
  const snapDir = process.env.VMCP_SCALE_HEAPSNAPSHOT;
  const limit = memoryLimit();
  const cgroup = limit === undefined ? undefined : createMemoryCgroup(limit);
  const child = (cgroup ? cgroup.spawn : spawn)(
    process.execPath,
    [
      ...(snapDir ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${snapDir}`] : []),
      ...opts.nodeFlags,
      // VMCP_SCALE_MEMLOG=1: the controller logs process.memoryUsage() every 5 s (into its log file).
      ...(process.env.VMCP_SCALE_MEMLOG
        ? [
            "--import=data:text/javascript,setInterval(()=>console.error(JSON.stringify({memory:process.memoryUsage()})),5000).unref()",
          ]
        : []),
      CLI,
      "controller",
      "--kubeconfig",
      ctx.plane.kubeconfigPath,
      "--namespace",
      ns,
      "--workers",
      String(workers),
      "--state-dir",
      stateDir,
      "--metrics-addr",
      `127.0.0.1:${port}`,
      "--resync",
      "1h",
      "--log-level",
      process.env.VMCP_SCALE_LOG_LEVEL ?? "warn",
      ...(opts.healthChecks ? ["--probe-allow-loopback"] : ["--no-health-checks"]),
      // VMCP_SCALE_KUBE_PROVIDER=shared: the controller's --kube-provider (default: its own).
      ...(process.env.VMCP_SCALE_KUBE_PROVIDER
        ? ["--kube-provider", process.env.VMCP_SCALE_KUBE_PROVIDER]
        : []),
    ],
    {
      env: {
        ...process.env,
        PULUMI_CONFIG_PASSPHRASE: "bench",
        ...(opts.pulumiRoot ? { VMCP_PULUMI_ROOT: opts.pulumiRoot } : {}),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (gone() || i > 3000) {
      const m = cgroup?.usage();
      child.kill("SIGKILL");
      cgroup?.remove();
      throw new Error(
        `controller did not become ready${m?.oomKills ? ` (OOM-killed in its ${mib(cgroup!.limitBytes / 1024)} MiB cgroup)` : ""}; see ${opts.logFile}`,
      );
    }
    await sleep(100);
  }
  const sampler = new Sampler(child.pid as number);
  return {
    child,
    port,
    sampler,
    memory: () => cgroup?.usage(),
    exited: gone,
    stop: async () => {
      sampler.stop();
      if (snapDir && !gone()) {
        const before = readdirSync(snapDir).length;
        child.kill("SIGUSR2");
        for (let i = 0; i < 600 && readdirSync(snapDir).length === before; i++) await sleep(500);
        // Written when its size stops changing.
        const size = () => readdirSync(snapDir).reduce((t, f) => t + statSync(join(snapDir, f)).size, 0);
        for (let last = -1, now = size(); now !== last; last = now, now = size()) await sleep(3000);
      }
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(t);
      cgroup?.remove();
      log.end();
    },
  };
}

/** The controller's /metrics text; empty once it is gone. */
const metricsOf = (c: Controller): Promise<string> =>
  fetch(`http://127.0.0.1:${c.port}/metrics`)
    .then((r) => r.text())
    .catch(() => "");

/** Sum and count of a Prometheus histogram series from /metrics text. */
function histogram(text: string, name: string, labels: string): { sum: number; count: number } {
  const get = (suffix: string) => {
    const sel = labels ? `\\{${labels}\\}` : "";
    const m = new RegExp(`^${name}_${suffix}${sel} ([0-9.e+-]+)$`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { sum: get("sum"), count: get("count") };
}

/** Lets the namespace go: our finalizers would wait for a controller that is gone. */
async function abandon(ctx: Ctx, ns: string): Promise<void> {
  const k = ctx.k(ns);
  await createAll(await k.list("VirtualMCPServer"), 8, (v) =>
    k.patch("VirtualMCPServer", v.metadata.name, { metadata: { finalizers: null } }),
  );
  await ctx.core.deleteNamespace({ name: ns }).catch(() => undefined);
}

// ---- the two benchmarks -------------------------------------------------------------------

/** Restart measurements of the ready runs, printed after their table. */
const restarts: string[] = [];

async function readyRun(
  ctx: Ctx,
  n: number,
  workers: number,
  members: number,
  timeoutS: number,
  nodeFlags: readonly string[],
): Promise<string> {
  const ns = await newNamespace(ctx, `scale-w${workers}`);
  await ctx.k(ns).readyGroup("g");
  await createAll(
    Array.from({ length: members }, (_, i) => `m${i}`),
    4,
    (name) =>
      ctx.k(ns).create("MCPServerEntry", name, {
        remoteUrl: `http://${name}.example.test/mcp`,
        transport: "streamable-http",
        groupRef: { name: "g" },
      }),
  );
  const logFile = join(tmpdir(), `vmcp-scale-${ns}.log`);
  const stateDir = mkdtempSync(join(tmpdir(), "vmcp-scale-state-"));
  const c = await startControllerProcess(ctx, ns, workers, {
    healthChecks: false,
    logFile,
    stateDir,
    nodeFlags,
  });
  const t0 = performance.now();
  await createAll(
    Array.from({ length: n }, (_, i) => `v${String(i).padStart(3, "0")}`),
    8,
    (name) =>
      ctx.k(ns).create("VirtualMCPServer", name, {
        groupRef: { name: "g" },
        incomingAuth: { type: "anonymous" },
      }),
  );
  const createdS = (performance.now() - t0) / 1000;
  let first: number | undefined;
  let half: number | undefined;
  let all: number | undefined;
  let ready = 0;
  const deadline = t0 + timeoutS * 1000;
  while (performance.now() < deadline && !c.exited()) {
    ready = (await phases(ctx, ns)).filter((v) => v.phase === "Ready").length;
    const t = (performance.now() - t0) / 1000;
    if (ready >= 1) first ??= t;
    if (ready >= n / 2) half ??= t;
    if (ready >= n) {
      all = t;
      break;
    }
    await sleep(500);
  }
  c.sampler.sample();
  const metrics = await metricsOf(c);
  const hwm = c.sampler.hwmKb();
  const treePeak = c.sampler.peakTreeKb;
  const memory = c.memory();
  const cpu = cpuSeconds(c.child.pid as number);
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  await c.stop();
  // A restart with every stack applied: how long until the new controller has reconciled
  // them all (each carries our finalizer; stacks with a lock are unlocked first), and with
  // how many Pulumi CLI processes (counted by a wrapper around bin/pulumi).
  const cliLog = join(stateDir, "..", `${ns}-pulumi-calls.log`);
  const pulumiRoot = pulumiWrapper(mkdtempSync(join(tmpdir(), "vmcp-scale-pulumi-")), cliLog);
  const loadBefore = loadAverage();
  const t1 = performance.now();
  const c2 = await startControllerProcess(ctx, ns, workers, {
    healthChecks: false,
    logFile,
    stateDir,
    pulumiRoot,
    nodeFlags,
  });
  let restartS: number | undefined;
  let restartMetrics = "";
  while (performance.now() < t1 + timeoutS * 1000 && !c2.exited()) {
    restartMetrics = await metricsOf(c2);
    const done = [...restartMetrics.matchAll(/^vmcp_reconciles_total\{[^}]*\} (\d+)$/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    if (done >= n) {
      restartS = (performance.now() - t1) / 1000;
      break;
    }
    await sleep(250);
  }
  const restartOps = ["preview", "up", "repair"]
    .map(
      (o) => `${o} ${histogram(restartMetrics, "vmcp_pulumi_operation_duration_seconds", `op="${o}"`).count}`,
    )
    .join(", ");
  const restartCli = readCli(cliLog).length;
  const loadAfter = loadAverage();
  const restartMemory = c2.memory();
  await c2.stop();
  rmSync(stateDir, { recursive: true, force: true });
  rmSync(pulumiRoot, { recursive: true, force: true });
  rmSync(cliLog, { force: true });
  restarts.push(
    `| ${workers} | ${n} | ${restartS !== undefined ? restartS.toFixed(1) : `>${timeoutS}`} | ${restartOps} | ${restartCli} | ${cgroupCells(restartMemory)} | ${loadBefore} → ${loadAfter} |`,
  );
  console.error(`[scale] workers=${workers}: restart ${restarts[restarts.length - 1]}`);
  await abandon(ctx, ns);
  const op = (o: string) => histogram(metrics, "vmcp_pulumi_operation_duration_seconds", `op="${o}"`);
  const up = op("up");
  const preview = op("preview");
  const queue = histogram(metrics, "vmcp_workqueue_queue_duration_seconds", "");
  const line =
    `| ${workers} | ${n} | ${all !== undefined ? all.toFixed(1) : `>${timeoutS} (${ready} Ready)`} | ${first?.toFixed(1) ?? "-"} | ${half?.toFixed(1) ?? "-"} | ` +
    `${all ? ((n / all) * 60).toFixed(1) : "-"} | ${mib(hwm)} | ${mib(treePeak)} | ${up.count} × ${(up.sum / Math.max(1, up.count)).toFixed(2)} s | ` +
    `${preview.count} × ${(preview.sum / Math.max(1, preview.count)).toFixed(2)} s | ${cgroupCells(memory)} | ${cpu.toFixed(0)} (${(cpu / n).toFixed(2)}) | ${load} |`;
  console.error(
    `[scale] workers=${workers}: created ${n} in ${createdS.toFixed(1)} s; queue wait mean ${(queue.sum / Math.max(1, queue.count)).toFixed(1)} s; log ${logFile}`,
  );
  return line;
}

async function cachedRun(
  ctx: Ctx,
  n: number,
  members: number,
  probe: boolean,
  probeInterval: string,
  timeoutS: number,
  nodeFlags: readonly string[],
): Promise<string> {
  const ns = await newNamespace(ctx, "cached");
  const servers: McpTestServer[] = [];
  if (probe)
    for (let i = 0; i < 4; i++)
      servers.push(
        await startMcpServer({
          flavour: "streamable-http",
          spec: { tools: ["search", "get_item", "list_items"] },
        }),
      );
  const names = Array.from({ length: n }, (_, i) => `v${String(i).padStart(3, "0")}`);
  const t0 = performance.now();
  // Groups, members, VirtualMCPServers.
  await createAll(names, 8, async (v) => {
    await ctx.k(ns).readyGroup(`g-${v}`);
    for (let j = 0; j < members; j++) {
      const name = `${v}-m${j}`;
      const url = probe
        ? (servers[(Number(v.slice(1)) + j) % servers.length] as McpTestServer).url()
        : `http://${name}.example.test/mcp`;
      await ctx.k(ns).create("MCPServerEntry", name, {
        remoteUrl: url,
        transport: "streamable-http",
        groupRef: { name: `g-${v}` },
      });
    }
    await ctx.k(ns).create("VirtualMCPServer", v, {
      groupRef: { name: `g-${v}` },
      incomingAuth: { type: "anonymous" },
      replicas: 0, // no pods: this measures the controller's cache, not kwok
      config: {
        aggregation: {
          conflictResolution: "prefix",
          tools: [{ workload: `${v}-m0`, filter: ["search", "get_item"] }],
        },
        operational: {
          failureHandling: {
            healthCheckInterval: probeInterval,
            // vmcp wants the timeout below the interval (its default is 10s).
            healthCheckTimeout: `${Math.min(10_000, Math.floor((parseDurationMs(probeInterval) ?? 30_000) / 2))}ms`,
            partialFailureMode: "best_effort",
          },
        },
      },
    });
  });
  // The objects the stack would have applied, straight from the builder, and the applied hash in status.
  const read = async (kind: "VirtualMCPServer" | "MCPGroup" | "MCPServerEntry") =>
    (await ctx.k(ns).list(kind)).map((o) => {
      const p = parseObject(kind, o);
      if (!p.ok) throw new Error(`${kind} invalid`);
      return p.value as AnyObject;
    });
  const objects = [
    ...(await read("VirtualMCPServer")),
    ...(await read("MCPGroup")),
    ...(await read("MCPServerEntry")),
  ];
  const set = objectSet(objects);
  const vmcps = objects.filter((o): o is VirtualMCPServer => o.kind === "VirtualMCPServer");
  await createAll(vmcps, 8, async (v) => {
    const d = build(gatherInputs(set, v), { vmcpImage: DEFAULT_VMCP_IMAGE }).desired;
    if (!d) throw new Error(`${v.metadata.name} does not build`);
    for (const o of d.objects) {
      if (o.kind === "ConfigMap")
        await ctx.core.createNamespacedConfigMap({ namespace: ns, body: o as V1ConfigMap });
      // Headless: the local plane's service CIDR (a /24) holds ~250 ClusterIPs, fewer than N.
      // The controller only checks that its Service exists, so this changes nothing it reads.
      if (o.kind === "Service")
        await ctx.core.createNamespacedService({
          namespace: ns,
          body: { ...(o as V1Service), spec: { ...(o as V1Service).spec, clusterIP: "None" } },
        });
      if (o.kind === "Deployment")
        await ctx.apps.createNamespacedDeployment({ namespace: ns, body: o as V1Deployment });
    }
    await ctx.k(ns).patchStatus("VirtualMCPServer", v.metadata.name, {
      appliedHash: d.hash,
      stackOutputs: { configChecksum: d.configChecksum, desiredHash: d.hash },
    });
  });
  console.error(
    `[scale] cached: ${n} VirtualMCPServers, ${n} groups, ${n * members} entries and ${n * 3} owned objects created in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );

  const logFile = join(tmpdir(), `vmcp-scale-${ns}.log`);
  const stateDir = mkdtempSync(join(tmpdir(), "vmcp-scale-state-"));
  const loadStart = loadAverage();
  const t1 = performance.now();
  const c = await startControllerProcess(ctx, ns, 2, { healthChecks: probe, logFile, stateDir, nodeFlags });
  const startS = (performance.now() - t1) / 1000;
  let all: number | undefined;
  let ready = 0;
  const deadline = t1 + timeoutS * 1000;
  while (performance.now() < deadline && !c.exited()) {
    ready = (await phases(ctx, ns)).filter((v) => v.phase === "Ready").length;
    if (ready >= n) {
      all = (performance.now() - t1) / 1000;
      break;
    }
    await sleep(1000);
  }
  // A quiet minute (probes keep running when on): steady RSS.
  c.sampler.rss = [];
  for (let t = 0; t < 60 && !c.exited(); t++) await sleep(1000);
  c.sampler.sample();
  const rss = [...c.sampler.rss].sort((a, b) => a - b);
  const metrics = await metricsOf(c);
  const hwm = c.sampler.hwmKb();
  const memory = c.memory();
  if (c.exited())
    console.error(
      `[scale] cached: the controller exited (${c.child.signalCode ?? c.child.exitCode}); see ${logFile}`,
    );
  const ups = histogram(metrics, "vmcp_pulumi_operation_duration_seconds", 'op="up"').count;
  await c.stop();
  rmSync(stateDir, { recursive: true, force: true });
  await abandon(ctx, ns);
  await Promise.all(servers.map((s) => s.stop()));
  const flags = nodeFlags.length ? `\`${nodeFlags.join(" ")}\`` : "(none)";
  return (
    `| ${flags} | ${n} | ${n * members} (${probe ? `probed every ${probeInterval}, ${servers.length} loopback servers` : "not probed"}) | ${startS.toFixed(1)} | ` +
    `${all !== undefined ? all.toFixed(1) : `>${timeoutS} (${ready} Ready)`} | ${mib(rss[Math.floor(rss.length / 2)] ?? 0)} | ${mib(rss[rss.length - 1] ?? 0)} | ${mib(hwm)} | ` +
    `${cgroupCells(memory)} | ${ups} | ${loadStart} → ${loadAverage()} |`
  );
}

async function main(): Promise<void> {
  const a = args();
  const cached = Number(a.cached ?? 0);
  const n = Number(a.vmcps ?? (cached ? 0 : 100));
  const workers = (a.workers ?? "1,2,4").split(",").map(Number);
  const members = Number(a.members ?? 3);
  const timeoutS = Number(a.timeout ?? 1800);
  const flagSets = nodeFlagSets(process.env.VMCP_SCALE_NODE_FLAGS);
  if (n > 0 && flagSets.length > 1)
    throw new Error("VMCP_SCALE_NODE_FLAGS with several sets (|) is for --cached only");
  // Fail now, not after minutes of setup, when no memory cgroup can be made here.
  const limit = memoryLimit();
  if (limit !== undefined) createMemoryCgroup(limit).remove();
  const log = (...x: unknown[]) => console.error("[cluster]", ...x);
  const plane = await startControlPlane({ full: true, keep: a.keep === "true", log });
  const kc = new KubeConfig();
  kc.loadFromString(plane.kubeconfig);
  const ctx: Ctx = {
    plane,
    kc,
    k: (ns) => kube(kc, ns),
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
  };
  try {
    await installCrdsFromDir(kc, join(ROOT, "crds"));
    const machine = `${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
    console.log(`machine: ${machine}`);
    if (limit !== undefined)
      console.log(`controller in a memory cgroup of ${mib(limit / 1024)} MiB (VMCP_SCALE_MEMORY_LIMIT)`);
    if (n > 0) {
      console.log(
        `\n${n} VirtualMCPServers (group of ${members} MCPServerEntries, health checks off) from nothing to all Ready:\n`,
      );
      console.log(
        "| workers | VirtualMCPServers | all Ready (s) | first Ready (s) | half Ready (s) | Ready/min | controller VmHWM (MiB) | peak tree RSS (MiB) | Pulumi up | Pulumi preview | cgroup peak (MiB) | OOM kills | tree CPU s (per VMCP) | load avg at end |",
      );
      console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
      for (const w of workers)
        console.log(await readyRun(ctx, n, w, members, timeoutS, flagSets[0] as string[]));
      console.log(
        `\nthen a controller restart (same state): time until all ${n} are reconciled again, and the Pulumi operations it ran:\n`,
      );
      console.log(
        "| workers | VirtualMCPServers | restart → all reconciled (s) | Pulumi operations | Pulumi CLI processes | cgroup peak (MiB) | OOM kills | load avg |",
      );
      console.log("|---|---|---|---|---|---|---|---|");
      for (const line of restarts) console.log(line);
    }
    if (cached > 0) {
      const probe = a["no-probe"] !== "true";
      console.log(
        `\ncontroller memory with ${cached} VirtualMCPServers in the cache (already applied: no Pulumi run):\n`,
      );
      console.log(
        "| controller flags | VirtualMCPServers | backends | controller ready (s) | all Ready (s) | RSS median, quiet minute (MiB) | RSS max (MiB) | VmHWM (MiB) | cgroup peak (MiB) | OOM kills | Pulumi up | load at start → end |",
      );
      console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
      // One run per flag set, back to back, each in a fresh namespace (the start-up burst is the point).
      for (const flags of flagSets)
        console.log(
          await cachedRun(ctx, cached, members, probe, a["probe-interval"] ?? "30s", timeoutS, flags),
        );
    }
  } finally {
    await plane.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
