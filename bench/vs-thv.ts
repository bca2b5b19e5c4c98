// ToolHive's operator and ours, side by side, on one local control plane (issue 13).
//
//   node dist/bench/vs-thv.js [--changes 20] [--provider shared|per-operation] [--keep]
//
// One plane (full: kwok and the controller-manager make Deployments available) with
// ToolHive's 0.44.0 CRDs. Each operator gets a namespace of its own and runs alone, as a
// child process: first thv-operator (built by scripts/toolchain.sh, $THV_OPERATOR_BINARY),
// stopped before ours starts (`vmcpctl controller --namespace`, the file backend). The
// scenario is the same for both: an MCPGroup, 3 MCPServerEntries, one VirtualMCPServer
// aggregating them with conflictResolution prefix; 2 warm-up changes, then --changes changes
// of `prefixFormat`, one after another. Each is timed from the API write (the merge patch)
// to the watch event that delivers a `gw-vmcp-config` ConfigMap whose config.yaml has the
// new prefixFormat; then the operator's process tree is let settle (its CPU still for
// 600 ms) before the next. Printed for both, and the ratio ours / thv: latency p50/p95/max,
// CPU-s per change (the tree: operator, its Pulumi CLIs and plugins; and the operator
// process alone), RSS of the operator process at ready (first ConfigMap, settled) and of the
// tree at ready and at its peak (sampled every 100 ms), the load average before and after.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig, Watch, type V1ConfigMap } from "@kubernetes/client-node";
import { parse } from "yaml";
import { consoleLogger, installCrdsFromDir, startControlPlane } from "../localcluster/index.js";
import { ControllerProc } from "../test/support/controllerproc.js";
import { kube } from "../test/support/kube.js";
import { poll } from "../test/support/poll.js";
import { startThvOperator, THV_CRDS, thvOperatorVersion } from "../test/support/thvoperator.js";
import { loadAverage } from "./pulumicalls.js";
import { rssOf, rssPeak, treeCpuS, treeRss } from "./proctree.js";

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
const CHANGES = Number(flag("changes") ?? "20");
if (!Number.isInteger(CHANGES) || CHANGES < 1) throw new Error("--changes needs a positive integer");
const PROVIDER = flag("provider");
const KEEP = process.argv.includes("--keep");
const WARMUP = 2;
const ENTRIES = ["alpha", "beta", "gamma"];
const CM = "gw-vmcp-config";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const MiB = (b: number) => b / 1024 / 1024;

interface Result {
  label: string;
  latencyMs: number[];
  cpuS: number[];
  rootCpuS: number[];
  startToConfigMs: number;
  rssReady: number;
  treeRssReady: number;
  treePeak: number;
  load: string;
}

/** Resolves when `pid`'s tree has spent under 20 ms of CPU in 600 ms (at most 30 s). */
async function settle(pid: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = treeCpuS(pid).tree;
  while (Date.now() < deadline) {
    await sleep(600);
    const now = treeCpuS(pid).tree;
    if (now - last < 0.02) return;
    last = now;
  }
}

async function runSide(
  kc: KubeConfig,
  label: string,
  ns: string,
  start: () => { pid: number; stop(): Promise<void> },
): Promise<Result> {
  const k = kube(kc, ns);
  await k.core().createNamespace({ body: { metadata: { name: ns } } });
  await k.create("MCPGroup", "tools", {});
  for (const e of ENTRIES) await k.entry(e, "tools", `https://${e}.example.test/mcp`);
  await k.create("VirtualMCPServer", "gw", {
    groupRef: { name: "tools" },
    incomingAuth: { type: "anonymous" },
    config: {
      aggregation: {
        conflictResolution: "prefix",
        conflictResolutionConfig: { prefixFormat: "{workload}_" },
      },
    },
  });

  // Every ConfigMap event, with the prefixFormat its config.yaml holds and when it arrived.
  const seen: { at: number; prefix: unknown }[] = [];
  const watch = await new Watch(kc).watch(
    `/api/v1/namespaces/${ns}/configmaps`,
    { fieldSelector: `metadata.name=${CM}` },
    (_type: string, cm: V1ConfigMap) => {
      const at = performance.now();
      const yaml = cm.data?.["config.yaml"];
      const prefix = yaml
        ? (parse(yaml) as { aggregation?: { conflictResolutionConfig?: { prefixFormat?: string } } })
            ?.aggregation?.conflictResolutionConfig?.prefixFormat
        : undefined;
      seen.push({ at, prefix });
    },
    (err: unknown) => {
      if (err && (err as Error).name !== "AbortError") console.error(`${label}: watch ended`, err);
    },
  );
  const arrival = (prefix: string, after: number, timeoutMs: number) =>
    poll(
      `${label}: ConfigMap with prefixFormat ${prefix}`,
      () => seen.find((s) => s.at >= after && s.prefix === prefix)?.at,
      timeoutMs,
      2,
    );

  const t0 = performance.now();
  const op = start();
  const peak = rssPeak(op.pid);
  try {
    const first = await arrival("{workload}_", t0, 300_000);
    await settle(op.pid);
    const rssReady = rssOf(op.pid);
    const treeRssReady = treeRss(op.pid);
    const load = loadAverage();
    const latencyMs: number[] = [];
    const cpuS: number[] = [];
    const rootCpuS: number[] = [];
    for (let i = 0; i < WARMUP + CHANGES; i++) {
      const prefix = `{workload}_c${i}_`;
      const cpu0 = treeCpuS(op.pid);
      const w = performance.now();
      await k.patchSpec("VirtualMCPServer", "gw", {
        config: { aggregation: { conflictResolutionConfig: { prefixFormat: prefix } } },
      });
      const at = await arrival(prefix, w, 120_000);
      await settle(op.pid);
      const cpu1 = treeCpuS(op.pid);
      if (i < WARMUP) continue;
      latencyMs.push(at - w);
      cpuS.push(cpu1.tree - cpu0.tree);
      rootCpuS.push(cpu1.root - cpu0.root);
    }
    return {
      label,
      latencyMs,
      cpuS,
      rootCpuS,
      startToConfigMs: first - t0,
      rssReady,
      treeRssReady,
      treePeak: peak.peak(),
      load: `${load} → ${loadAverage()}`,
    };
  } finally {
    peak.stop();
    watch.abort();
    await op.stop();
  }
}

