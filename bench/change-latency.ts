// Change latency benchmark (real local control plane, real Pulumi engine, the controller
// in this process so its metrics and engine can be read directly).
//
//   node dist/bench/change-latency.js [--changes 50] [--resync 100] [--workers 2]
//                                     [--provider per-operation|shared] [--keep]
//
// 1. One VirtualMCPServer, --changes spec changes one after another. For each: the time
//    from the API write to the status showing the new observedGeneration and appliedHash
//    (= stackOutputs.desiredHash, written after `up` returned), then a check that the
//    ConfigMap and the Deployment's checksum carry the change. Printed: p50/p95/max, and
//    the breakdown per change from the controller's metrics (queue wait, build, preview,
//    up, status write, the rest = Events and bookkeeping), Pulumi processes per change,
//    and every Pulumi CLI call timed by a wrapper script around the real `pulumi`.
// 2. --resync N VirtualMCPServers (created and applied first), then three unchanged
//    resyncs: Pulumi processes started (target 0), status writes, controller CPU time
//    (process.cpuUsage delta: the controller is this process) and wall time.
import { mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { createEngine } from "../engine/stacks.js";
import { jsonLogger } from "../controller/log.js";
import { startController, type Controller } from "../controller/main.js";
import { consoleLogger, installCrdsFromDir, startControlPlane } from "../localcluster/index.js";
import { kube, type VmcpObject } from "../test/support/kube.js";
import { poll } from "../test/support/poll.js";
import { ownCpuS } from "./proctree.js";
import { loadAverage, pulumiWrapper, readCli, selfAndChildrenCpuS } from "./pulumicalls.js";

const NS = "bench";
const ROOT = join(fileURLToPath(import.meta.url), "..", "..", "..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
  return v;
}
const CHANGES = arg("changes", 50);
const RESYNC = arg("resync", 100);
const WORKERS = arg("workers", 2);
const KEEP = process.argv.includes("--keep");
const PROVIDER = process.argv.includes("--provider")
  ? process.argv[process.argv.indexOf("--provider") + 1]
  : undefined;
if (PROVIDER !== undefined && PROVIDER !== "shared" && PROVIDER !== "per-operation")
  throw new Error("--provider: per-operation or shared");

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const ms = (x: number) => `${Math.round(x)}`.padStart(6);
const row = (label: string, xs: number[]) =>
  `  ${label.padEnd(26)}${ms(pct(xs, 50))}${ms(pct(xs, 95))}${ms(Math.max(...xs))}${ms(mean(xs))}`;
const HEADER = `  ${"".padEnd(26)}${"p50".padStart(6)}${"p95".padStart(6)}${"max".padStart(6)}${"mean".padStart(6)}   (ms)`;

/**
 * The controller's metric sums and counts that make up a reconcile. Every read starts at
 * once (prom-client reads a series when get() is called), so the snapshot is of one moment.
 */
async function metricSnapshot(c: Controller) {
  const m = c.metrics;
  const results = ["up", "after", "retry", "done", "error"];
  const total = async (xs: Promise<number>[]) => (await Promise.all(xs)).reduce((a, b) => a + b, 0);
  const [queue, queueN, build, status, preview, previewN, up, upN, reconcile, reconcileN, statusWrites] =
    await Promise.all([
      m.queueLatency.sum(),
      m.queueLatency.count(),
      m.phaseDuration.sum({ phase: "build" }),
      m.phaseDuration.sum({ phase: "status" }),
      m.pulumiDuration.sum({ op: "preview" }),
      m.pulumiDuration.count({ op: "preview" }),
      total([m.pulumiDuration.sum({ op: "up" }), m.pulumiDuration.sum({ op: "repair" })]),
      total([m.pulumiDuration.count({ op: "up" }), m.pulumiDuration.count({ op: "repair" })]),
      total(results.map((result) => m.reconcileDuration.sum({ result }))),
      total(results.map((result) => m.reconcileDuration.count({ result }))),
      m.statusWrites.get(),
    ]);
  return {
    queue,
    queueN,
    build,
    status,
    preview,
    previewN,
    up,
    upN,
    reconcile,
    reconcileN,
    processes: c.engine.processesStarted,
    statusWrites,
  };
}

async function main(): Promise<void> {
  const log = consoleLogger("bench");
  const t00 = performance.now();
  const plane = await startControlPlane({ full: true, keep: KEEP, log: consoleLogger("cluster") });
  const work = mkdtempSync(join(tmpdir(), "vmcp-bench-latency-"));
  let controller: Controller | undefined;
  try {
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    await installCrdsFromDir(kc, join(ROOT, "crds"));
    const k = kube(kc, NS);
    const core = k.core();
    const apps = k.apps();
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await poll(
      "ServiceAccount default",
      async () =>
        (await core.readNamespacedServiceAccount({ name: "default", namespace: NS })) ? true : undefined,
      30_000,
      100,
    );
    await k.create("MCPGroup", "tools", {});
    for (const e of ["alpha", "beta"]) await k.entry(e, "tools", `http://${e}.example.test/mcp`);

    const cliLog = join(work, "pulumi-calls.log");
    const engine = await createEngine({
      stateDir: join(work, "state"),
      workDir: join(work, "workspaces"),
      passphrase: "bench",
      kubeconfig: plane.kubeconfigPath,
      pulumiRoot: pulumiWrapper(join(work, "pulumi-root"), cliLog),
      ...(PROVIDER ? { provider: PROVIDER as "shared" | "per-operation" } : {}),
    });
    controller = await startController({
      kubeconfig: kc,
      namespace: NS,
      workers: WORKERS,
      resyncMs: 3_600_000, // resyncs are triggered by hand
      engine,
      healthChecks: false,
      log: jsonLogger({ level: "error" }),
    });
    const c = controller;
    // The shared provider processes are children that are never reaped while they work.
    const cpuNow = () => selfAndChildrenCpuS() + engine.providerPids().reduce((t, p) => t + ownCpuS(p), 0);
    const getVmcp = (name: string): Promise<VmcpObject> => k.vmcp(name);
    const setTimeout_ = (name: string, s: number) =>
      k.patchSpec("VirtualMCPServer", name, { config: { operational: { timeouts: { default: `${s}s` } } } });
    // Metric snapshots at the start and end of every reconcile: the breakdown of the one
    // reconcile a change triggers, without the follow-ups (the objects' own events) mixed in.
    type Snap = Awaited<ReturnType<typeof metricSnapshot>>;
    const records: { key: string; t0: number; t1: number; s: Snap; e: Snap }[] = [];
    const reconcile = c.reconciler.reconcile.bind(c.reconciler);
    c.reconciler.reconcile = async (key, signal) => {
      const s = await metricSnapshot(c);
      const t0 = performance.now();
      try {
        return await reconcile(key, signal);
      } finally {
        records.push({ key, t0, t1: performance.now(), s, e: await metricSnapshot(c) });
      }
    };
    /** Let follow-up reconciles (events of the objects just applied) finish. */
    const settle = async () => {
      await c.queue.idle();
      await sleep(300);
      await c.queue.idle();
    };

    // ---- 1. change latency ------------------------------------------------------------
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    await poll(
      "gw applied",
      async () => ((await getVmcp("gw")).status?.appliedHash ? true : undefined),
      120_000,
      100,
    );
    await settle();
    const WARMUP = 2;
    const lat: number[] = [];
    const parts: Record<string, number[]> = {
      queue: [],
      build: [],
      preview: [],
      up: [],
      status: [],
      other: [],
      reconcile: [],
      processes: [],
      statusPoll: [],
      cpu: [],
    };
    const loadStart = loadAverage();
    const cliStart = readCli(cliLog).length;
    let cliFrom = 0;
    for (let i = 0; i < WARMUP + CHANGES; i++) {
      if (i === WARMUP) cliFrom = readCli(cliLog).length;
      const before = await metricSnapshot(c);
      const prevHash = (await getVmcp("gw")).status?.appliedHash;
      const secs = 100 + i;
      const cpu0 = cpuNow();
      const t0 = performance.now();
      const patched = (await setTimeout_("gw", secs)) as { metadata: { generation: number } };
      const gen = patched.metadata.generation;
      const st = await poll(
        `change ${i} applied`,
        async () => {
          const s = (await getVmcp("gw")).status;
          return s?.observedGeneration === gen &&
            s.appliedHash &&
            s.appliedHash !== prevHash &&
            s.appliedHash === s.stackOutputs?.desiredHash
            ? s
            : undefined;
        },
        120_000,
        10,
      );
      const t1 = performance.now();
      // The objects really carry the change (checked outside the timed window).
      const cm = await core.readNamespacedConfigMap({ name: "gw-vmcp-config", namespace: NS });
      if (!cm.data?.["config.yaml"]?.includes(`default: ${secs}s`))
        throw new Error(`change ${i}: ConfigMap lacks the change`);
      const dep = await apps.readNamespacedDeployment({ name: "gw", namespace: NS });
      if (
        dep.spec?.template.metadata?.annotations?.["toolhive.stacklok.dev/runconfig-checksum"] !==
        st.stackOutputs?.configChecksum
      )
        throw new Error(`change ${i}: Deployment checksum is not the applied one`);
      // The reconcile that wrote the status: the first one started after the write.
      const rec = await poll(
        "the reconcile's record",
        async () => records.find((r) => r.t0 >= t0 && r.key === `${NS}/gw`),
        10_000,
        5,
      );
      if (i < WARMUP) {
        await settle();
        continue;
      }
      const d = (k: keyof Snap) => (rec.e[k] - rec.s[k]) * 1000;
      const handler = rec.t1 - rec.t0;
      lat.push(t1 - t0);
      parts.queue!.push((rec.s.queue - before.queue) * 1000);
      parts.build!.push(d("build"));
      parts.preview!.push(d("preview"));
      parts.up!.push(d("up"));
      parts.status!.push(d("status"));
      parts.reconcile!.push(handler);
      parts.other!.push(handler - d("build") - d("preview") - d("up") - d("status"));
      parts.processes!.push(rec.e.processes - rec.s.processes);
      parts.statusPoll!.push(t1 - t0 - (rec.s.queue - before.queue) * 1000 - handler);
      await settle();
      // CPU of the change and its follow-up reconciles: this process (the controller, the
      // inline program) and the Pulumi CLIs it waited for (with their plugins).
      parts.cpu!.push((cpuNow() - cpu0) * 1000);
    }
    const calls = readCli(cliLog).slice(cliFrom);
    const byCmd = new Map<string, number[]>();
    for (const call of calls) byCmd.set(call.cmd, [...(byCmd.get(call.cmd) ?? []), call.end - call.start]);

    // CLI start cost, outside the controller: `pulumi version` and `pulumi stack ls`.
    const realPulumi = join(process.env.VMCP_PULUMI_ROOT ?? "", "bin", "pulumi");
    const timeCmd = (args: string[], cwd?: string) => {
      const t = performance.now();
      spawnSync(realPulumi, args, {
        cwd,
        env: { ...process.env, PULUMI_CONFIG_PASSPHRASE: "bench", PULUMI_SKIP_UPDATE_CHECK: "true" },
        stdio: "ignore",
      });
      return performance.now() - t;
    };
    const versionMs = Array.from({ length: 5 }, () => timeCmd(["version"]));
    const stackLsMs = Array.from({ length: 5 }, () =>
      timeCmd(["stack", "ls", "--non-interactive"], join(work, "workspaces", "workspaces", `${NS}.gw`)),
    );

    console.log(
      `\n== spec change → objects applied and status written: ${CHANGES} changes (after ${WARMUP} warm-up)`,
    );
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}; workers ${WORKERS}; node ${process.version}; provider ${PROVIDER ?? "default"}`,
    );
    console.log(`load average: ${loadStart} at the first measured change, ${loadAverage()} after the last`);
    console.log(HEADER);
    console.log(row("write → status (latency)", lat));
    console.log(row("  queue wait", parts.queue!));
    console.log(row("  build (validate+build)", parts.build!));
    console.log(row("  pulumi preview", parts.preview!));
    console.log(row("  pulumi up", parts.up!));
    console.log(row("  status write", parts.status!));
    console.log(row("  other (events, …)", parts.other!));
    console.log(row("  = reconcile", parts.reconcile!));
    console.log(row("  rest: watch + status poll", parts.statusPoll!));
    console.log(row("CPU per change (+children)", parts.cpu!));
    console.log(
      `  Pulumi processes per change: ${[...new Set(parts.processes!)].join("/")} (mean ${mean(parts.processes!).toFixed(2)})`,
    );
    console.log(
      `\n== Pulumi CLI processes during the measured changes (timed by a wrapper around bin/pulumi)`,
    );
    console.log(HEADER);
    for (const [cmd, xs] of [...byCmd.entries()].sort()) console.log(row(`pulumi ${cmd} ×${xs.length}`, xs));
    console.log(row("pulumi version (CLI start)", versionMs));
    console.log(row("pulumi stack ls", stackLsMs));
    console.log(`  (CLI calls before the measured changes, incl. setup and warm-up: ${cliFrom - cliStart})`);

    // ---- 2. unchanged resync of many ------------------------------------------------------
    if (RESYNC > 0) {
      const names = Array.from({ length: RESYNC }, (_, i) => `r-${String(i).padStart(3, "0")}`);
      const tCreate = performance.now();
      for (const n of names)
        await k.create("VirtualMCPServer", n, {
          groupRef: { name: "tools" },
          incomingAuth: { type: "anonymous" },
        });
      await poll(
        `${RESYNC} VirtualMCPServers applied`,
        async () => {
          const list = (await k.list("VirtualMCPServer")) as VmcpObject[];
          return list.filter((o) => o.status?.appliedHash).length >= RESYNC + 1 ? true : undefined;
        },
        RESYNC * 30_000,
        1000,
      );
      const createdMs = performance.now() - tCreate;
      await c.queue.idle();
      await sleep(3000); // status echoes, Deployment status updates from kwok
      await c.queue.idle();
      console.log(
        `\n== unchanged resync of ${RESYNC + 1} VirtualMCPServers (created and applied first in ${(createdMs / 1000).toFixed(1)} s, workers ${WORKERS})`,
      );
      console.log(
        `  ${"run".padEnd(6)}${"reconciles".padStart(12)}${"pulumi procs".padStart(14)}${"status writes".padStart(15)}${"skipped".padStart(9)}${"wall ms".padStart(9)}${"CPU ms".padStart(8)}${"CPU/vmcp ms".padStart(13)}`,
      );
      for (let run = 1; run <= 3; run++) {
        const before = await metricSnapshot(c);
        const skipped = await c.metrics.pulumiSkipped.get();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        c.queue.resync();
        await poll(
          "resync done",
          async () =>
            (await metricSnapshot(c)).reconcileN - before.reconcileN >= RESYNC + 1 ? true : undefined,
          600_000,
          2,
        );
        await c.queue.idle();
        const wall = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const after = await metricSnapshot(c);
        const cpuMs = (cpu.user + cpu.system) / 1000;
        console.log(
          `  ${String(run).padEnd(6)}${String(after.reconcileN - before.reconcileN).padStart(12)}${String(after.processes - before.processes).padStart(14)}${String(after.statusWrites - before.statusWrites).padStart(15)}${String((await c.metrics.pulumiSkipped.get()) - skipped).padStart(9)}${ms(wall).padStart(9)}${ms(cpuMs).padStart(8)}${(cpuMs / (RESYNC + 1)).toFixed(2).padStart(13)}`,
        );
        await sleep(500);
      }
    }
    log("done", { totalS: Math.round((performance.now() - t00) / 1000) });
  } finally {
    await controller?.stop(30_000);
    await controller?.engine.close();
    await plane.stop();
    if (!KEEP) rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
