// Fencing: two replicas (`vmcpctl controller --shards 2` processes) race for a shard during
// an update, and the stack is never written by both. Replica A holds the shard and runs
// `pulumi up`; its provider reaches the API server through a gate that holds the apply of
// the stack's ConfigMap, so the up stops there, its lock taken, and the test sees it held
// (no timing guess: the request sits at the gate, its client connected). Only then is A's
// own connection (Leases, informers) frozen: A must give the shard up and kill that up
// before B may take the shard over, break the stale lock (its holder record names A's
// term, no longer the Lease's) and apply a newer spec. Then the gate opens and A's
// connection thaws: had A's up survived, its older spec would land after B's. The proofs:
// A's provider died before B held the Lease, nothing A's up sent reached the API server,
// the ConfigMap keeps B's spec, no manager wrote the objects after B, and the state's
// history has no two updates overlapping in time. Run on the file backend and on PostgreSQL
// (where the lock and the history are rows): the holder record lives on the Lease for both.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { lockedStacksIn, PROJECT } from "../../engine/stacks.js";
import { startPostgres } from "../support/postgres.js";
import { environValue, STACK_VAR } from "../../engine/orphans.js";
import { holdersOf } from "../../controller/holders.js";
import { configMapName, deploymentName } from "../../program/names.js";
import { shardLeaseName, shardOf } from "../../controller/shards.js";
import { freePorts } from "../../localcluster/ports.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { ControllerProc, shardedReplicaArgs, TAG_VAR } from "../support/controllerproc.js";
import { GateProxy, type HeldRequest } from "../support/gateproxy.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { FreezableProxy } from "../support/proxy.js";

const LEASE_MS = 5_000;
const LEASE = "vmcp-operator";
const SHARDS = 2;

interface Replica {
  proc: ControllerProc;
  id: string;
  /** The controller's own connection (informers, Leases, status). */
  control: FreezableProxy;
  /** The Pulumi provider's connection (the objects the stack writes), when gated. */
  gate?: GateProxy;
  port: number;
}

/** Live processes `r` started for `stack` (the engine tags each CLI process and its plugins). */
function stackProcesses(r: Replica, stack: string): { pid: number; argv: string[] }[] {
  const out: { pid: number; argv: string[] }[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const environ = readFileSync(`/proc/${e}/environ`, "utf8");
      if (environValue(environ, STACK_VAR) !== stack || environValue(environ, TAG_VAR) !== r.proc.tag)
        continue;
      const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(e), argv });
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

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface Update {
  kind: string;
  startTime: number;
  endTime: number;
  result: string;
}

/** A state backend as the test sees it: what the replicas are given, a stack's lock and history. */
interface Backend {
  /** --state-dir, or env (PULUMI_BACKEND_URL and credentials) for the replicas. */
  stateDir?: string;
  env: Record<string, string>;
  locked(stack: string): Promise<boolean>;
  history(stack: string): Promise<Update[]>;
  stop(): Promise<void>;
}

async function fileBackend(dir: string): Promise<Backend> {
  const stateDir = join(dir, "state");
  return {
    stateDir,
    env: {},
    locked: async (stack) => (await lockedStacksIn(stateDir)).has(stack),
    history: async (stack) => {
      const hist = join(stateDir, ".pulumi", "history", PROJECT, stack);
      return readdirSync(hist)
        .filter((f) => f.endsWith(".history.json"))
        .map((f) => JSON.parse(readFileSync(join(hist, f), "utf8")) as Update);
    },
    stop: async () => {},
  };
}

async function postgresBackend(): Promise<Backend> {
  const pg = await startPostgres({ name: "fencing" });
  // One row per file: key = its path, data = {"data": <base64 of its bytes>}.
  const rows = async (like: string) =>
    await pg.query(
      `SELECT key, data->>'data' FROM pulumi_state WHERE key LIKE '${like.replace(/'/g, "''")}' ORDER BY key`,
    );
  return {
    env: { PULUMI_BACKEND_URL: pg.url, ...pg.env },
    locked: async (stack) => (await rows(`%.pulumi/locks/%${stack}/%`)).length > 0,
    history: async (stack) =>
      (await rows(`%.pulumi/history/${PROJECT}/${stack}/%.history.json`)).map(
        (r) => JSON.parse(Buffer.from(r[1] ?? "", "base64").toString("utf8")) as Update,
      ),
    stop: () => pg.stop(),
  };
}

fencingSuite("file backend", fileBackend);
fencingSuite("PostgreSQL backend (real server)", () => postgresBackend());

