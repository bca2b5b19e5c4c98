// Where one `pulumi up` goes: the engine alone (no controller) against a local API server,
// one VirtualMCPServer stack, N changes of one field, each a real up.
//
//   node dist/bench/up-profile.js [--ups 10] [--attach] [--trace DIR]
//
// Per up: wall time, CPU seconds of this process and every reaped child (the CLI and the
// plugins it waited for) plus any long-lived provider (`--attach`, read from its
// /proc/<pid>/stat), and the API server requests it caused (apiserver_request_total
// deltas: discovery/OpenAPI GETs, which have no resource, apart from object requests).
// The phases come from the CLI's own verbose log (`-v=9 --logflow`, glog timestamps)
// written by a wrapper around bin/pulumi; `--trace DIR` also keeps each up's
// `--tracing file:` trace there (for `pulumi view-trace`).
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { createEngine } from "../engine/stacks.js";
import { parseManifests } from "../program/manifests.js";
import { build, type DesiredState } from "../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../program/inputs.js";
import type { VirtualMCPServer } from "../api/index.js";
import { consoleLogger, startControlPlane } from "../localcluster/index.js";
import { installCrdsFromDir } from "../localcluster/index.js";
import { API_VERSION, kube } from "../test/support/kube.js";
import { loadAverage, selfAndChildrenCpuS } from "./pulumicalls.js";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..", "..");
const NS = "bench";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
  return v;
}
const UPS = arg("ups", 10);
const ATTACH = process.argv.includes("--attach");
const VERBOSE = process.argv.includes("--log");
const PERF = process.argv.includes("--perf");
const PPROF = process.argv.includes("--pprof");
const TRACE_DIR = (() => {
  const i = process.argv.indexOf("--trace");
  return i < 0 ? undefined : process.argv[i + 1];
})();

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** A bin/pulumi that runs the real CLI with its verbose log (and a trace) into `logDir`. */
function verboseWrapper(dir: string, logDir: string): string {
  const real = join(process.env.VMCP_PULUMI_ROOT ?? "", "bin", "pulumi");
  mkdirSync(join(dir, "bin"), { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const trace = TRACE_DIR ? `--tracing "file:${TRACE_DIR}/$s-$1.trace"` : "";
  writeFileSync(
    join(dir, "bin", "pulumi"),
    `#!/bin/sh
s=$(date +%s%N)
if [ "$1" = up ]; then
  echo "START $s" > "${logDir}/$s.log"
  ${PERF ? `perf record -q -e cpu-clock -F 1000 -g -o "${logDir}/$s.perf" -- ` : ""}"${real}" "$@" ${VERBOSE ? "-v=9 --logflow --logtostderr" : ""} ${PPROF ? `--profiling "${logDir}/$s"` : ""} ${trace} 2>>"${logDir}/$s.log"
  rc=$?
  echo "END $(date +%s%N)" >> "${logDir}/$s.log"
  exit $rc
fi
exec "${real}" "$@"
`,
  );
  chmodSync(join(dir, "bin", "pulumi"), 0o755);
  return dir;
}

/** glog line time (today, UTC) in ms since the epoch. */
function glogMs(line: string, day: Date): number | undefined {
  const m = /^[IWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})/.exec(line);
  if (!m) return undefined;
  const [, , , h, mi, s, us] = m;
  return Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), +h!, +mi!, +s!) + +us! / 1000;
}

