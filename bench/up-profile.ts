// Where one `pulumi up` goes: the engine alone (no controller) against a minimal local
// plane, one VirtualMCPServer stack per variant, N changes of one field, each a real up.
//
//   node dist/bench/up-profile.js [--ups 10] [--variants default,shared,cli-logs]
//                                 [--pprof] [--perf] [--log] [--trace DIR] [--keep]
//
// Variants (engine options, VARIANT_OPTIONS) run interleaved, so each sees the same load.
// Per up: wall time; CPU of this process (inline program, Automation API), of every reaped
// child (the CLI and the plugins it waited for) and of the shared provider processes
// (/proc/<pid>/stat); API server requests (apiserver_request_total deltas: discovery and
// OpenAPI GETs, which have no resource, apart from object requests). A wrapper around
// bin/pulumi adds, per flag: --pprof the CLI's Go CPU profile (`--profiling`), read with
// `go tool pprof` into phases; --perf `perf record` of the CLI and its children, CPU per
// process; --log the CLI's `-v=9` JSON log, read into a timeline; --trace DIR its
// `--tracing file:` trace (for `pulumi view-trace`). The load average is printed.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { createEngine, type Engine, type EngineOptions } from "../engine/stacks.js";
import { parseManifests } from "../program/manifests.js";
import { build, type DesiredState } from "../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../program/inputs.js";
import type { VirtualMCPServer } from "../api/index.js";
import { consoleLogger, installCrdsFromDir, startControlPlane } from "../localcluster/index.js";
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

/** Moments of one CLI run, ms after it started, from its JSON log (`-v=9 --logflow`). */
const MARKERS: [string, RegExp][] = [
  ["CLI initialised (Go start, flags)", /^OTLP receiver started/],
  ["update starts (config, secrets, backend)", /^\*\*\* Starting Update/],
  ["provider plugin connected", /^Handshake/],
  ["provider Configure", /\]\.Configure\(\) executing/],
  ["first resource Diff", /^Provider\[0x[0-9a-f]+\]\.Diff\(/],
  ["first resource Update", /^Provider\[0x[0-9a-f]+\]\.Update\(/],
  ["last resource registered", /^RegisterResource RPC finished/],
];

interface Profile {
  totalMs: number;
  marks: Record<string, number>;
  checkpointWrites: number;
}

function profileOf(file: string): Profile {
  const lines = readFileSync(file, "utf8").split("\n");
  const start = Number(/^START (\d+)/.exec(lines[0] ?? "")?.[1]) / 1e6;
  const end = Number(/^END (\d+)/.exec(lines.findLast((l) => l.startsWith("END")) ?? "")?.[1]) / 1e6;
  const marks: Record<string, number> = {};
  let checkpointWrites = 0;
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    let rec: { time?: string; msg?: string };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      continue;
    }
    if (!rec.time || !rec.msg) continue;
    const t = Date.parse(rec.time) - start;
    if (/^Saved stack .* checkpoint/.test(rec.msg)) checkpointWrites++;
    for (const [name, re] of MARKERS) {
      if (!re.test(rec.msg)) continue;
      // The last registration is the end of the steps; every other marker is its first line.
      if (marks[name] === undefined || name === "last resource registered") marks[name] = t;
    }
  }
  return { totalMs: end - start, marks, checkpointWrites };
}

/** Functions of the CLI's Go CPU profile (`--profiling`) whose cumulative time is a phase. */
const PPROF_PHASES: [string, RegExp][] = [
  ["all samples", /^$/],
  ["passphrase key (PBKDF2, 1,000,000 rounds)", /golang\.org\/x\/crypto\/pbkdf2\.Key$/],
  ["automatic debug log ($PULUMI_HOME/logs)", /logging\.\(\*teeHandler\)\.Handle$/],
  ["deployment (steps, RPCs)", /deploy\.\(\*Deployment\)\.Execute/],
  ["checkpoint writes", /diy\.\(\*diySnapshotPersister\)\.Save$/],
  ["garbage collection", /^runtime\.gcBgMarkWorker$/],
];

