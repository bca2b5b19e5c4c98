// Leader election end to end: three controllers in this process, each with its own
// engine (one shared state dir, as replicas sharing a backend) and its own connection to
// the API server (a TCP proxy the test can freeze: a partitioned or hung leader), a 3 s Lease.
// Exactly one of them runs reconciles and Pulumi; when the leader stops renewing another
// takes over within two lease durations and applies what changed meanwhile; a graceful
// stop hands over at once.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { createEngine } from "../../engine/stacks.js";
import { startController, type Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import type { Status } from "../../controller/status.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const LEASE_MS = 3_000;
const LEASE = "vmcp-operator-test";

/**
 * A TCP proxy in front of the API server that can freeze: every connection, open or new,
 * stays open but nothing passes any more (a partition, or an API server that hangs).
 * Requests neither fail nor return, the hardest case for a leader that must give up in time.
 */
class FreezableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private frozen = false;
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<void> {
    this.server = createServer((client) => {
      this.track(client);
      if (this.frozen) return; // accepted, never answered
      const upstream = connect(this.target.port, this.target.host);
      this.track(upstream);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
    s.on("error", () => s.destroy());
  }

  freeze(): void {
    this.frozen = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = undefined;
  }
}

interface Replica {
  id: string;
  controller: Controller;
  proxy: FreezableProxy;
  workDir: string;
  lost: number;
}

describe("controller: leader election with three replicas (real engine)", function () {
  this.timeout(300_000);
  let ns: string;
  let stateDir: string;
  const replicas: Replica[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const { core } = k;
  const leases = () => adminKubeConfig().makeApiClient(CoordinationV1Api);
  const vmcp = () => k.vmcp("gw");
  const config = async () =>
    (await core().readNamespacedConfigMap({ name: "gw-vmcp-config", namespace: ns })).data?.["config.yaml"] ??
    "";
  const setTimeout_ = (t: string) =>
    k.patchSpec("VirtualMCPServer", "gw", { config: { operational: { timeouts: { default: t } } } });
  const leaders = () => replicas.filter((r) => r.controller.leader?.isLeader);
  const holder = async () =>
    (await leases().readNamespacedLease({ name: LEASE, namespace: ns })).spec?.holderIdentity ?? "";

  /** Waits until gw's status shows generation `gen` applied and its ConfigMap holds `expect`. */
  async function applied(gen: number, expect: RegExp): Promise<Status> {
    return poll(`generation ${gen} applied`, async () => {
      const o = await vmcp();
      const st = o.status ?? {};
      return st.observedGeneration === gen &&
        st.appliedHash &&
        st.appliedHash === st.stackOutputs?.desiredHash &&
        expect.test(await config())
        ? st
        : undefined;
    });
  }

  async function startReplica(id: string): Promise<Replica> {
    const server = new URL(controlPlane().server);
    const proxy = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.listen();
    const kc = new KubeConfig();
    kc.loadFromString(
      controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${proxy.port}`),
    );
    const workDir = mkdtempSync(join(tmpdir(), `vmcp-leader-${id}-`));
    const engine = await createEngine({
      stateDir,
      workDir,
      passphrase: "test",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    const r: Replica = { id, proxy, workDir, lost: 0, controller: undefined as unknown as Controller };
    r.controller = await startController({
      kubeconfig: kc,
      namespace: ns,
      workers: 2,
      resyncMs: 3_600_000,
      engine,
      leaderElect: true,
      leaseNamespace: ns,
      leaseName: LEASE,
      identity: id,
      leaseDurationMs: LEASE_MS,
      applyGraceMs: 5_000,
      healthChecks: false, // the backends are fake URLs: only configuration is under test
      onLostLeadership: () => r.lost++,
      log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "error" }).with({
        replica: id,
      }),
    });
    return r;
  }

  before(async () => {
    ns = await newNamespace("leader");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-leader-state-"));
    await k.create("MCPGroup", "tools", {});
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
    for (const id of ["replica-a", "replica-b", "replica-c"]) replicas.push(await startReplica(id));
  });

  after(async () => {
    // Standbys first, so that stopping them causes no takeover.
    const order = [...replicas].sort(
      (a, b) =>
        Number(a.controller.leader?.isLeader ?? false) - Number(b.controller.leader?.isLeader ?? false),
    );
    for (const r of order) {
      await r.controller.stop(30_000);
      await r.controller.engine.close();
      await r.proxy.close();
      rmSync(r.workDir, { recursive: true, force: true });
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("exactly one replica leads; only its engine starts Pulumi processes", async () => {
    const leader = await poll("a leader", () => (leaders().length === 1 ? leaders()[0] : undefined));
    assert.equal(await holder(), leader.id);
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    await applied(1, /name: alpha/);
    await poll("gw Ready", async () => ((await vmcp()).status?.phase === "Ready" ? true : undefined));
    // Several lease durations have passed: still the same single leader.
    assert.deepEqual(
      leaders().map((r) => r.id),
      [leader.id],
    );
    assert.equal(await holder(), leader.id);
    assert.ok(leader.controller.engine.processesStarted > 0, "the leader ran Pulumi");
    assert.ok((leader.controller.reconcileCounts.get(`${ns}/gw`) ?? 0) > 0, "the leader reconciled gw");
    for (const r of replicas.filter((x) => x !== leader)) {
      assert.equal(r.controller.engine.processesStarted, 0, `${r.id} started no Pulumi process`);
      assert.equal(r.controller.reconcileCounts.size, 0, `${r.id} ran no reconcile`);
      assert.equal(await r.controller.metrics.isLeader.get(), 0);
      assert.ok(r.controller.router.keys().includes(`${ns}/gw`), `${r.id}'s cache is warm (it sees gw)`);
    }
    assert.equal(await leader.controller.metrics.isLeader.get(), 1);
  });

  it("the leader's API server connection hangs: another takes over within 2 lease durations and applies a change made meanwhile", async () => {
    const old = leaders()[0]!;
    await old.controller.queue.idle();
    const oldProcesses = old.controller.engine.processesStarted;
    const t0 = Date.now();
    old.proxy.freeze();
    await setTimeout_("45s");
    const gen = (await vmcp()).metadata.generation;
    let overlap = false;
    const next = await poll(
      "a new leader",
      () => {
        const ls = leaders();
        if (ls.length > 1) overlap = true;
        return ls.find((r) => r !== old);
      },
      4 * LEASE_MS,
      50,
    );
    const takeoverMs = Date.now() - t0;
    console.log(`      takeover after the freeze: ${takeoverMs} ms (lease ${LEASE_MS} ms)`);
    assert.ok(!overlap, "never two leaders at once (as seen by this process)");
    assert.ok(
      takeoverMs <= 2 * LEASE_MS,
      `takeover after ${takeoverMs} ms, more than 2 lease durations (${2 * LEASE_MS} ms)`,
    );
    assert.equal(old.controller.leader?.isLeader, false, "the old leader gave up");
    assert.equal(old.lost, 1, "the old leader was told it lost leadership");
    assert.equal(await holder(), next.id);
    const st = await applied(gen, /default: 45s/);
    assert.equal(st.phase === "Ready" || st.phase === "Pending", true, `phase ${st.phase}`);
    assert.ok(next.controller.engine.processesStarted > 0, "the new leader ran Pulumi");
    assert.equal(old.controller.engine.processesStarted, oldProcesses, "the old leader ran nothing more");
    const third = replicas.find((r) => r !== old && r !== next)!;
    assert.equal(third.controller.engine.processesStarted, 0, `${third.id} still ran nothing`);
  });

  it("a graceful stop releases the lease: the standby takes over at once and applies the next change", async () => {
    const current = leaders()[0]!;
    const standby = replicas.find((r) => r !== current && r.lost === 0)!;
    await current.controller.queue.idle();
    const t0 = Date.now();
    await current.controller.stop(30_000);
    await setTimeout_("50s");
    const gen = (await vmcp()).metadata.generation;
    await poll(
      "the standby leads",
      () => (standby.controller.leader?.isLeader ? true : undefined),
      4 * LEASE_MS,
      50,
    );
    const takeoverMs = Date.now() - t0;
    console.log(`      takeover after a graceful stop: ${takeoverMs} ms`);
    assert.ok(takeoverMs < LEASE_MS, `released lease taken over after ${takeoverMs} ms (< 1 lease duration)`);
    await applied(gen, /default: 50s/);
    assert.ok(standby.controller.engine.processesStarted > 0, `${standby.id} ran Pulumi`);
  });
});