function fencingSuite(backendName: string, makeBackend: (dir: string) => Promise<Backend>): void {
  describe(`controller: fencing, two replicas racing for a shard during an update (vmcpctl processes, real engine, ${backendName})`, function () {
    this.timeout(180_000);
    let ns: string;
    let dir: string;
    let backend: Backend;
    const replicas: Replica[] = [];
    const k = kube(adminKubeConfig, () => ns);
    const leases = () => adminKubeConfig().makeApiClient(CoordinationV1Api);
    let name = "";
    const stack = () => `${ns}.${name}`;
    const config = async () =>
      (await k.core().readNamespacedConfigMap({ name: configMapName(name), namespace: ns })).data?.[
        "config.yaml"
      ] ?? "";
    const setTimeout_ = (t: string) =>
      k.patchSpec("VirtualMCPServer", name, { config: { operational: { timeouts: { default: t } } } });
    const shardLease = (shard: number) =>
      leases().readNamespacedLease({ name: shardLeaseName(LEASE, shard), namespace: ns });

    async function applied(expect: RegExp): Promise<void> {
      await poll(`${name} applied (${String(expect)})`, async () => {
        const o = await k.vmcp(name);
        const s = o.status ?? {};
        if (s.observedGeneration !== o.metadata.generation || !s.appliedHash) return undefined;
        if (s.appliedHash !== s.stackOutputs?.desiredHash) return undefined;
        return expect.test(await config()) ? true : undefined;
      });
    }

    async function startReplica(i: number, gated: boolean): Promise<Replica> {
      const server = new URL(controlPlane().server);
      const control = new FreezableProxy({ host: server.hostname, port: Number(server.port) });
      await control.listen();
      const controlKubeconfig = join(dir, `control-${i}.kubeconfig`);
      writeFileSync(
        controlKubeconfig,
        controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${control.port}`),
      );
      let gate: GateProxy | undefined;
      const providerArgs: string[] = [];
      if (gated) {
        gate = new GateProxy({
          server: controlPlane().server,
          caPem: controlPlane().caPem,
          token: controlPlane().token,
        });
        await gate.listen();
        const file = join(dir, `provider-${i}.kubeconfig`);
        writeFileSync(file, gate.kubeconfig());
        providerArgs.push("--provider-kubeconfig", file);
      }
      const [port] = await freePorts(1);
      const proc = new ControllerProc({
        kubeconfig: controlKubeconfig,
        namespace: ns,
        ...(backend.stateDir ? { stateDir: backend.stateDir } : {}),
        logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
        args: [
          ...providerArgs,
          ...shardedReplicaArgs({
            shards: SHARDS,
            leaseNamespace: ns,
            leaseMs: LEASE_MS,
            metricsPort: port!,
          }),
        ],
        env: { TMPDIR: dir, ...backend.env },
        ...(process.env.VMCP_TEST_LOG ? { onLine: (l) => console.log(`      [replica ${i}] ${l}`) } : {}),
      });
      return { proc, id: `${hostname()}-${proc.pid}`, control, ...(gate ? { gate } : {}), port: port! };
    }

    const held = async (r: Replica, shard: number) =>
      (await metric(r, "vmcp_shard_held", `shard="${shard}"`)) === 1;

    before(async () => {
      ns = await newNamespace("fencing");
      dir = mkdtempSync(join(tmpdir(), "vmcp-fencing-"));
      backend = await makeBackend(dir);
      await k.create("MCPGroup", "tools", {});
      await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
      replicas.push(await startReplica(0, true), await startReplica(1, false));
    });

    after(async () => {
      for (const r of replicas) {
        r.control.thaw();
        r.gate?.release();
      }
      for (const r of replicas) {
        if (r.proc.exitCode === null) await r.proc.terminate(60_000);
        await r.proc.killAndSweep();
        await r.control.close();
        await r.gate?.close();
      }
      await backend?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("the replica that lost the shard's Lease killed its up before the other took it; the stack was written by one replica at a time", async () => {
      const [a, b] = replicas as [Replica, Replica];
      const gate = a.gate!;
      const shard = await poll(
        "one shard each",
        async () => {
          const [a0, a1, b0, b1] = [await held(a, 0), await held(a, 1), await held(b, 0), await held(b, 1)];
          return a0 !== a1 && b0 !== b1 && a0 !== b0 ? (a0 ? 0 : 1) : undefined;
        },
        60_000,
        100,
      );
      for (let i = 0; !name; i++) if (shardOf(`${ns}/gw-${i}`, SHARDS) === shard) name = `gw-${i}`;
      await k.create("VirtualMCPServer", name, {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
      });
      await applied(/name: alpha/);

      // A's next up stops inside its provider: the apply of the ConfigMap (not its dry run) waits at the gate.
      const cmPath = `/api/v1/namespaces/${ns}/configmaps/${configMapName(name)}`;
      const heldApply: Promise<HeldRequest> = gate.hold(
        (method, path) => method === "PATCH" && path.startsWith(cmPath) && !/[?&]dryRun=/.test(path),
      );
      await setTimeout_("41s");
      const request = await within(60_000, "A's provider to apply the ConfigMap", heldApply).catch(
        (err: unknown) => {
          throw new Error(`${String(err)}; A's provider sent: ${gate.seen.slice(-40).join(", ")}`);
        },
      );
      // The hold is in place: A's up runs (its CLI process for this stack), waits on that
      // request, holds the stack's lock, and its holder record on the shard's Lease names A's term.
      const up = stackProcesses(a, stack()).find(
        (p) => /(^|\/)pulumi$/.test(p.argv[0] ?? "") && p.argv.includes("up"),
      );
      assert.ok(up, `A's pulumi up is running: ${JSON.stringify(stackProcesses(a, stack()))}`);
      assert.ok(await backend.locked(stack()), "A's up holds the stack's lock");
      const leaseA = await shardLease(shard);
      const record = holdersOf(leaseA).get(stack());
      assert.equal(record?.identity, a.id, "the holder record names A");
      assert.equal(record?.op, "up");
      assert.equal(record?.pid, a.proc.pid);
      assert.equal(record?.transitions, leaseA.spec?.leaseTransitions, "in A's term");
      assert.equal(gate.heldAndWaiting(), request, "A's provider still waits on the held request");

      // Then A's own connection hangs: A must stop; B must take over and apply a newer spec.
      const linesAtFreeze = a.proc.lines.length;
      a.control.freeze();
      const frozenAt = Date.now();
      await setTimeout_("43s");
      const leaseB = await poll(
        "B holds the shard's Lease",
        async () => {
          const l = await shardLease(shard);
          return l.spec?.holderIdentity === b.id ? l : undefined;
        },
        6 * LEASE_MS,
        50,
      );
      const takenAt = new Date(leaseB.spec!.acquireTime!).getTime();
      // A kills synchronously, then logs (its clock, this machine's, like B's acquireTime):
      // the order is read from the replicas' own timestamps, not from this process's event loop.
      const killLine = a.proc.lines
        .slice(linesAtFreeze)
        .find((l) => l.includes('"msg":"killed Pulumi processes of a lost shard"'));
      const killedAt = killLine ? Date.parse((JSON.parse(killLine) as { time: string }).time) : NaN;
      console.log(
        `      after the freeze: A killed its up at +${killedAt - frozenAt} ms, B took the Lease at +${takenAt - frozenAt} ms`,
      );
      assert.ok(killLine?.includes(`"${up.pid} `), `A's log names the up it killed (${up.pid}): ${killLine}`);
      assert.ok(killedAt < takenAt, "A killed its up before B took the shard's Lease");
      assert.ok(request.closedAt !== undefined, "A's provider died: its held request's connection closed");
      assert.deepEqual(stackProcesses(a, stack()), [], "no process of A's up is left");
      assert.equal(await held(a, shard), false, "A gave the shard up");
      assert.ok(
        (await metric(a, "vmcp_shard_fenced_processes_total", `shard="${shard}"`)) > 0,
        "A counted the processes it killed",
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

      // Heal everything: A's connection thaws, the gate lets what it held go on. A's killed
      // provider's request died with it: nothing of it is forwarded.
      a.control.thaw();
      assert.equal(gate.release(), 0, "a request of A's killed up reached the API server");
      const until = Date.now() + 5_000;
      while (Date.now() < until) {
        assert.match(await config(), /default: 43s/, "the ConfigMap went back to A's older spec");
        await new Promise((r) => setTimeout(r, 250));
      }
      // A's up never completed: killed, it applied nothing while it did not hold the shard
      // (until A, thawed, may take the shard again in a new term).
      const afterFreeze = a.proc.lines.slice(linesAtFreeze); // (it keeps its last 5,000 lines)
      const retaken = afterFreeze.findIndex(
        (l) => l.includes('"msg":"shard acquired') && l.includes(`"shard":${shard},`),
      );
      const late = afterFreeze
        .slice(0, retaken < 0 ? undefined : retaken)
        .filter((l) => l.includes('"msg":"stack updated"') && l.includes(`"key":"${ns}/${name}"`));
      assert.deepEqual(late, [], "A's up completed after A lost the shard's Lease");
      // What the stacks applied (server-side apply entries; the ConfigMap has no other writer).
      const objects = [
        await k.core().readNamespacedConfigMap({ name: configMapName(name), namespace: ns }),
        await k.apps().readNamespacedDeployment({ name: deploymentName(name), namespace: ns }),
      ];
      for (const obj of objects)
        for (const f of obj.metadata?.managedFields ?? [])
          if (f.operation === "Apply")
            assert.ok(
              new Date(f.time ?? 0).getTime() <= appliedAt + 1_000,
              `${f.manager} applied ${obj.metadata?.name} at ${String(f.time)}, after B applied`,
            );
      // The state's history: updates one after another, never two at once; the last succeeded.
      const updates = (await backend.history(stack())).sort((x, y) => x.startTime - y.startTime);
      assert.ok(updates.length >= 2, `the history holds A's first apply and B's: ${updates.length}`);
      for (let i = 1; i < updates.length; i++)
        assert.ok(
          updates[i]!.startTime >= updates[i - 1]!.endTime,
          `overlapping updates: ${JSON.stringify(updates.map((u) => [u.kind, u.startTime, u.endTime, u.result]))}`,
        );
      assert.equal(updates.at(-1)?.result, "succeeded");
      assert.equal(st.appliedHash, st.stackOutputs?.desiredHash);
    });
  });
}
