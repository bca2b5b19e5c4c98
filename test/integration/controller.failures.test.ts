// The controller killed with SIGKILL in the middle of a Pulumi `up`, again and again.
// The controller runs as a child process (`vmcpctl controller`) in its own process group;
// the kill takes the group, i.e. the controller and its Pulumi CLI and plugins, as a pod
// kill does. Each round: a spec change, the kill at a random point of the `up` it starts,
// a fresh controller, and then what a user must see: status.appliedHash equal to the
// builder's hash of the final spec, the ConfigMap holding the final config, no lock left in
// the state's .pulumi/locks, no pending operation in the checkpoint, exactly one of each
// owned object (nothing duplicated, nothing orphaned), and no Pulumi process of a killed
// controller still running (the CLI's provider plugins escape the group kill; the next
// controller start stops them, see engine/orphans.ts).
//
// VMCP_KILL_ROUNDS (default 5) sets the number of kills; VMCP_KILL_SEED replays a run.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { validateVirtualMCPServer } from "../../api/index.js";
import { MemoryCache, cacheObjectSet } from "../../controller/cache.js";
import type { RawObject, WatchedKind } from "../../controller/objects.js";
import type { Status } from "../../controller/status.js";
import { build, type DesiredState } from "../../program/desired.js";
import { gatherInputs } from "../../program/inputs.js";
import { DEFAULT_VMCP_IMAGE } from "../../program/names.js";
import { ControllerProc, describeProcs, pulumiProcesses } from "../support/controllerproc.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube, type VmcpObject } from "../support/kube.js";
import { poll } from "../support/poll.js";

const NAME = "gw";
const ROUNDS = Number(process.env.VMCP_KILL_ROUNDS ?? "5");
const SEED = Number(process.env.VMCP_KILL_SEED ?? Date.now() % 1_000_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with VMCP_KILL_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every file below `dir` (relative paths). */
function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, encoding: "utf8" }))
    if (statSync(join(dir, e)).isFile()) out.push(e);
  return out;
}

interface Checkpoint {
  checkpoint?: {
    latest?: {
      resources?: { urn: string; type: string; id?: string }[];
      pending_operations?: { resource: { urn: string }; type: string }[];
    };
  };
}

