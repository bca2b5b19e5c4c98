// Sharded active controllers end to end: three `vmcpctl controller --shards 6` processes
// (as deployed: one event loop each), a 5 s Lease, one shared file backend, each replica's
// API server connection (its informers, Leases and its Pulumi provider) through a proxy the
// test can freeze. Every replica works: each holds its share (2 shards), and each
// VirtualMCPServer is reconciled only by the holder of its shard. A replica whose
// connection hangs loses its shards to the survivors within two lease durations and kills
// its own Pulumi processes; a drained replica (SIGTERM) hands its shards over at once.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { shardLeaseName, shardOf, SHARD_GROUP_LABEL } from "../../controller/shards.js";
import { freePorts } from "../../localcluster/ports.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { ControllerProc, shardedReplicaArgs } from "../support/controllerproc.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { FreezableProxy } from "../support/proxy.js";

const LEASE_MS = 5_000;
const LEASE = "vmcp-operator";
const SHARDS = 6;

interface Replica {
  proc: ControllerProc;
  id: string;
  proxy: FreezableProxy;
  port: number;
}

/** Series of one metric from a replica's /metrics: labels text → value. */
async function series(r: Replica, name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+-]+)$`, "gm")))
    out.set(m[1]!, Number(m[2]));
  return out;
}

/** The shards a replica says it holds (vmcp_shard_held == 1). */
async function heldBy(r: Replica): Promise<number[]> {
  return [...(await series(r, "vmcp_shard_held"))]
    .filter(([, v]) => v === 1)
    .map(([l]) => Number(/shard="(\d+)"/.exec(l)?.[1]))
    .sort((a, b) => a - b);
}

/** The VirtualMCPServers whose backends a replica reports (vmcp_backends), with their count. */
async function backendsReported(r: Replica): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [labels, value] of await series(r, "vmcp_backends")) {
    const key = /vmcp="([^"]+)"/.exec(labels)?.[1] ?? "";
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** The shards a replica reconciled keys of (vmcp_shard_reconciles_total). */
async function reconciledShards(r: Replica): Promise<Set<number>> {
  return new Set(
    [...(await series(r, "vmcp_shard_reconciles_total"))].map(([l]) => Number(/shard="(\d+)"/.exec(l)?.[1])),
  );
}

describe("controller: 6 shards over three active replicas (vmcpctl processes, real engine)", function () {
  this.timeout(300_000);
  let ns: string;
  let dir: string;
  const replicas: Replica[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const leases = () => adminKubeConfig().makeApiClient(CoordinationV1Api);
  /** One VirtualMCPServer per shard: every replica has work. */
  const names: string[] = [];
  const shardOfName = (name: string) => shardOf(`${ns}/${name}`, SHARDS);

  async function holders(): Promise<string[]> {
    return Promise.all(
      Array.from({ length: SHARDS }, async (_, s) =>
        leases()
          .readNamespacedLease({ name: shardLeaseName(LEASE, s), namespace: ns })
          .then((l) => l.spec?.holderIdentity ?? "")
          .catch(() => ""),
      ),
    );
  }

  async function applied(name: string, expect: RegExp): Promise<void> {
    await poll(`${name} applied`, async () => {
      const o = await k.vmcp(name);
      const st = o.status ?? {};
      if (st.observedGeneration !== o.metadata.generation || !st.appliedHash) return undefined;
      if (st.appliedHash !== st.stackOutputs?.desiredHash) return undefined;
      const cm = await k.core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
      return expect.test(cm.data?.["config.yaml"] ?? "") ? true : undefined;
    });
  }

  const setTimeout_ = (name: string, t: string) =>
    k.patchSpec("VirtualMCPServer", name, { config: { operational: { timeouts: { default: t } } } });

  async function startReplica(i: number): Promise<Replica> {
    const server = new URL(controlPlane().server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.listen();
    const kubeconfig = join(dir, `replica-${i}.kubeconfig`);
    writeFileSync(
      kubeconfig,
      controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${proxy.port}`),
    );
    const [port] = await freePorts(1);
    const proc = new ControllerProc({
      kubeconfig,
      namespace: ns,
      stateDir: join(dir, "state"),
      logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
      args: shardedReplicaArgs({ shards: SHARDS, leaseNamespace: ns, leaseMs: LEASE_MS, metricsPort: port! }),
      env: { TMPDIR: dir },
      ...(process.env.VMCP_TEST_LOG ? { onLine: (l) => console.log(`      [replica ${i}] ${l}`) } : {}),
    });
    return { proc, id: `${hostname()}-${proc.pid}`, proxy, port: port! };
  }

  before(async () => {
    ns = await newNamespace("shards");
    dir = mkdtempSync(join(tmpdir(), "vmcp-shards-"));
    for (let i = 0; names.length < SHARDS; i++) {
      const name = `gw-${i}`;
      if (!names.some((n) => shardOfName(n) === shardOfName(name))) names.push(name);
    }
    await k.create("MCPGroup", "tools", {});
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
    for (let i = 0; i < 3; i++) replicas.push(await startReplica(i));
  });

  after(async () => {
    for (const r of replicas) r.proxy.thaw();
    for (const r of replicas) {
      if (r.proc.exitCode === null) await r.proc.terminate(60_000);
      await r.proc.killAndSweep();
      await r.proxy.close();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("each replica takes its share (2 of 6 shards); each VirtualMCPServer is reconciled only by its shard's holder", async () => {
    const byShard = await poll(
      "shards balanced 2/2/2",
      async () => {
        const h = await holders();
        const counts = replicas.map((r) => h.filter((x) => x === r.id).length);
        return counts.every((c) => c === 2) ? h : undefined;
      },
      90_000,
      250,
    );
    // What an operator sees: `kubectl get leases` names the holder of every shard and the members.
    const kubeconfig = join(dir, "admin.kubeconfig");
    writeFileSync(kubeconfig, controlPlane().kubeconfig);
    const table = execFileSync(
      "kubectl",
      ["--kubeconfig", kubeconfig, "-n", ns, "get", "leases", "-l", `${SHARD_GROUP_LABEL}=${LEASE}`],
      { encoding: "utf8" },
    );
    for (let s = 0; s < SHARDS; s++)
      assert.match(table, new RegExp(`${shardLeaseName(LEASE, s)}\\s+${byShard[s]}\\s`), table);
    for (const r of replicas) assert.match(table, new RegExp(`${LEASE}-member-\\S+\\s+${r.id}\\s`), table);

    for (const name of names)
      await k.create("VirtualMCPServer", name, {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
      });
    for (const name of names) await applied(name, /name: alpha/);
    for (const r of replicas) {
      const held = await heldBy(r);
      assert.deepEqual(
        held,
        byShard.flatMap((id, s) => (id === r.id ? [s] : [])),
        `${r.id}: vmcp_shard_held matches the Leases`,
      );
      const worked = await reconciledShards(r);
      assert.ok(worked.size > 0, `${r.id} reconciled something`);
      for (const s of worked)
        assert.ok(held.includes(s), `${r.id} reconciled keys of shard ${s}, which it does not hold`);
      // Each VirtualMCPServer's one backend is reported (and probed) by its shard's holder only.
      const mine = names.filter((n) => held.includes(shardOfName(n))).map((n) => `${ns}/${n}`);
      await poll(`${r.id} reports the backends of its shards only`, async () => {
        const reported = await backendsReported(r);
        return mine.every((key) => reported.get(key) === 1) && reported.size === mine.length
          ? true
          : undefined;
      });
    }
  });

  it("a replica whose API connection hangs: survivors take its shards within 2 lease durations, it kills its Pulumi processes, changes made meanwhile are applied", async () => {
    const victim = replicas[0]!;
    const survivors = replicas.slice(1);
    const lost = await heldBy(victim);
    assert.equal(lost.length, 2);
    const changed = names.filter((n) => lost.includes(shardOfName(n)));
    const t0 = Date.now();
    victim.proxy.freeze();
    // Through the admin connection: the survivors see the change, the victim does not. A
    // change made before the takeover: the victim's up of it (if any) hangs on its connection.
    for (const name of changed) await setTimeout_(name, "41s");
    await poll(
      "the victim's shards held by survivors",
      async () => {
        const h = await holders();
        return lost.every((s) => survivors.some((r) => r.id === h[s])) ? true : undefined;
      },
      6 * LEASE_MS,
      100,
    );
    const takeoverMs = Date.now() - t0;
    console.log(`      shards taken over after the freeze: ${takeoverMs} ms (lease ${LEASE_MS} ms)`);
    assert.ok(takeoverMs <= 2 * LEASE_MS, `takeover after ${takeoverMs} ms > 2 lease durations`);
    assert.deepEqual(await heldBy(victim), [], "the victim says it holds nothing (vmcp_shard_held)");
    assert.deepEqual(
      [...(await backendsReported(victim)).keys()].filter((key) => changed.some((n) => key === `${ns}/${n}`)),
      [],
      "the victim forgot (and stopped probing) the backends of the shards it lost",
    );
    await poll(
      "the victim's Pulumi processes gone",
      () => (victim.proc.pulumiLeft().length === 0 ? true : undefined),
      10_000,
    );
    for (const name of changed) await applied(name, /default: 41s/);
    // Balance settles once the survivors count two live replicas (the victim's member Lease
    // expires after the shard Leases it stopped renewing): 3 shards each, eventually.
    await poll(
      "the survivors balanced 3/3",
      async () => {
        const counts = await Promise.all(survivors.map(async (r) => (await heldBy(r)).length));
        return counts.every((n) => n === 3) ? true : undefined;
      },
      4 * LEASE_MS,
      250,
    );
  });

  it("a drained replica (SIGTERM) hands its shards over at once; the last one then holds all 6 and applies their changes", async () => {
    const [, drained, last] = replicas as [Replica, Replica, Replica];
    const moved = await heldBy(drained);
    const t0 = Date.now();
    const exit = await drained.proc.terminate(60_000);
    assert.equal(exit.code, 0, "a clean exit");
    await poll(
      "the last replica holds every shard",
      async () => ((await heldBy(last)).length === SHARDS ? true : undefined),
      4 * LEASE_MS,
      100,
    );
    const ms = Date.now() - t0;
    console.log(`      6 shards on the last replica ${ms} ms after SIGTERM`);
    assert.ok(ms < 2 * LEASE_MS, `hand-over took ${ms} ms`);
    const name = names.find((n) => moved.includes(shardOfName(n)))!;
    await setTimeout_(name, "43s");
    await applied(name, /default: 43s/);
    assert.ok((await reconciledShards(last)).has(shardOfName(name)), "the last replica reconciled it");
  });
});
