// Fencing: two replicas (`vmcpctl controller --shards 2` processes) race for a shard during
// an update, and the stack is never written by both. Replica A holds the shard and runs
// `pulumi up`, whose provider hangs on A's own connection (a frozen proxy: a partition).
// A's controller connection (Leases, informers) then hangs too: A must give the shard up and
// kill that up, B takes over, breaks the stale lock (its holder record names A's term, no
// longer the Lease's) and applies a newer spec. When A's connections thaw, what A's up had
// sent is released: had it survived, its older spec would land after B's. The proofs: the
// ConfigMap keeps B's spec, the state history has no two updates overlapping in time, and
// no manager wrote the objects after B.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { lockedStacksIn, PROJECT } from "../../engine/stacks.js";
import { parseHolder } from "../../engine/holder.js";
import { environValue, STACK_VAR } from "../../engine/orphans.js";
import { shardOf } from "../../controller/shards.js";
import { freePorts } from "../../localcluster/ports.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { ControllerProc } from "../support/controllerproc.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { FreezableProxy } from "../support/proxy.js";

const LEASE_MS = 5_000;
const SHARDS = 2;

interface Replica {
  proc: ControllerProc;
  id: string;
  /** The controller's own connection (informers, Leases, status). */
  control: FreezableProxy;
  /** The Pulumi provider's connection (the objects the stack writes). */
  provider: FreezableProxy;
  port: number;
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

async function metric(r: Replica, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} ([0-9.e+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

describe("controller: fencing, two replicas racing for a shard during an update (vmcpctl processes, real engine)", function () {
  this.timeout(300_000);
  let ns: string;
  let dir: string;
  const stateDir = () => join(dir, "state");
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
  const kubeconfigVia = (p: FreezableProxy, file: string): string => {
    writeFileSync(
      file,
      controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${p.port}`),
    );
    return file;
  };

  async function startReplica(i: number): Promise<Replica> {
    const [control, provider] = [await proxy(), await proxy()];
    const [port] = await freePorts(1);
    const proc = new ControllerProc({
      kubeconfig: kubeconfigVia(control, join(dir, `control-${i}.kubeconfig`)),
      namespace: ns,
      stateDir: stateDir(),
      logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
      args: [
        "--provider-kubeconfig",
        kubeconfigVia(provider, join(dir, `provider-${i}.kubeconfig`)),
        "--shards",
        String(SHARDS),
        "--lease-namespace",
        ns,
        "--lease-duration",
        `${LEASE_MS / 1000}s`,
        "--metrics-addr",
        `127.0.0.1:${port}`,
        "--resync",
        "1h",
      ],
      env: { TMPDIR: dir },
      ...(process.env.VMCP_TEST_LOG ? { onLine: (l) => console.log(`      [replica ${i}] ${l}`) } : {}),
    });
    return { proc, id: `${hostname()}-${proc.pid}`, control, provider, port: port! };
  }

  const held = async (r: Replica, shard: number) =>
    (await metric(r, "vmcp_shard_held", `shard="${shard}"`)) === 1;

  before(async () => {
    ns = await newNamespace("fencing");
    dir = mkdtempSync(join(tmpdir(), "vmcp-fencing-"));
    await k.create("MCPGroup", "tools", {});
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
    for (let i = 0; i < 2; i++) replicas.push(await startReplica(i));
  });

  after(async () => {
    for (const r of replicas) {
      r.control.thaw();
      r.provider.thaw();
    }
    for (const r of replicas) {
      if (r.proc.exitCode === null) await r.proc.terminate(60_000);
      await r.proc.killAndSweep();
      await r.control.close();
      await r.provider.close();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the replica that lost the shard's Lease killed its up first; the stack was written by one replica at a time", async () => {
    const [a, b] = replicas as [Replica, Replica];
    const shard = await poll(
      "one shard each",
      async () => {
        const [a0, a1, b0, b1] = [await held(a, 0), await held(a, 1), await held(b, 0), await held(b, 1)];
        return a0 !== a1 && b0 !== b1 && a0 !== b0 ? (a0 ? 0 : 1) : undefined;
      },
      90_000,
      250,
    );
    for (let i = 0; !name; i++) if (shardOf(`${ns}/gw-${i}`, SHARDS) === shard) name = `gw-${i}`;
    await k.create("VirtualMCPServer", name, {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    await poll("first apply", async () => ((await k.vmcp(name)).status?.appliedHash ? true : undefined));

    // A's next up hangs inside the provider, holding the stack's lock.
    a.provider.freeze();
    await setTimeout_("41s");
    const holder = await poll("A's up holds the stack lock", async () => {
      if (!(await lockedStacksIn(stateDir())).has(stack())) return undefined;
      const rec = parseHolder(
        readFileSync(join(stateDir(), ".pulumi", "vmcp-holders", `${stack()}.json`), "utf8"),
      );
      return rec?.identity === a.id && rec.op === "up" ? rec : undefined;
    });
    assert.equal(holder.lease, `${ns}/vmcp-operator-shard-${shard}`);
    assert.equal(holder.pid, a.proc.pid);
    assert.ok(stackProcesses(stack()).length > 0, "A's pulumi up is running");

    // Then A's own connection hangs: A must stop; B must take over and apply a newer spec.
    a.control.freeze();
    const linesAtFreeze = a.proc.lines.length;
    await setTimeout_("43s");
    await poll(
      "B holds the shard",
      () => held(b, shard).then((h) => (h ? true : undefined)),
      6 * LEASE_MS,
      100,
    );
    assert.equal(await held(a, shard), false, "A gave the shard up");
    assert.ok(
      (await metric(a, "vmcp_shard_fenced_processes_total", `shard="${shard}"`)) > 0,
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
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      assert.match(await config(), /default: 43s/, "the ConfigMap went back to A's older spec");
      await new Promise((r) => setTimeout(r, 250));
    }
    // A's hung up never completed: killed, it applied nothing while it did not hold the shard
    // (until A, thawed, may take the shard again in a new term).
    const afterFreeze = a.proc.lines.slice(linesAtFreeze); // (it keeps its last 5,000 lines)
    const retaken = afterFreeze.findIndex(
      (l) => l.includes('"msg":"shard acquired') && l.includes(`"shard":${shard},`),
    );
    const late = afterFreeze
      .slice(0, retaken < 0 ? undefined : retaken)
      .filter((l) => l.includes('"msg":"stack updated"') && l.includes(`"key":"${ns}/${name}"`));
    assert.deepEqual(late, [], "A's up completed after A lost the shard's Lease");
    const cm = await k.core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
    for (const f of cm.metadata?.managedFields ?? [])
      assert.ok(
        new Date(f.time ?? 0).getTime() <= appliedAt + 1_000,
        `${f.manager} wrote the ConfigMap at ${String(f.time)}, after B applied`,
      );
    // The state's history: updates one after another, never two at once; the last succeeded.
    const hist = join(stateDir(), ".pulumi", "history", PROJECT, stack());
    const updates = readdirSync(hist)
      .filter((f) => f.endsWith(".history.json"))
      .map(
        (f) =>
          JSON.parse(readFileSync(join(hist, f), "utf8")) as {
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
