// Probe benchmark: N real loopback MCP endpoints (hosted by path on a few HTTP servers in
// a child process, so the numbers below are the prober's alone), probed by the health
// monitor at an interval. Prints, per interval window: probes done, CPU time
// (process.cpuUsage, user+system), CPU per probe, % of one core, wall time of the window,
// RSS and heap; then the median % of a core over the cycles (the issue 13 goal's figure:
// 1,000 backends every 30 s), probe latency percentiles, the statuses seen and the load average.
//
//   node [--expose-gc] dist/bench/probe.js [--n 1000] [--interval 30s] [--cycles 3] [--concurrency 32]
//                            [--servers 4] [--tools 10] [--page-size 0]
//                            [--flavour streamable-http|sse|stateless|mixed] [--relist 5m]
// --relist: the monitor's relistIntervalMs (default its own, 5 min; 0s = list at every probe).
import { fork } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseDurationMs } from "../api/vmcpconfig.js";
import { HealthMonitor, type MonitoredBackend } from "../health/monitor.js";
import { probe, type ProbeResult } from "../health/probe.js";
import { startMcpServer, type Flavour } from "../samples/mcpservers.js";

function args(): Record<string, string> {
  const out: Record<string, string> = {};
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const k = a[i]!;
    if (k.startsWith("--"))
      out[k.slice(2)] = a[i + 1]?.startsWith("--") || a[i + 1] === undefined ? "true" : a[++i]!;
  }
  return out;
}

interface Served {
  flavour: Flavour;
  url: string;
}

/** Child: host the endpoints, print their URLs, run until killed. */
async function serve(
  n: number,
  servers: number,
  tools: number,
  pageSize: number,
  flavour: string,
): Promise<void> {
  const flavours: Flavour[] =
    flavour === "mixed" ? ["streamable-http", "sse", "stateless"] : [flavour as Flavour];
  const out: Served[] = [];
  for (let s = 0; s < servers; s++) {
    const f = flavours[s % flavours.length]!;
    const endpoints: Record<string, { tools: number; resources: number; pageSize?: number }> = {};
    for (let i = s; i < n; i += servers)
      endpoints[`/b${i}`] = { tools, resources: 1, ...(pageSize ? { pageSize } : {}) };
    const server = await startMcpServer({ flavour: f, endpoints });
    for (const path of Object.keys(endpoints)) out.push({ flavour: f, url: server.url(path) });
  }
  process.send?.(out);
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;
}

const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const a = args();
  const n = Number(a.n ?? 1000);
  const servers = Number(a.servers ?? 4);
  const tools = Number(a.tools ?? 10);
  const pageSize = Number(a["page-size"] ?? 0);
  const flavour = a.flavour ?? "streamable-http";
  if (a.serve) return serve(n, servers, tools, pageSize, flavour);

  const intervalMs = parseDurationMs(a.interval ?? "30s") ?? 30_000;
  const cycles = Number(a.cycles ?? 3);
  const concurrency = Number(a.concurrency ?? 32);
  const relist = a.relist !== undefined ? parseDurationMs(a.relist) : undefined;

  const child = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), "--serve"], {
    stdio: "inherit",
  });
  const served = await new Promise<Served[]>((resolve, reject) => {
    child.once("message", (m) => resolve(m as Served[]));
    child.once("exit", (code) => reject(new Error(`server process exited (${code})`)));
  });
  console.log(
    `bench/probe: ${n} endpoints (${flavour}, ${tools} tools each${pageSize ? `, ${pageSize} per page` : ""}) on ${servers} servers in a child process; ` +
      `interval ${intervalMs} ms, concurrency ${concurrency}, ${cycles} cycles, re-list ${relist ?? "default"}; node ${process.version}`,
  );

  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const problems: Record<string, number> = {};
  let done = 0;
  const monitor = new HealthMonitor({
    egress: { allowLoopback: true }, // the benchmark's servers listen on 127.0.0.1
    concurrency,
    startSpreadMs: intervalMs,
    ...(relist !== undefined ? { relistIntervalMs: relist } : {}),
    probe: async (t, o) => {
      const r: ProbeResult = await probe(t, o);
      done++;
      latencies.push(r.latencyMs);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status === "unavailable") problems[r.message] = (problems[r.message] ?? 0) + 1;
      return r;
    },
  });
  const backends: MonitoredBackend[] = served.map((s, i) => ({
    name: `b${i}`,
    url: s.url,
    transport: s.flavour === "sse" ? "sse" : "streamable-http",
  }));
  // 10 VirtualMCPServers of n/10 backends each, like a real cluster
  const per = Math.ceil(n / 10);
  const rss0 = process.memoryUsage();
  for (let v = 0; v < 10; v++)
    monitor.update(
      `bench/v${v}`,
      backends.slice(v * per, (v + 1) * per),
      { healthCheckInterval: `${intervalMs}ms`, healthCheckTimeout: "10s" },
      () => ({ type: "none" }),
    );

  const load = (): string =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
  const load0 = load();
  const cores: number[] = [];
  const perProbe: number[] = [];
  console.log("cycle  probes  cpu_ms  cpu_ms/probe  core_%  wall_ms  rss_mb  heap_mb");
  for (let c = 1; c <= cycles; c++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const d0 = done;
    await new Promise((r) => setTimeout(r, intervalMs));
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const probes = done - d0;
    // with --expose-gc, measure live memory rather than garbage not yet collected
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    const wallMs = performance.now() - t0;
    cores.push((100 * cpuMs) / wallMs);
    if (probes) perProbe.push(cpuMs / probes);
    console.log(
      `${String(c).padStart(5)}  ${String(probes).padStart(6)}  ${cpuMs.toFixed(0).padStart(6)}  ${(probes ? cpuMs / probes : 0).toFixed(2).padStart(12)}  ${cores[cores.length - 1]!.toFixed(1).padStart(6)}  ${wallMs.toFixed(0).padStart(7)}  ${mb(m.rss).padStart(6)}  ${mb(m.heapUsed).padStart(7)}`,
    );
  }
  await monitor.stop();
  const sorted = [...latencies].sort((x, y) => x - y);
  console.log(
    `latency ms: p50 ${pct(sorted, 50)}  p90 ${pct(sorted, 90)}  p99 ${pct(sorted, 99)}  max ${sorted[sorted.length - 1] ?? 0}`,
  );
  console.log(`statuses: ${JSON.stringify(statuses)}`);
  if (Object.keys(problems).length) console.log(`unavailable because: ${JSON.stringify(problems)}`);
  console.log(`memory before monitoring: rss ${mb(rss0.rss)} MB, heap ${mb(rss0.heapUsed)} MB`);
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  console.log(
    `median over ${cycles} cycles: ${median(cores).toFixed(1)} % of a core, ${median(perProbe).toFixed(2)} CPU ms per probe ` +
      `(${n} backends every ${intervalMs} ms); load average ${load0} → ${load()}`,
  );
  child.kill();
}

await main();
