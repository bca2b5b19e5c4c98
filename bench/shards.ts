// Sharded controllers on a shared backend (real local control plane, real PostgreSQL, the
// real Pulumi engine, each replica a `vmcpctl controller` CHILD process, as deployed):
//
//   node dist/bench/shards.js --vmcps 100 --replicas 3 --shards 6 --workers 2 --kill-at 0.5
//
// N VirtualMCPServers are created at once against R replicas sharing one postgres://
// backend; when the fraction --kill-at of them is Ready, the replica holding the most
// shards is SIGKILLed with everything it started (a node or OOM kill). Prints: the time
// until all are Ready, how long the dead replica's shards took to move, then the checks
// (one stack, one ConfigMap/Deployment/Service per VirtualMCPServer, nothing else; no lock
// left; no two updates of one stack overlapping in time, from the state's history), and
// the figures the paper model in docs/scaling.md starts from: CPU seconds of the replicas'
// process trees per Pulumi update, peak RSS, state bytes per stack, API server writes.
//
// Other flags: --lease 5s (--lease-duration), --timeout SECONDS (default 1800), --members 1.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { AppsV1Api, CoordinationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { installCrdsFromDir, startControlPlane } from "../localcluster/index.js";
import { shardLeaseName } from "../controller/shards.js";
import { ControllerProc } from "../test/support/controllerproc.js";
import { kube } from "../test/support/kube.js";
import { startPostgres } from "../test/support/postgres.js";
import { fileURLToPath } from "node:url";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..", "..");
const LEASE = "vmcp-operator";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** CPU seconds of a live process and its reaped children (utime+stime+cutime+cstime). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return [11, 12, 13, 14].reduce((s, i) => s + Number(x[i]), 0) / 100;
  } catch {
    return 0;
  }
}

function rssKb(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function hwmKb(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** RSS of a replica's whole tree: its process group plus the Pulumi plugins it tagged. */
function treeRssKb(c: ControllerProc): number {
  const pids = new Set([...c.group().map((p) => p.pid), ...c.pulumiLeft().map((p) => p.pid)]);
  return [...pids].reduce((s, p) => s + rssKb(p), 0);
}

/** Mutating requests the API server has served (apiserver_request_total), from its /metrics: all, and Leases. */
function apiWrites(kubeconfig: string): { all: number; leases: number } {
  const text = execFileSync("kubectl", ["--kubeconfig", kubeconfig, "get", "--raw", "/metrics"], {
    encoding: "utf8",
    maxBuffer: 256 * 2 ** 20,
  });
  const out = { all: 0, leases: 0 };
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$/gm)) {
    if (!/verb="(POST|PUT|PATCH|DELETE|APPLY)"/.test(m[1] ?? "")) continue;
    out.all += Number(m[2]);
    if (/resource="leases"/.test(m[1] ?? "")) out.leases += Number(m[2]);
  }
  return out;
}

interface Update {
  stack: string;
  kind: string;
  startTime: number;
  endTime: number;
  result: string;
}