function report(thv: Result, ours: Result): void {
  const rows: [string, (r: Result) => number, (x: number) => string][] = [
    ["change → ConfigMap p50 (ms)", (r) => pct(r.latencyMs, 50), (x) => x.toFixed(0)],
    ["change → ConfigMap p95 (ms)", (r) => pct(r.latencyMs, 95), (x) => x.toFixed(0)],
    ["change → ConfigMap max (ms)", (r) => Math.max(...r.latencyMs), (x) => x.toFixed(0)],
    ["CPU-s per change, tree, mean", (r) => mean(r.cpuS), (x) => x.toFixed(3)],
    ["CPU-s per change, tree, p95", (r) => pct(r.cpuS, 95), (x) => x.toFixed(3)],
    ["  of which the operator process", (r) => mean(r.rootCpuS), (x) => x.toFixed(3)],
    ["start → first ConfigMap (ms)", (r) => r.startToConfigMs, (x) => x.toFixed(0)],
    ["RSS at ready, operator (MiB)", (r) => MiB(r.rssReady), (x) => x.toFixed(0)],
    ["RSS at ready, tree (MiB)", (r) => MiB(r.treeRssReady), (x) => x.toFixed(0)],
    ["RSS peak, tree (MiB)", (r) => MiB(r.treePeak), (x) => x.toFixed(0)],
  ];
  console.log(
    `\n== same plane, same scenario: ${ENTRIES.length} MCPServerEntries, ${CHANGES} changes of prefixFormat (after ${WARMUP} warm-up)`,
  );
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}; node ${process.version}`);
  console.log(`load average: thv ${thv.load}; ours ${ours.load}`);
  console.log(`ours: --kube-provider ${PROVIDER ?? "(default)"}`);
  const w = 34;
  console.log(`| ${"".padEnd(w)} | ${thv.label.padStart(13)} | ${ours.label.padStart(13)} | ours / thv |`);
  console.log(`| ${"-".repeat(w)} | ${"-".repeat(13)} | ${"-".repeat(13)} | ---------- |`);
  for (const [name, get, fmt] of rows) {
    const a = get(thv);
    const b = get(ours);
    console.log(
      `| ${name.padEnd(w)} | ${fmt(a).padStart(13)} | ${fmt(b).padStart(13)} | ${(b / a).toFixed(1).padStart(10)} |`,
    );
  }
}

async function main(): Promise<void> {
  if (!THV_CRDS) throw new Error('THV_OPERATOR_CRDS is not set (eval "$(bash scripts/toolchain.sh env)")');
  const plane = await startControlPlane({ full: true, keep: KEEP, log: consoleLogger("cluster") });
  const work = mkdtempSync(join(tmpdir(), "vmcp-bench-vs-thv-"));
  try {
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    await installCrdsFromDir(kc, THV_CRDS);

    const thv = await runSide(kc, `thv ${thvOperatorVersion() ?? "?"}`, "thv", () => {
      const op = startThvOperator(plane.kubeconfigPath, join(work, "thv-operator.log"));
      return { pid: op.process.pid!, stop: () => op.stop() };
    });
    const ours = await runSide(kc, "vmcp-operator", "ours", () => {
      const c = new ControllerProc({
        kubeconfig: plane.kubeconfigPath,
        namespace: "ours",
        stateDir: join(work, "state"),
        args: PROVIDER ? ["--kube-provider", PROVIDER] : [],
      });
      return {
        pid: c.pid,
        stop: async () => {
          await c.terminate(30_000);
          await c.killAndSweep();
        },
      };
    });
    report(thv, ours);
  } finally {
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
