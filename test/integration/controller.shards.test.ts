// Sharded active controllers end to end: three controllers in this process, 6 shards, a
// 5 s Lease, each replica with its own engine (one shared file backend) and its own API
// server connection through a proxy the test can freeze. Every replica works: each holds
// its share (2 shards), and each VirtualMCPServer is reconciled only by the holder of its
// shard. A replica whose connection hangs loses its shards to the survivors within two
// lease durations and kills its own Pulumi processes; a drained replica (stop) hands its
// shards over at once.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { createEngine } from "../../engine/stacks.js";
import { startController, type Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { shardLeaseName, shardOf, SHARD_GROUP_LABEL } from "../../controller/shards.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { FreezableProxy } from "../support/proxy.js";

const LEASE_MS = 5_000;
const LEASE = "vmcp-shards-test";
const SHARDS = 6;

interface Replica {
  id: string;
  controller: Controller;
  proxy: FreezableProxy;
  workDir: string;
}

describe("controller: 6 shards over three active replicas (real engine)", function () {
  this.timeout(300_000);
  let ns: string;
  let stateDir: string;
  const replicas: Replica[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const leases = () => adminKubeConfig().makeApiClient(CoordinationV1Api);
  /** One VirtualMCPServer per shard: every replica has work. */
  const names: string[] = [];
  const shardOfName = (name: string) => shardOf(`${ns}/${name}`, SHARDS);

  /** Holder of every shard Lease, as the API server has it. */
  async function holders(): Promise<string[]> {
    const out: string[] = [];
    for (let s = 0; s < SHARDS; s++) {
      const l = await leases().readNamespacedLease({ name: shardLeaseName(LEASE, s), namespace: ns });
      out.push(l.spec?.holderIdentity ?? "");
    }
    return out;
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

  async function startReplica(id: string): Promise<Replica> {
    const server = new URL(controlPlane().server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.listen();
    const kc = new KubeConfig();
    kc.loadFromString(
      controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${proxy.port}`),
    );
    const workDir = mkdtempSync(join(tmpdir(), `vmcp-shards-${id}-`));
    const engine = await createEngine({
      stateDir,
      workDir,
      passphrase: "test",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    const controller = await startController({
      kubeconfig: kc,
      namespace: ns,
      workers: 2,
      resyncMs: 3_600_000,
      engine,
      shards: SHARDS,
      leaseNamespace: ns,
      leaseName: LEASE,
      identity: id,
      leaseDurationMs: LEASE_MS,
      applyGraceMs: 5_000,
      healthChecks: false, // the backends are fake URLs: only configuration is under test
      log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }).with({
        replica: id,
      }),
    });
    return { id, controller, proxy, workDir };
  }

  before(async () => {
    ns = await newNamespace("shards");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-shards-state-"));
    for (let i = 0; names.length < SHARDS; i++) {
      const name = `gw-${i}`;
      if (!names.some((n) => shardOfName(n) === shardOfName(name))) names.push(name);
    }
    await k.create("MCPGroup", "tools", {});
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
    for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await startReplica(id));
  });

  after(async () => {
    for (const r of replicas) r.proxy.thaw();
    for (const r of replicas) {
      await r.controller.stop(30_000);
      await r.controller.engine.close();
      await r.proxy.close();
      rmSync(r.workDir, { recursive: true, force: true });
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("each replica takes its share (2 of 6 shards); each VirtualMCPServer is reconciled only by its shard's holder", async () => {
    const byReplica = await poll(
      "shards balanced 2/2/2",
      async () => {
        const h = await holders();
        const counts = replicas.map((r) => h.filter((x) => x === r.id).length);
        const local = replicas.map((r) => r.controller.shards!.held().length);
        return counts.every((c) => c === 2) && local.every((c) => c === 2) ? h : undefined;
      },
      60_000,
    );
    // What an operator sees: `kubectl get leases` names the holder of every shard.
    const kubeconfig = join(stateDir, "kubeconfig");
    writeFileSync(kubeconfig, controlPlane().kubeconfig);
    const table = execFileSync(
      "kubectl",
      ["--kubeconfig", kubeconfig, "-n", ns, "get", "leases", "-l", `${SHARD_GROUP_LABEL}=${LEASE}`],
      { encoding: "utf8" },
    );
    for (let s = 0; s < SHARDS; s++)
      assert.match(table, new RegExp(`${shardLeaseName(LEASE, s)}\\s+${byReplica[s]}\\s`), table);
    for (const r of replicas) assert.match(table, new RegExp(`${LEASE}-member-${r.id}\\s+${r.id}\\s`), table);

    for (const name of names)
      await k.create("VirtualMCPServer", name, {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
      });
    for (const name of names) await applied(name, /name: alpha/);
    for (const r of replicas) {
      const held = r.controller.shards!.held();
      const reconciled = [...r.controller.reconcileCounts.keys()];
      assert.ok(reconciled.length > 0 && r.controller.engine.processesStarted > 0, `${r.id} did work`);
      for (const key of reconciled)
        assert.ok(
          held.includes(shardOf(key, SHARDS)),
          `${r.id} reconciled ${key} of a shard it does not hold`,
        );
      for (const s of held) assert.equal(await r.controller.metrics.shardHeld.get({ shard: String(s) }), 1);
    }
    for (const name of names) {
      const by = replicas.filter((r) => r.controller.reconcileCounts.has(`${ns}/${name}`));
      assert.equal(by.length, 1, `${name} reconciled by ${by.map((r) => r.id).join(", ")}`);
    }
  });

  it("a replica whose API connection hangs: survivors take its shards within 2 lease durations and apply changes made meanwhile", async () => {
    const victim = replicas[0]!;
    const survivors = replicas.slice(1);
    const lost = victim.controller.shards!.held();
    for (const r of replicas) await r.controller.queue.idle();
    const t0 = Date.now();
    victim.proxy.freeze();
    const changed = names.filter((n) => lost.includes(shardOfName(n)));
    // Through the admin connection: the survivors see the change, the victim does not.
    for (const name of changed) await setTimeout_(name, "41s");
    await poll(
      "the victim's shards held by survivors",
      async () => {
        const h = await holders();
        return lost.every((s) => survivors.some((r) => r.id === h[s] && r.controller.shards!.holds(s)))
          ? true
          : undefined;
      },
      6 * LEASE_MS,
      50,
    );
    const takeoverMs = Date.now() - t0;
    console.log(`      shards taken over after the freeze: ${takeoverMs} ms (lease ${LEASE_MS} ms)`);
    assert.ok(takeoverMs <= 2 * LEASE_MS, `takeover after ${takeoverMs} ms > 2 lease durations`);
    assert.deepEqual(victim.controller.shards!.held(), [], "the victim gave its shards up");
    const victimProcesses = victim.controller.engine.processesStarted;
    for (const name of changed) await applied(name, /default: 41s/);
    assert.equal(victim.controller.engine.processesStarted, victimProcesses, "the victim ran nothing more");
    for (const s of lost)
      assert.equal(
        await victim.controller.metrics.shardHeld.get({ shard: String(s) }),
        0,
        `shard ${s} metric`,
      );
    for (const r of survivors) assert.equal(r.controller.shards!.held().length, 3, `${r.id} holds 3 shards`);
  });

  it("a drained replica (stop) hands its shards over at once; the last one then holds all 6", async () => {
    const [, drained, last] = replicas as [Replica, Replica, Replica];
    const moved = drained.controller.shards!.held();
    await drained.controller.queue.idle();
    const t0 = Date.now();
    await drained.controller.stop(30_000);
    await poll("the last replica holds every shard", () =>
      last.controller.shards!.held().length === SHARDS ? true : undefined,
    );
    const ms = Date.now() - t0;
    console.log(`      6 shards on the last replica ${ms} ms after the drain`);
    assert.ok(ms < 2 * LEASE_MS, `hand-over took ${ms} ms`);
    const name = names.find((n) => moved.includes(shardOfName(n)))!;
    await setTimeout_(name, "43s");
    await applied(name, /default: 43s/);
    assert.ok(last.controller.reconcileCounts.has(`${ns}/${name}`), "the last replica reconciled it");
  });
});