/** The first log line matching each marker, as ms after the CLI process started. */
const MARKERS: [string, RegExp][] = [
  ["first log line", /./],
  ["backend opened", /(Opening|Logging into|login).*file:\/\//i],
  ["snapshot loaded", /(loaded|deserializ).*(snapshot|checkpoint)|getSnapshot|loading stack/i],
  ["language host (inline) connected", /(GetRequiredPlugins|GetRequiredPackages|language.*127\.0\.0\.1|Run\(|langhost\.Run)/],
  ["provider plugin launched", /(Launching plugin|launched plugin).*kubernetes|pulumi-resource-kubernetes.*(launch|start)/i],
  ["provider CheckConfig", /Provider\[kubernetes.*\]\.CheckConfig|CheckConfig\(/],
  ["provider Configure", /Provider\[kubernetes.*\]\.Configure\(|\.Configure\(\) executing/],
  ["provider Configure done", /Configure\(\) success|Configure.*success/],
  ["first resource Check", /Provider\[kubernetes.*\]\.Check\(/],
  ["first resource Diff", /Provider\[kubernetes.*\]\.Diff\(/],
  ["first resource Update", /Provider\[kubernetes.*\]\.Update\(/],
  ["last snapshot write", /(saving|persist|writ).*(snapshot|checkpoint)/i],
];

interface Profile {
  totalMs: number;
  marks: Record<string, number>;
  lastMark: Record<string, number>;
}

function profileOf(file: string): Profile {
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n");
  const start = Number(/^START (\d+)/.exec(lines[0] ?? "")?.[1]) / 1e6;
  const end = Number(/END (\d+)/.exec(text)?.[1]) / 1e6;
  const day = new Date(start);
  const marks: Record<string, number> = {};
  const lastMark: Record<string, number> = {};
  for (const line of lines) {
    const t = glogMs(line, day);
    if (t === undefined) continue;
    for (const [name, re] of MARKERS) {
      if (!re.test(line)) continue;
      if (marks[name] === undefined) marks[name] = t - start;
      lastMark[name] = t - start;
    }
  }
  return { totalMs: end - start, marks, lastMark };
}

/** CPU seconds of a live process (utime + stime + its reaped children). */
function pidCpuS(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return [11, 12, 13, 14].reduce((t, i) => t + Number(f[i]), 0) / 100;
  } catch {
    return 0;
  }
}

/** apiserver_request_total summed into "discovery" (no resource: /api, /apis, /openapi) and "objects". */
async function requestCounts(kc: KubeConfig): Promise<{ discovery: number; objects: number }> {
  const cluster = kc.getCurrentCluster()!;
  const { request } = await import("node:https");
  const u = new URL("/metrics", cluster.server);
  const user = kc.getCurrentUser();
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      u,
      {
        ca: cluster.caData ? Buffer.from(cluster.caData, "base64") : cluster.caFile ? readFileSync(cluster.caFile) : undefined,
        cert: user?.certData ? Buffer.from(user.certData, "base64") : user?.certFile ? readFileSync(user.certFile) : undefined,
        key: user?.keyData ? Buffer.from(user.keyData, "base64") : user?.keyFile ? readFileSync(user.keyFile) : undefined,
        headers: user?.token ? { authorization: `Bearer ${user.token}` } : {},
      },
      (res) => {
        let s = "";
        res.on("data", (d) => (s += d));
        res.on("end", () => resolve(s));
      },
    );
    req.on("error", reject);
    req.end();
  });
  let discovery = 0;
  let objects = 0;
  for (const line of body.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const n = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (/resource=""/.test(line) && /verb="GET"/.test(line)) discovery += n;
    else objects += n;
  }
  return { discovery, objects };
}

async function main(): Promise<void> {
  const plane = await startControlPlane({ full: false, log: consoleLogger("cluster") });
  const work = mkdtempSync(join(tmpdir(), "vmcp-bench-up-"));
  const logDir = join(work, "cli-logs");
  if (TRACE_DIR) mkdirSync(TRACE_DIR, { recursive: true });
  try {
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    await installCrdsFromDir(kc, join(ROOT, "crds"));
    const k = kube(kc, NS);
    await k.core().createNamespace({ body: { metadata: { name: NS } } });
    const text = `apiVersion: ${API_VERSION}
kind: MCPGroup
metadata: {name: tools, namespace: ${NS}}
spec: {}
---
apiVersion: ${API_VERSION}
kind: VirtualMCPServer
metadata: {name: gw, namespace: ${NS}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}
`;
    const parsed = parseManifests(text, "bench").objects;
    const vmcp = (await k.createObject(parsed.find((o) => o.kind === "VirtualMCPServer")!)) as VirtualMCPServer;
    const desiredFor = (seconds: number): DesiredState => {
      const v = structuredClone(vmcp) as VirtualMCPServer & { spec: Record<string, unknown> };
      v.spec.config = { operational: { timeouts: { default: `${seconds}s` } } };
      const objects: AnyObject[] = parsed.map((o) => (o.kind === "VirtualMCPServer" ? v : o));
      const b = build(gatherInputs(objectSet(objects), v), { vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0" });
      if (!b.desired) throw new Error(JSON.stringify(b.problems));
      return b.desired;
    };
    const engine = await createEngine({
      stateDir: join(work, "state"),
      workDir: join(work, "workspaces"),
      passphrase: "bench",
      kubeconfig: plane.kubeconfigPath,
      pulumiRoot: verboseWrapper(join(work, "pulumi-root"), logDir),
      ...(ATTACH ? ({ provider: "attach" } as object) : {}),
    });
    try {
      await engine.up(desiredFor(1)); // the creates, not measured
      const load0 = loadAverage();
      const rows: {
        wall: number;
        cpu: number;
        self: number;
        provider: number;
        discovery: number;
        objects: number;
      }[] = [];
      for (let i = 0; i < UPS; i++) {
        const r0 = await requestCounts(kc);
        const providerPid = (engine as unknown as { providerPid?: number }).providerPid;
        const c0 = selfAndChildrenCpuS() + pidCpuS(providerPid);
        const p0 = pidCpuS(providerPid);
        const s0 = process.cpuUsage();
        const t0 = performance.now();
        const result = await engine.up(desiredFor(100 + i));
        const wall = performance.now() - t0;
        const self = process.cpuUsage(s0);
        const provider = pidCpuS((engine as unknown as { providerPid?: number }).providerPid) - p0;
        const cpu = selfAndChildrenCpuS() + provider + p0 - c0;
        const r1 = await requestCounts(kc);
        if (!result.changes.some((c) => c.type.endsWith("ConfigMap")))
          throw new Error(`up ${i} did not update the ConfigMap: ${JSON.stringify(result.summary)}`);
        rows.push({
          wall,
          cpu: cpu * 1000,
          self: (self.user + self.system) / 1000,
          provider: provider * 1000, discovery: r1.discovery - r0.discovery, objects: r1.objects - r0.objects - 1 });
      }
      const load1 = loadAverage();
      const profiles = readdirSync(logDir)
        .filter((f) => f.endsWith(".log"))
        .sort()
        .slice(1) // the creating up
        .map((f) => profileOf(join(logDir, f)));
      console.log(`\nup profile, ${UPS} ups, provider ${ATTACH ? "attached (long-lived)" : "started by each CLI"}; load ${load0} → ${load1}`);
      const line = (label: string, xs: number[]) =>
        console.log(`  ${label.padEnd(40)}${String(Math.round(pct(xs, 50))).padStart(7)}${String(Math.round(pct(xs, 95))).padStart(7)}`);
      console.log(`  ${"".padEnd(40)}${"p50".padStart(7)}${"p95".padStart(7)}`);
      line("engine.up wall (ms)", rows.map((r) => r.wall));
      line("CPU, this process + children (ms)", rows.map((r) => r.cpu));
      line("  of which this process (inline program)", rows.map((r) => r.self));
      line("  of which the long-lived provider", rows.map((r) => r.provider));
      line("API requests: discovery/OpenAPI GETs", rows.map((r) => r.discovery));
      line("API requests: objects", rows.map((r) => r.objects));
      line("CLI process, start → exit (ms)", profiles.map((p) => p.totalMs));
      console.log("  CLI log markers, ms after the CLI started (first / last occurrence, p50):");
      for (const [name] of MARKERS) {
        const first = profiles.map((p) => p.marks[name]).filter((x): x is number => x !== undefined);
        const last = profiles.map((p) => p.lastMark[name]).filter((x): x is number => x !== undefined);
        if (!first.length) {
          console.log(`    ${name.padEnd(38)}   (not in the log)`);
          continue;
        }
        console.log(
          `    ${name.padEnd(38)}${String(Math.round(pct(first, 50))).padStart(7)}${String(Math.round(pct(last, 50))).padStart(7)}`,
        );
      }
      appendFileSync(join(work, "rows.json"), JSON.stringify(rows));
      console.log(`  logs: ${logDir}`);
    } finally {
      await engine.close();
    }
  } finally {
    await plane.stop();
    if (!process.argv.includes("--keep")) rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