async function main(): Promise<void> {
  const a = args();
  const n = Number(a.vmcps ?? 100);
  const replicas = Number(a.replicas ?? 3);
  const shards = Number(a.shards ?? 6);
  const workers = Number(a.workers ?? 2);
  const killAt = Number(a["kill-at"] ?? 0.5);
  const lease = a.lease ?? "5s";
  const members = Number(a.members ?? 1);
  const timeoutS = Number(a.timeout ?? 1800);
  const log = (...x: unknown[]) => console.error("[shards]", ...x);
  const plane = await startControlPlane({
    full: true,
    log: (...x: unknown[]) => console.error("[cluster]", ...x),
  });
  const kc = new KubeConfig();
  kc.loadFromString(plane.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const coord = kc.makeApiClient(CoordinationV1Api);
  const pg = await startPostgres({ name: "bench-shards" });
  const tmp = mkdtempSync(join(tmpdir(), "vmcp-bench-shards-"));
  const procs: ControllerProc[] = [];
  try {
    await installCrdsFromDir(kc, join(ROOT, "crds"));
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
    );
    const ns = `shards-${randomBytes(3).toString("hex")}`;
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const k = kube(kc, ns);
    await k.readyGroup("g");
    for (let i = 0; i < members; i++) await k.entry(`m${i}`, "g", `http://m${i}.example.test/mcp`);
    const writes0 = apiWrites(plane.kubeconfigPath);
    for (let r = 0; r < replicas; r++) {
      const logFile = join(tmp, `replica-${r}.log`);
      writeFileSync(logFile, "");
      procs.push(
        new ControllerProc({
          kubeconfig: plane.kubeconfigPath,
          namespace: ns,
          logLevel: "warn",
          args: [
            "--shards",
            String(shards),
            "--lease-namespace",
            ns,
            "--lease-duration",
            lease,
            "--workers",
            String(workers),
            "--resync",
            "1h",
          ],
          env: { PULUMI_BACKEND_URL: pg.url, ...pg.env, TMPDIR: tmp },
          onLine: (l) => writeFileSync(logFile, `${l}\n`, { flag: "a" }),
        }),
      );
    }
    const holders = async (): Promise<string[]> =>
      Promise.all(
        Array.from({ length: shards }, async (_, s) =>
          coord
            .readNamespacedLease({ name: shardLeaseName(LEASE, s), namespace: ns })
            .then((l) => l.spec?.holderIdentity ?? "")
            .catch(() => ""),
        ),
      );
    const share = Math.ceil(shards / replicas);
    for (;;) {
      const h = await holders();
      const counts = procs.map((p) => h.filter((x) => x.endsWith(`-${p.pid}`)).length);
      if (h.every((x) => x !== "") && counts.every((c) => c <= share)) break;
      await sleep(500);
    }
    log(`${replicas} replicas hold all ${shards} shards`);

    const t0 = performance.now();
    const names = Array.from({ length: n }, (_, i) => `v${String(i).padStart(4, "0")}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < names.length)
          await k.create("VirtualMCPServer", names[next++]!, {
            groupRef: { name: "g" },
            incomingAuth: { type: "anonymous" },
          });
      }),
    );
    const ready = async () =>
      (await k.list("VirtualMCPServer")).filter(
        (v) =>
          (v.status as { phase?: string } | undefined)?.phase === "Ready" &&
          (v.status as { observedGeneration?: number }).observedGeneration === v.metadata.generation,
      ).length;
    const cpu = new Map<number, number>();
    const peakTree = new Map<number, number>();
    const sample = () => {
      for (const p of procs)
        if (p.exitCode === null) {
          cpu.set(p.pid, cpuSeconds(p.pid));
          peakTree.set(p.pid, Math.max(peakTree.get(p.pid) ?? 0, treeRssKb(p)));
        }
    };
    let victim: ControllerProc | undefined;
    let killedAt = 0;
    let readyAtKill = 0;
    let moveS: number | undefined;
    let all: number | undefined;
    let orphansAtKill = 0;
    const deadline = t0 + timeoutS * 1000;
    while (performance.now() < deadline) {
      sample();
      const r = await ready();
      const t = (performance.now() - t0) / 1000;
      if (!victim && r >= n * killAt) {
        const h = await holders();
        victim = [...procs].sort(
          (x, y) =>
            h.filter((id) => id.endsWith(`-${y.pid}`)).length -
            h.filter((id) => id.endsWith(`-${x.pid}`)).length,
        )[0]!;
        const lost = h.flatMap((id, s) => (id.endsWith(`-${victim!.pid}`) ? [s] : []));
        readyAtKill = r;
        killedAt = performance.now();
        await victim.kill();
        // What a container's death would take with it: the plugins the CLI put in groups of their own.
        orphansAtKill = victim.pulumiLeft().length;
        await victim.killAndSweep();
        log(
          `t=${t.toFixed(1)} s: ${r} Ready; SIGKILLed replica ${victim.pid} holding shards ${lost.join(",")}`,
        );
        void (async () => {
          for (;;) {
            const hh = await holders();
            if (lost.every((s) => hh[s] !== "" && !hh[s]!.endsWith(`-${victim!.pid}`))) {
              moveS = (performance.now() - killedAt) / 1000;
              log(`its shards moved after ${moveS.toFixed(1)} s`);
              return;
            }
            await sleep(200);
          }
        })();
      }
      if (r >= n) {
        all = t;
        break;
      }
      await sleep(1000);
    }
    sample();
    const afterKillS = all !== undefined && killedAt ? all - (killedAt - t0) / 1000 : undefined;
    const w1 = apiWrites(plane.kubeconfigPath);
    const writes = w1.all - writes0.all;
    const leaseWrites = w1.leases - writes0.leases;

    // ---- checks -----------------------------------------------------------------------------
    const keys = (await pg.query("SELECT key, octet_length(data::text) FROM pulumi_state ORDER BY key")).map(
      (r) => [r[0]!, Number(r[1])] as const,
    );
    // .pulumi/stacks/[organization/]vmcp-operator/<stack>.json; history: …/history/…/<stack>/<file>
    const stackKeys = keys.filter(([key]) =>
      /(^|\/)\.pulumi\/stacks\/(?:[^/]+\/)?vmcp-operator\/[^/]+\.json$/.test(key),
    );
    const locks = keys.filter(([key]) => key.includes(".pulumi/locks/"));
    const stateBytes = keys.reduce((s, [, b]) => s + b, 0);
    const stackBytes = stackKeys.reduce((s, [, b]) => s + b, 0);
    const history: Update[] = [];
    for (const [key] of keys.filter(
      ([key]) => key.includes(".pulumi/history/") && key.endsWith(".history.json"),
    )) {
      const row = await pg.query(
        `SELECT data->>'data' FROM pulumi_state WHERE key = '${key.replace(/'/g, "''")}'`,
      );
      const u = JSON.parse(Buffer.from(row[0]?.[0] ?? "", "base64").toString("utf8")) as Omit<
        Update,
        "stack"
      >;
      history.push({ ...u, stack: key.split("/").at(-2) ?? "" });
    }
    const overlaps: string[] = [];
    const byStack = new Map<string, Update[]>();
    for (const u of history) byStack.set(u.stack, [...(byStack.get(u.stack) ?? []), u]);
    for (const [stack, us] of byStack) {
      us.sort((x, y) => x.startTime - y.startTime);
      for (let i = 1; i < us.length; i++)
        if (us[i]!.startTime < us[i - 1]!.endTime)
          overlaps.push(`${stack}: ${JSON.stringify(us.map((u) => [u.kind, u.startTime, u.endTime]))}`);
    }
    const cms = (await core.listNamespacedConfigMap({ namespace: ns })).items.filter((c) =>
      c.metadata?.name?.endsWith("-vmcp-config"),
    ).length;
    const deps = (
      await apps.listNamespacedDeployment({ namespace: ns, labelSelector: "app=virtualmcpserver" })
    ).items.length;
    const svcs = (await core.listNamespacedService({ namespace: ns, labelSelector: "app=virtualmcpserver" }))
      .items.length;
    const updates = history.filter((u) => u.kind === "update").length;
    const refreshes = history.filter((u) => u.kind === "refresh").length;
    const failed = history.filter((u) => u.result !== "succeeded").length;
    const cpuTotal = [...cpu.values()].reduce((s, c) => s + c, 0);

    console.log(
      `\n${n} VirtualMCPServers, ${replicas} replicas × ${workers} workers, ${shards} shards, lease ${lease}, postgres:// backend:\n`,
    );
    console.log("| measure | value |");
    console.log("|---|---|");
    console.log(`| all Ready after (s) | ${all?.toFixed(1) ?? `>${timeoutS}`} |`);
    console.log(`| Ready when one replica was SIGKILLed | ${readyAtKill} |`);
    console.log(`| its shards held by survivors after (s) | ${moveS?.toFixed(1) ?? "-"} |`);
    console.log(`| kill → all Ready (s) | ${afterKillS?.toFixed(1) ?? "-"} |`);
    console.log(`| throughput (Ready/min, whole run) | ${all ? ((n / all) * 60).toFixed(1) : "-"} |`);
    console.log(
      `| Pulumi updates / refreshes / failed (state history) | ${updates} / ${refreshes} / ${failed} |`,
    );
    console.log(`| stacks in the backend / locks left | ${stackKeys.length} / ${locks.length} |`);
    console.log(`| ConfigMaps / Deployments / Services | ${cms} / ${deps} / ${svcs} |`);
    console.log(`| stacks with overlapping updates | ${overlaps.length} |`);
    console.log(`| Pulumi plugins the killed replica left running (swept) | ${orphansAtKill} |`);
    console.log(
      `| CPU s, all replica trees (per update) | ${cpuTotal.toFixed(0)} (${(cpuTotal / Math.max(1, updates)).toFixed(2)}) |`,
    );
    console.log(
      `| peak tree RSS per replica (MiB) | ${[...peakTree.values()].map((k) => (k / 1024).toFixed(0)).join(", ")} |`,
    );
    console.log(
      `| controller VmHWM, survivors (MiB) | ${procs
        .filter((p) => p !== victim) // its exit may not be reaped yet: exitCode alone says nothing
        .map((p) => (hwmKb(p.pid) / 1024).toFixed(0))
        .join(", ")} |`,
    );
    console.log(
      `| state bytes: total / per stack checkpoint | ${stateBytes} / ${(stackBytes / Math.max(1, stackKeys.length)).toFixed(0)} |`,
    );
    console.log(
      `| API server writes during the run (per VirtualMCPServer) | ${writes} (${(writes / n).toFixed(1)}) |`,
    );
    console.log(
      `| of which Lease writes (per second of the run) | ${leaseWrites} (${(leaseWrites / Math.max(1, all ?? 1)).toFixed(2)}) |`,
    );
    console.log(
      `| load average at end | ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")} |`,
    );
    if (overlaps.length) console.log(`\noverlapping updates:\n${overlaps.join("\n")}`);
    const ok =
      all !== undefined &&
      stackKeys.length === n &&
      locks.length === 0 &&
      overlaps.length === 0 &&
      cms === n &&
      deps === n &&
      svcs === n;
    console.log(`\nchecks: ${ok ? "all passed" : "FAILED"}`);
    process.exitCode = ok ? 0 : 1;
  } finally {
    for (const p of procs) await p.killAndSweep().catch(() => undefined);
    await pg.stop();
    await plane.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
