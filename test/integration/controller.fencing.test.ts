// Fencing: two replicas race for a shard during an update, and the stack is never written
// by both. Replica A holds the shard and runs `pulumi up`, whose provider hangs on A's own
// connection (a frozen proxy: a partition). A's Lease connection then hangs too: A must
// give the shard up and kill that up before B may take over, B breaks the stale lock
// (its holder record names A's term, no longer the Lease's) and applies a newer spec.
// When A's connections thaw, what A's up had sent is released: had it survived, its older
// spec would land after B's. The proofs: the ConfigMap keeps B's spec, the state history
// has no two updates overlapping in time, and no manager wrote the objects after B.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { createEngine, lockedStacksIn, PROJECT } from "../../engine/stacks.js";
import { parseHolder } from "../../engine/holder.js";
import { environValue, STACK_VAR } from "../../engine/orphans.js";
import { startController, type Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { shardOf } from "../../controller/shards.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { FreezableProxy } from "../support/proxy.js";

const LEASE_MS = 5_000;
const LEASE = "vmcp-fencing-test";
const SHARDS = 2;

interface Replica {
  id: string;
  controller: Controller;
  /** The controller's own connection (informers, Leases, status). */
  control: FreezableProxy;
  /** The Pulumi provider's connection (the objects the stack writes). */
  provider: FreezableProxy;
  workDir: string;
}

/** Live processes that work on `stack` (the engine tags each CLI process and its plugins). */
function stackProcesses(stack: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (environValue(readFileSync(`/proc/${e}/environ`, "utf8"), STACK_VAR) === stack) out.push(Number(e));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

describe("controller: fencing, two replicas racing for a shard during an update (real engine)", function () {
  this.timeout(300_000);
  let ns: string;
  let stateDir: string;
  const replicas: Replica[] = [];
  const k = kube(adminKubeConfig, () => ns);
  let name = "";
  const stack = () => `${ns}.${name}`;
  const config = async () =>
    (await k.core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns })).data?.[
      "config.yaml"
    ] ?? "";
  const setTimeout_ = (t: string) =>
    k.patchSpec("VirtualMCPServer", name, { config: { operational: { timeouts: { default: t } } } });

  async function proxy(): Promise<FreezableProxy> {
    const server = new URL(controlPlane().server);
    const p = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
    await p.listen();
    return p;
  }
  const kubeconfigVia = (p: FreezableProxy) =>
    controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${p.port}`);

  async function startReplica(id: string): Promise<Replica> {
    const [control, provider] = [await proxy(), await proxy()];
    const workDir = mkdtempSync(join(tmpdir(), `vmcp-fencing-${id}-`));
    const providerKubeconfig = join(workDir, "provider.kubeconfig");
    writeFileSync(providerKubeconfig, kubeconfigVia(provider));
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigVia(control));
    const engine = await createEngine({
      stateDir,
      workDir,
      passphrase: "test",
      kubeconfig: providerKubeconfig,
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
      healthChecks: false,
      log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "error" }).with({
        replica: id,
      }),
    });
    return { id, controller, control, provider, workDir };
  }

  before(async () => {
    ns = await newNamespace("fencing");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-fencing-state-"));
    await k.create("MCPGroup", "tools", {});
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
    for (const id of ["replica-a", "replica-b"]) replicas.push(await startReplica(id));
  });

  after(async () => {
    for (const r of replicas) {
      r.control.thaw();
      r.provider.thaw();
    }
    for (const r of replicas) {
      await r.controller.stop(30_000);
      await r.controller.engine.close();
      await r.control.close();
      await r.provider.close();
      rmSync(r.workDir, { recursive: true, force: true });
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("the replica that lost the shard's Lease killed its up first; the stack was written by one replica at a time", async () => {
    const [a, b] = replicas as [Replica, Replica];
    const shard = await poll("one shard each", () =>
      a.controller.shards!.held().length === 1 && b.controller.shards!.held().length === 1
        ? a.controller.shards!.held()[0]
        : undefined,
    );
    for (let i = 0; !name; i++) if (shardOf(`${ns}/gw-${i}`, SHARDS) === shard) name = `gw-${i}`;
    await k.create("VirtualMCPServer", name, {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    await poll("first apply", async () => ((await k.vmcp(name)).status?.appliedHash ? true : undefined));
    await a.controller.queue.idle();

    // A's next up hangs inside the provider, holding the stack's lock.
    a.provider.freeze();
    await setTimeout_("41s");
    const holder = await poll("A's up holds the stack lock", async () => {
      if (!(await lockedStacksIn(stateDir)).has(stack())) return undefined;
      const text = readFileSync(join(stateDir, ".pulumi", "vmcp-holders", `${stack()}.json`), "utf8");
      const rec = parseHolder(text);
      return rec?.identity === a.id && rec.op === "up" ? rec : undefined;
    });
    assert.equal(holder.lease, `${ns}/${LEASE}-shard-${shard}`);
    assert.equal(holder.pid, process.pid);
    assert.ok(stackProcesses(stack()).length > 0, "A's pulumi up is running");

    // Then A's Lease connection hangs: A must stop; B must take over and apply a newer spec.
    a.control.freeze();
    await setTimeout_("43s");
    await poll(
      "B holds the shard",
      () => (b.controller.shards!.holds(shard) ? true : undefined),
      6 * LEASE_MS,
      50,
    );
    assert.equal(a.controller.shards!.holds(shard), false, "A gave the shard up");
    assert.ok(
      (await a.controller.metrics.shardFenced.get({ shard: String(shard) })) > 0,
      "A killed processes",
    );
    const st = await poll("B applied 43s", async () => {
      const o = await k.vmcp(name);
      const s = o.status ?? {};
      return s.observedGeneration === o.metadata.generation &&
        s.appliedHash === s.stackOutputs?.desiredHash &&
        /default: 43s/.test(await config())
        ? s
        : undefined;
    });
    const appliedAt = Date.now();
    assert.deepEqual(stackProcesses(stack()), [], "no process of A's up is left");

    // Release everything A's connections held back; a surviving up would now write 41s.
    a.control.thaw();
    a.provider.thaw();
    await poll("A renews its member Lease again", async () =>
      b.controller.shards!.liveReplicas === 2 ? true : undefined,
    );
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      assert.match(await config(), /default: 43s/, "the ConfigMap went back to A's older spec");
      await new Promise((r) => setTimeout(r, 250));
    }
    const cm = await k.core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
    for (const f of cm.metadata?.managedFields ?? [])
      assert.ok(
        new Date(f.time ?? 0).getTime() <= appliedAt + 1_000,
        `${f.manager} wrote the ConfigMap at ${String(f.time)}, after B applied`,
      );
    // The state's history: updates one after another, never two at once; the last is B's.
    const dir = join(stateDir, ".pulumi", "history", PROJECT, stack());
    const updates = readdirSync(dir)
      .filter((f) => f.endsWith(".history.json"))
      .map(
        (f) =>
          JSON.parse(readFileSync(join(dir, f), "utf8")) as {
            kind: string;
            startTime: number;
            endTime: number;
            result: string;
          },
      )
      .sort((x, y) => x.startTime - y.startTime);
    for (let i = 1; i < updates.length; i++)
      assert.ok(
        updates[i]!.startTime >= updates[i - 1]!.endTime,
        `overlapping updates: ${JSON.stringify(updates.map((u) => [u.kind, u.startTime, u.endTime, u.result]))}`,
      );
    assert.equal(updates.at(-1)?.result, "succeeded");
    assert.equal(st.appliedHash, st.stackOutputs?.desiredHash);
  });
});