/** Milliseconds per phase from one Go CPU profile, read with `go tool pprof -top -cum`. */
function pprofPhases(file: string): Record<string, number> {
  const out = spawnSync("go", ["tool", "pprof", "-top", "-cum", "-unit", "ms", file], {
    encoding: "utf8",
  }).stdout;
  const phases: Record<string, number> = {};
  const total = /Total samples = ([\d.]+)ms/.exec(out)?.[1];
  phases["all samples"] = Number(total ?? NaN);
  for (const line of out.split("\n")) {
    const m = /^\s*[\d.]+(?:ms)?\s+[\d.]+%\s+[\d.]+%\s+([\d.]+)(?:ms)?\s+[\d.]+%\s+(.*)$/.exec(line);
    if (!m) continue;
    const name = m[2]!.replace(/ \(inline\)$/, "");
    for (const [phase, re] of PPROF_PHASES)
      if (phase !== "all samples" && re.test(name) && phases[phase] === undefined)
        phases[phase] = Number(m[1]);
  }
  return phases;
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
        ca: cluster.caData
          ? Buffer.from(cluster.caData, "base64")
          : cluster.caFile
            ? readFileSync(cluster.caFile)
            : undefined,
        cert: user?.certData
          ? Buffer.from(user.certData, "base64")
          : user?.certFile
            ? readFileSync(user.certFile)
            : undefined,
        key: user?.keyData
          ? Buffer.from(user.keyData, "base64")
          : user?.keyFile
            ? readFileSync(user.keyFile)
            : undefined,
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

interface Row {
  wall: number;
  cpu: number;
  self: number;
  provider: number;
  discovery: number;
  objects: number;
}

interface Variant {
  name: string;
  engine: Engine;
  logDir: string;
  rows: Row[];
  desiredFor: (seconds: number) => DesiredState;
}

/** Engine options per variant name (`--variants`). */
const VARIANT_OPTIONS: Record<string, Partial<EngineOptions>> = {
  default: {},
  "cli-logs": { cliLogs: true },
  shared: { provider: "shared" },
};
const VARIANTS = (() => {
  const i = process.argv.indexOf("--variants");
  return (i < 0 ? "default" : (process.argv[i + 1] ?? "")).split(",").filter(Boolean);
})();

function desiredOf(parsed: AnyObject[], vmcp: VirtualMCPServer, seconds: number): DesiredState {
  const v = structuredClone(vmcp) as VirtualMCPServer & { spec: Record<string, unknown> };
  v.spec.config = { operational: { timeouts: { default: `${seconds}s` } } };
  const objects: AnyObject[] = parsed.map((o) => (o.kind === "VirtualMCPServer" ? v : o));
  const b = build(gatherInputs(objectSet(objects), v), {
    vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
  });
  if (!b.desired) throw new Error(JSON.stringify(b.problems));
  return b.desired;
}

async function measuredUp(kc: KubeConfig, v: Variant, seconds: number): Promise<Row> {
  const providersCpuS = () => v.engine.providerPids().reduce((t, pid) => t + pidCpuS(pid), 0);
  const r0 = await requestCounts(kc);
  const p0 = providersCpuS();
  const c0 = selfAndChildrenCpuS();
  const s0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await v.engine.up(v.desiredFor(seconds));
  const wall = performance.now() - t0;
  const self = process.cpuUsage(s0);
  const provider = providersCpuS() - p0;
  const cpu = selfAndChildrenCpuS() - c0 + provider;
  const r1 = await requestCounts(kc);
  if (!result.changes.some((c) => c.type.endsWith("ConfigMap")))
    throw new Error(`${v.name}: up did not update the ConfigMap: ${JSON.stringify(result.summary)}`);
  return {
    wall,
    cpu: cpu * 1000,
    self: (self.user + self.system) / 1000,
    provider: provider * 1000,
    discovery: r1.discovery - r0.discovery,
    // The /metrics read itself is one request.
    objects: r1.objects - r0.objects - 1,
  };
}

function report(v: Variant): void {
  const line = (label: string, xs: number[]) =>
    console.log(
      `  ${label.padEnd(46)}${String(Math.round(pct(xs, 50))).padStart(7)}${String(Math.round(pct(xs, 95))).padStart(7)}`,
    );
  console.log(`\n[${v.name}] ${JSON.stringify(VARIANT_OPTIONS[v.name])}`);
  console.log(`  ${"".padEnd(46)}${"p50".padStart(7)}${"p95".padStart(7)}`);
  line(
    "engine.up wall (ms)",
    v.rows.map((r) => r.wall),
  );
  line(
    "CPU: this process + children + provider (ms)",
    v.rows.map((r) => r.cpu),
  );
  line(
    "  of which this process (inline program)",
    v.rows.map((r) => r.self),
  );
  line(
    "  of which a long-lived provider",
    v.rows.map((r) => r.provider),
  );
  line(
    "API requests: discovery/OpenAPI GETs",
    v.rows.map((r) => r.discovery),
  );
  line(
    "API requests: objects",
    v.rows.map((r) => r.objects),
  );
  const files = readdirSync(v.logDir).sort();
  const logs = files.filter((f) => f.endsWith(".log")).slice(1); // not the creating up
  const profiles = logs.map((f) => profileOf(join(v.logDir, f)));
  line(
    "CLI process, start → exit (ms)",
    profiles.map((p) => p.totalMs),
  );
  if (VERBOSE) {
    console.log("  CLI timeline (-v=9 log, which slows it), ms after the CLI started:");
    for (const [name] of MARKERS)
      line(
        `  ${name}`,
        profiles.map((p) => p.marks[name]).filter((x): x is number => x !== undefined),
      );
    line(
      "  checkpoint writes per up",
      profiles.map((p) => p.checkpointWrites),
    );
  }
  if (PPROF) {
    const cpus = files
      .filter((f) => f.endsWith(".cpu"))
      .slice(1)
      .map((f) => pprofPhases(join(v.logDir, f)));
    console.log("  CLI CPU from its Go profile (from flag parsing on; ms, cumulative):");
    for (const [phase] of PPROF_PHASES)
      line(
        `  ${phase}`,
        cpus.map((c) => c[phase] ?? 0),
      );
  }
  if (PERF) {
    const byComm = files
      .filter((f) => f.endsWith(".perf"))
      .slice(1)
      .map((f) => perfByCommand(join(v.logDir, f)));
    console.log("  CPU by process from perf (whole run incl. Go start; ms):");
    for (const comm of [...new Set(byComm.flatMap((b) => Object.keys(b)))])
      line(
        `  ${comm}`,
        byComm.map((b) => b[comm] ?? 0),
      );
  }
}

/** Samples (1 ms each at -F 1000) per command name in one `perf record` file. */
function perfByCommand(file: string): Record<string, number> {
  const out = spawnSync(
    "perf",
    ["report", "-i", file, "-n", "--no-children", "--sort", "comm", "-g", "none", "--stdio"],
    {
      encoding: "utf8",
    },
  ).stdout;
  const counts: Record<string, number> = {};
  for (const line of out.split("\n")) {
    const m = /^\s*[\d.]+%\s+(\d+)\s+(\S+)/.exec(line);
    if (m) counts[m[2]!] = Number(m[1]);
  }
  return counts;
}

async function main(): Promise<void> {
  const plane = await startControlPlane({ full: false, log: consoleLogger("cluster") });
  const work = mkdtempSync(join(tmpdir(), "vmcp-bench-up-"));
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
    const template = parsed.find((o) => o.kind === "VirtualMCPServer") as VirtualMCPServer;
    const variants: Variant[] = [];
    for (const name of VARIANTS) {
      const opts = VARIANT_OPTIONS[name];
      if (!opts)
        throw new Error(`--variants: unknown ${name} (known: ${Object.keys(VARIANT_OPTIONS).join(", ")})`);
      const body = structuredClone(template);
      body.metadata!.name = `gw-${name}`;
      const vmcp = (await k.createObject(body)) as VirtualMCPServer;
      const logDir = join(work, "cli-logs", name);
      const engine = await createEngine({
        stateDir: join(work, "state"),
        workDir: join(work, "workspaces", name),
        passphrase: "bench",
        kubeconfig: plane.kubeconfigPath,
        pulumiRoot: verboseWrapper(join(work, "pulumi-root", name), logDir),
        ...opts,
      });
      variants.push({
        name,
        engine,
        logDir,
        rows: [],
        desiredFor: (seconds) => desiredOf(parsed, vmcp, seconds),
      });
    }
    try {
      for (const v of variants) await v.engine.up(v.desiredFor(1)); // the creates, not measured
      const load0 = loadAverage();
      // Interleaved, so that every variant sees the same load.
      for (let i = 0; i < UPS; i++) for (const v of variants) v.rows.push(await measuredUp(kc, v, 100 + i));
      const load1 = loadAverage();
      console.log(`\nup profile: ${UPS} ups per variant, interleaved; load ${load0} → ${load1}`);
      for (const v of variants) report(v);
    } finally {
      for (const v of variants) await v.engine.close();
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