describe("controller killed (SIGKILL) at random points of `up`", function () {
  this.timeout(60_000 + (ROUNDS + 6) * 90_000); // up to 6 extra rounds (below)
  let ns: string;
  let stateDir: string;
  let tmp: string;
  let current: ControllerProc | undefined;
  const all: ControllerProc[] = [];
  const random = prng(SEED);
  const k = kube(adminKubeConfig, () => ns);
  const { core, apps } = k;
  const rbac = () => adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
  const lockDir = () => join(stateDir, ".pulumi", "locks");
  const stackFile = () => join(stateDir, ".pulumi", "stacks", "vmcp-operator", `${ns}.${NAME}.json`);

  const getVmcp = async () => (await k.vmcp(NAME)) as VmcpObject & RawObject;

  /** The builder's desired state for what the API server holds now (as the controller computes it). */
  async function desiredNow(): Promise<DesiredState> {
    const cache = new MemoryCache();
    for (const kind of ["VirtualMCPServer", "MCPGroup", "MCPServerEntry"] satisfies WatchedKind[])
      for (const o of await k.list(kind)) cache.set(kind, { ...o, kind });
    const v = validateVirtualMCPServer(cache.get("VirtualMCPServer", ns, NAME));
    assert.ok(v.ok, "the spec is valid");
    const b = build(gatherInputs(cacheObjectSet(cache), v.value), { vmcpImage: DEFAULT_VMCP_IMAGE });
    assert.ok(b.desired, "the builder gives a desired state");
    return b.desired;
  }

  function startController(): ControllerProc {
    const c = new ControllerProc({
      kubeconfig: controlPlane().kubeconfigPath,
      namespace: ns,
      stateDir,
      logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
      env: { TMPDIR: tmp }, // the engine's workspaces: removed with the test's temp dir
      ...(process.env.VMCP_TEST_LOG ? { onLine: (l) => console.log(`      [ctrl ${c.pid}] ${l}`) } : {}),
    });
    all.push(c);
    return c;
  }

  /** Everything a user checks after a recovery; returns once it all holds. */
  async function assertConverged(round: string): Promise<void> {
    const desired = await desiredNow();
    const generation = (await getVmcp()).metadata.generation;
    const wantConfig = (desired.objects.find((o) => o.kind === "ConfigMap")?.data as Record<string, string>)[
      "config.yaml"
    ];
    await poll(`${round}: status at the desired hash ${desired.hash.slice(0, 12)}`, async () => {
      const st = (await getVmcp()).status ?? {};
      if (st.appliedHash !== desired.hash || st.observedGeneration !== generation) return undefined;
      const cm = await core().readNamespacedConfigMap({ name: `${NAME}-vmcp-config`, namespace: ns });
      return cm.data?.["config.yaml"] === wantConfig ? true : undefined;
    });
    const st = (await getVmcp()).status ?? {};
    assert.equal(st.stackOutputs?.desiredHash, desired.hash, `${round}: stack outputs`);
    assert.notEqual(st.phase, "Failed", `${round}: phase ${st.phase}: ${st.message}`);

    // No lock survives once the controller is idle again (it holds one only during an operation).
    await poll(
      `${round}: no lock under .pulumi/locks`,
      async () => (filesBelow(lockDir()).length === 0 ? true : undefined),
      30_000,
    );

    // The checkpoint: no pending operation, every resource once.
    const state = JSON.parse(readFileSync(stackFile(), "utf8")) as Checkpoint;
    const latest = state.checkpoint?.latest ?? {};
    assert.deepEqual(latest.pending_operations ?? [], [], `${round}: pending operations in state`);
    const urns = (latest.resources ?? []).map((r) => r.urn);
    assert.equal(new Set(urns).size, urns.length, `${round}: duplicate URNs in state`);
    const k8sTypes = (latest.resources ?? [])
      .map((r) => r.type)
      .filter((t) => t.startsWith("kubernetes:") && t !== "pulumi:providers:kubernetes")
      .sort();
    const wantTypes = [
      "kubernetes:apps/v1:Deployment",
      "kubernetes:core/v1:ConfigMap",
      "kubernetes:core/v1:Secret",
      "kubernetes:core/v1:Service",
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:rbac.authorization.k8s.io/v1:Role",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    ];
    assert.deepEqual(k8sTypes, wantTypes, `${round}: resources in state`);

    // The cluster: exactly one of each owned object, by label and by owner reference.
    const uid = (await getVmcp()).metadata.uid;
    const owned = (items: { metadata?: { name?: string; ownerReferences?: { uid?: string }[] } }[]) =>
      items
        .filter((o) => o.metadata?.ownerReferences?.some((r) => r.uid === uid))
        .map((o) => o.metadata?.name);
    const instance = `app.kubernetes.io/instance=${NAME}`;
    const deps = (await apps().listNamespacedDeployment({ namespace: ns, labelSelector: instance })).items;
    const svcs = (await core().listNamespacedService({ namespace: ns, labelSelector: instance })).items;
    const cms = (
      await core().listNamespacedConfigMap({
        namespace: ns,
        labelSelector: `toolhive.stacklok.io/virtual-mcp-server=${NAME}`,
      })
    ).items;
    assert.deepEqual(
      deps.map((d) => d.metadata?.name),
      [NAME],
      `${round}: Deployments`,
    );
    assert.deepEqual(
      svcs.map((s) => s.metadata?.name),
      [`vmcp-${NAME}`],
      `${round}: Services`,
    );
    assert.deepEqual(
      cms.map((c) => c.metadata?.name),
      [`${NAME}-vmcp-config`],
      `${round}: ConfigMaps`,
    );
    const ownedAll = [
      ...owned((await apps().listNamespacedDeployment({ namespace: ns })).items),
      ...owned((await core().listNamespacedService({ namespace: ns })).items),
      ...owned((await core().listNamespacedConfigMap({ namespace: ns })).items),
      ...owned((await core().listNamespacedSecret({ namespace: ns })).items),
      ...owned((await core().listNamespacedServiceAccount({ namespace: ns })).items),
      ...owned((await rbac().listNamespacedRole({ namespace: ns })).items),
      ...owned((await rbac().listNamespacedRoleBinding({ namespace: ns })).items),
    ].sort();
    assert.deepEqual(
      ownedAll,
      [
        NAME,
        `${NAME}-hmac-secret`,
        `${NAME}-vmcp`,
        `${NAME}-vmcp`,
        `${NAME}-vmcp`,
        `${NAME}-vmcp-config`,
        `vmcp-${NAME}`,
      ].sort(),
      `${round}: objects owned by the VirtualMCPServer`,
    );
    const dep = deps[0]!;
    assert.equal(
      dep.spec?.template.metadata?.annotations?.["toolhive.stacklok.dev/runconfig-checksum"],
      desired.configChecksum,
      `${round}: pod template checksum`,
    );
  }

  before(async () => {
    ns = await newNamespace("kill");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-kill-state-"));
    tmp = mkdtempSync(join(tmpdir(), "vmcp-kill-tmp-"));
    console.log(`      seed ${SEED} (VMCP_KILL_SEED to replay), ${ROUNDS} rounds`);
    await k.create("MCPGroup", "tools", {});
    for (const e of ["alpha", "beta"]) await k.entry(e, "tools", `http://${e}.example.test/mcp`);
    current = startController();
  });

  after(async () => {
    for (const c of all) await c.killAndSweep().catch(() => {});
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it(`converges after each of ${ROUNDS} kills: final hash applied, no stale lock, no duplicate or orphan`, async () => {
    let staleLocks = 0;
    let pendingOps = 0;
    let orphaned = 0;
    // Pulumi processes anywhere on the machine (other test runs may start and stop theirs).
    const before = pulumiProcesses();
    const points: string[] = [];
    // Kill points are random and an up lasts about a second: when the planned rounds did
    // not hit both interesting cases (a stale lock, plugins left running), a few more do.
    const EXTRA = ROUNDS >= 2 ? 6 : 0;
    for (let i = 0; i < ROUNDS || (i < ROUNDS + EXTRA && (staleLocks === 0 || orphaned === 0)); i++) {
      const round = `round ${i + 1}/${ROUNDS}${i >= ROUNDS ? " (extra)" : ""}`;
      const victim = current!;
      // Round 1 creates the VirtualMCPServer (a kill mid-create leaves pending creates);
      // the others change its spec. Either way the controller previews, then ups.
      if (i === 0)
        await k.create("VirtualMCPServer", NAME, {
          groupRef: { name: "tools" },
          incomingAuth: { type: "anonymous" },
        });
      else
        await k.patchSpec("VirtualMCPServer", NAME, {
          config: { operational: { timeouts: { default: `${30 + i}s` } } },
        });
      await victim.waitForPulumiUp(60_000);
      // Rounds 1, 3, 5, …: right after the update took its lock (the worst moment: state and lock
      // both mid-flight) plus up to 0.8 s; the others: anywhere in the first 1.2 s of the
      // `pulumi up` process (an update here takes about 1–1.5 s, so some kills land just after).
      let point: string;
      if (i % 2 === 0) {
        await poll(
          `${round}: the up's lock`,
          async () => (filesBelow(lockDir()).length > 0 ? true : undefined),
          30_000,
        );
        const ms = Math.floor(random() * (i === 0 ? 100 : 800)); // round 1 always leaves the lock
        await sleep(ms);
        point = `lock+${ms}ms`;
      } else {
        const ms = Math.floor(random() * 1200);
        await sleep(ms);
        point = `up+${ms}ms`;
      }
      await victim.kill();
      const locks = filesBelow(lockDir());
      const state = existsSync(stackFile())
        ? (JSON.parse(readFileSync(stackFile(), "utf8")) as Checkpoint)
        : {};
      const pending = state.checkpoint?.latest?.pending_operations?.length ?? 0;
      if (locks.length) staleLocks++;
      if (pending) pendingOps++;
      // What the group kill did not reach: the plugins, each in a process group of its own.
      const left = victim.pulumiLeft();
      if (left.length) orphaned++;
      points.push(
        `${point} (lock ${locks.length ? "left" : "none"}, pending ops ${pending}, Pulumi processes left ${left.length})`,
      );
      current = startController();
      await assertConverged(`${round}, killed at ${point}`);
      // The new controller stops them before anything else. When the kill came after the up
      // had finished, the state converged without it, and it may still be starting (a shared
      // provider outlives every kill): wait for its start, not for a fixed time.
      await poll(
        `${round}: the new controller's start`,
        () => (current!.lines.some((l) => l.includes('"msg":"controller working"')) ? true : undefined),
        60_000,
      );
      assert.deepEqual(
        describeProcs(victim.pulumiLeft()),
        "",
        `${round}: Pulumi processes of the killed controller still running`,
      );
    }
    console.log(`      kill points: ${points.join("; ")}`);
    console.log(
      `      rounds that left a stale lock: ${staleLocks}, pending operations: ${pendingOps}, Pulumi processes: ${orphaned}`,
    );
    // The lock-timed rounds make sure the interesting cases really happened.
    if (ROUNDS >= 2) assert.ok(staleLocks >= 1, "at least one kill left a stale lock to recover from");
    if (ROUNDS >= 2) assert.ok(orphaned >= 1, "at least one kill left Pulumi processes to stop");

    // And the last controller still shuts down cleanly, leaving nothing behind.
    const exit = await current!.terminate();
    assert.equal(exit.code, 0, `graceful exit: ${JSON.stringify(exit)}`);
    assert.deepEqual(current!.group(), [], "no process of the controller left");
    assert.deepEqual(filesBelow(lockDir()), [], "no lock after a graceful stop");
    // Pulumi processes on the machine: back to the ones there before the test. Only ours are
    // asserted on (by their tag): another test run on the machine may have started some meanwhile.
    const known = new Set(before.map((p) => `${p.pid}/${p.start}`));
    const after = await poll(
      "no Pulumi process of this test left",
      async () => {
        const now = pulumiProcesses();
        return now.some((p) => all.some((c) => c.tag === p.tag)) ? undefined : now;
      },
      10_000,
    ).catch(() => pulumiProcesses());
    const ours = after.filter((p) => all.some((c) => c.tag === p.tag));
    const others = after.filter((p) => !known.has(`${p.pid}/${p.start}`) && !ours.includes(p));
    console.log(
      `      Pulumi processes on the machine: ${before.length} before, ${after.length} after ` +
        `(${ours.length} of this test, ${others.length} new of others)`,
    );
    assert.equal(describeProcs(ours), "", "Pulumi processes this test started still running");
  });
});
