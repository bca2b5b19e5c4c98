// The controller with its Pulumi state in a real PostgreSQL server (Debian's, started by the
// test: test/support/postgres.ts) instead of a file backend: create, spec change, drift
// repair, SIGKILL mid-up (mid-create and mid-change) and delete, each checked in the cluster
// AND in the database table the backend writes (pulumi_state). The controller runs as
// `vmcpctl controller` in its own process group, configured as the Helm chart does it: the
// backend URL in $PULUMI_BACKEND_URL and the database password only in $PGPASSWORD (a
// Secret's value), never in its arguments; the test checks neither the password nor the
// vMCP's HMAC secret shows in the logs or, in plaintext, in the state.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControllerProc } from "../support/controllerproc.js";
import { startPostgres, type Postgres } from "../support/postgres.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Checkpoint {
  checkpoint?: {
    latest?: {
      resources?: { urn: string; type: string; outputs?: Record<string, unknown> }[];
      pending_operations?: unknown[];
    };
  };
}

describe("controller on a PostgreSQL state backend (real server)", function () {
  this.timeout(600_000);
  let pg: Postgres;
  let ns: string;
  let tmp: string;
  let current: ControllerProc;
  const all: ControllerProc[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const { core, apps, statusOf } = k;
  const spec = (group: string, timeout?: string) => ({
    groupRef: { name: group },
    incomingAuth: { type: "anonymous" },
    ...(timeout ? { config: { operational: { timeouts: { default: timeout } } } } : {}),
  });

  const stackName = (name: string) => `${ns}.${name}`;
  /** Keys of the backend's table whose path mentions the stack (stacks, history, locks). */
  const keysOf = async (name: string) =>
    (
      await pg.query(
        `SELECT key FROM pulumi_state WHERE key LIKE '%/${stackName(name)}/%' OR key LIKE '%/${stackName(name)}.json%' ORDER BY key`,
      )
    ).map((r) => r[0]!);
  const locksOf = async (name: string) =>
    (await keysOf(name)).filter((key) => key.includes("/.pulumi/locks/"));
  /**
   * The blobs the backend stores, decoded: each row's data column is `{"data": <base64 of the
   * file's bytes>}` (pkg/backend/diy/postgres), so a plaintext search of the column proves nothing.
   */
  async function blobs(where = "TRUE"): Promise<Map<string, string>> {
    const rows = await pg.query(`SELECT key, data->>'data' FROM pulumi_state WHERE ${where} ORDER BY key`);
    return new Map(rows.map(([key, b64]) => [key!, Buffer.from(b64 ?? "", "base64").toString("utf8")]));
  }
  async function checkpointOf(name: string): Promise<Checkpoint> {
    const found = [
      ...(await blobs(`key LIKE '%/.pulumi/stacks/vmcp-operator/${stackName(name)}.json'`)).values(),
    ];
    assert.equal(found.length, 1, `one checkpoint of ${stackName(name)} in pulumi_state`);
    return JSON.parse(found[0]!) as Checkpoint;
  }

  function startController(): ControllerProc {
    const c = new ControllerProc({
      kubeconfig: controlPlane().kubeconfigPath,
      namespace: ns,
      logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
      // As the chart sets them: the URL (no password) and the password from a Secret.
      env: { PULUMI_BACKEND_URL: pg.url, ...pg.env, TMPDIR: tmp },
      ...(process.env.VMCP_TEST_LOG ? { onLine: (l) => console.log(`      [ctrl ${c.pid}] ${l}`) } : {}),
    });
    all.push(c);
    return c;
  }

  /** status at the spec's generation, applied, and the ConfigMap holding `timeout`. */
  async function converged(name: string, timeout: string): Promise<void> {
    const generation = (await k.vmcp(name)).metadata.generation;
    await poll(`${name} applied at generation ${generation} with timeout ${timeout}`, async () => {
      const st = await statusOf(name);
      if (st.observedGeneration !== generation || !st.appliedHash || st.phase === "Failed") return undefined;
      if (st.stackOutputs?.desiredHash !== st.appliedHash) return undefined;
      const cm = await core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
      return cm.data?.["config.yaml"]?.includes(timeout) ? true : undefined;
    });
    assert.notEqual((await statusOf(name)).phase, "Failed", (await statusOf(name)).message);
  }

  /** No lock row, no pending operation, every resource once, one Deployment in the cluster. */
  async function cleanState(name: string, round: string): Promise<void> {
    await poll(`${round}: no lock of ${name} in pulumi_state`, async () =>
      (await locksOf(name)).length === 0 ? true : undefined,
    );
    const latest = (await checkpointOf(name)).checkpoint?.latest ?? {};
    assert.deepEqual(latest.pending_operations ?? [], [], `${round}: pending operations`);
    const urns = (latest.resources ?? []).map((r) => r.urn);
    assert.equal(new Set(urns).size, urns.length, `${round}: duplicate URNs`);
    assert.ok(
      (latest.resources ?? []).some((r) => r.type === "kubernetes:apps/v1:Deployment"),
      `${round}: the Deployment in state`,
    );
    const deps = await apps().listNamespacedDeployment({
      namespace: ns,
      labelSelector: `app.kubernetes.io/instance=${name}`,
    });
    assert.deepEqual(
      deps.items.map((d) => d.metadata?.name),
      [name],
      `${round}: Deployments`,
    );
  }

  /** Kills the controller (and its Pulumi processes) in the up that `change` starts, after the lock. */
  async function killMidUp(name: string, change: () => Promise<unknown>, delayMs: number): Promise<string[]> {
    const victim = current;
    await change();
    await victim.waitForPulumiUp(60_000);
    await poll(
      `${name}: the up's lock row`,
      async () => ((await locksOf(name)).length > 0 ? true : undefined),
      30_000,
      20,
    );
    await sleep(delayMs);
    await victim.kill();
    const left = await locksOf(name);
    current = startController();
    return left;
  }

  before(async () => {
    pg = await startPostgres({ name: "state" });
    ns = await newNamespace("pgstate");
    tmp = mkdtempSync(join(tmpdir(), "vmcp-pgstate-tmp-"));
    await k.readyGroup("tools");
    for (const e of ["alpha", "beta"]) await k.entry(e, "tools", `http://${e}.example.test/mcp`);
    current = startController();
  });

  after(async () => {
    for (const c of all) await c.killAndSweep().catch(() => {});
    await pg?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("create → Ready; the stack lives in pulumi_state, its secrets only encrypted", async () => {
    await k.create("VirtualMCPServer", "gw", spec("tools", "31s"));
    await poll("gw Ready", async () => ((await statusOf("gw")).phase === "Ready" ? true : undefined));
    await converged("gw", "31s");
    await cleanState("gw", "create");
    const latest = (await checkpointOf("gw")).checkpoint?.latest ?? {};
    const types = (latest.resources ?? []).map((r) => r.type);
    for (const t of [
      "kubernetes:core/v1:ConfigMap",
      "kubernetes:core/v1:Secret",
      "kubernetes:core/v1:Service",
    ])
      assert.ok(types.includes(t), `${t} in the checkpoint`);

    // The HMAC secret the controller generated: in the cluster, never readable in the table.
    const hmac = await core().readNamespacedSecret({ name: "gw-hmac-secret", namespace: ns });
    const values = Object.values(hmac.data ?? {});
    assert.ok(values.length > 0, "the HMAC Secret has data");
    const dump = [...(await blobs()).values()].join("\n");
    assert.match(dump, /kubernetes:apps\/v1:Deployment/, "the decoded state is searched");
    for (const b64 of values) {
      assert.ok(!dump.includes(b64), "the HMAC secret (base64) is not in pulumi_state");
      assert.ok(
        !dump.includes(Buffer.from(b64, "base64").toString()),
        "the HMAC secret is not in pulumi_state",
      );
    }
    const secret = (latest.resources ?? []).find((r) => r.type === "kubernetes:core/v1:Secret");
    assert.match(
      JSON.stringify(secret?.outputs?.data),
      /ciphertext/,
      "the Secret's data is encrypted in state",
    );
    assert.ok(!dump.includes(pg.password), "the database password is not in the state");
    // The password reached the server through PGPASSWORD only: not in any log line.
    assert.ok(!current.lines.some((l) => l.includes(pg.password)), "the database password in a log line");
  });

  it("spec change → the new config applied, recorded in pulumi_state", async () => {
    const before = (await checkpointOf("gw")).checkpoint?.latest?.resources?.length;
    await k.patchSpec("VirtualMCPServer", "gw", { config: spec("tools", "42s").config });
    await converged("gw", "42s");
    await cleanState("gw", "change");
    const cm = (await checkpointOf("gw")).checkpoint?.latest?.resources?.find(
      (r) => r.type === "kubernetes:core/v1:ConfigMap",
    );
    assert.match(JSON.stringify(cm?.outputs), /42s/, "the checkpoint's ConfigMap holds the new config");
    assert.equal((await checkpointOf("gw")).checkpoint?.latest?.resources?.length, before, "same resources");
    const history = (await keysOf("gw")).filter((key) => key.includes("/.pulumi/history/"));
    assert.ok(history.length >= 2, `update history in pulumi_state: ${history.join(", ")}`);
  });

  it("a hand-deleted Deployment is recreated (refresh + up against pulumi_state)", async () => {
    const uid = (await apps().readNamespacedDeployment({ name: "gw", namespace: ns })).metadata?.uid;
    await apps().deleteNamespacedDeployment({ name: "gw", namespace: ns });
    await poll("Deployment gw recreated", async () => {
      const d = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
      return d.metadata?.uid !== uid && !d.metadata?.deletionTimestamp ? true : undefined;
    });
    await poll("DriftRepaired event", async () => {
      const events = await core().listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=gw",
      });
      return events.items.some((e) => e.reason === "DriftRepaired") ? true : undefined;
    });
    await cleanState("gw", "drift repair");
  });

  it("SIGKILL mid-create and mid-change: a fresh controller clears the stale lock row and converges", async () => {
    // Mid-create: the checkpoint may hold pending creates, which only a refresh clears.
    const leftCreate = await killMidUp(
      "gw2",
      () => k.create("VirtualMCPServer", "gw2", spec("tools", "33s")),
      50,
    );
    assert.ok(leftCreate.length > 0, "the kill mid-create left the up's lock in pulumi_state");
    await converged("gw2", "33s");
    await cleanState("gw2", "after the kill mid-create");

    const leftChange = await killMidUp(
      "gw",
      () => k.patchSpec("VirtualMCPServer", "gw", { config: spec("tools", "44s").config }),
      300,
    );
    assert.ok(leftChange.length > 0, "the kill mid-change left the up's lock in pulumi_state");
    await converged("gw", "44s");
    await cleanState("gw", "after the kill mid-change");
    // The new controller stopped what the killed ones left running.
    for (const c of all.slice(0, -1))
      await poll(
        "no Pulumi process of a killed controller",
        async () => (c.pulumiLeft().length === 0 ? true : undefined),
        30_000,
      );
  });

  it("delete → stacks destroyed and gone from pulumi_state; graceful exit", async () => {
    for (const name of ["gw", "gw2"]) await k.remove("VirtualMCPServer", name);
    for (const name of ["gw", "gw2"]) {
      await poll(`${name} gone`, async () => {
        try {
          await k.vmcp(name);
          return undefined;
        } catch {
          return true;
        }
      });
      assert.deepEqual(await keysOf(name), [], `no row of stack ${stackName(name)} left in pulumi_state`);
      await assert.rejects(
        core().readNamespacedService({ name: `vmcp-${name}`, namespace: ns }),
        /404|Not Found/i,
      );
    }
    const exit = await current.terminate();
    assert.equal(exit.code, 0, `graceful exit: ${JSON.stringify(exit)}`);
    for (const c of all)
      assert.ok(
        !c.lines.some((l) => l.includes(pg.password)),
        `controller ${c.pid} logged the database password`,
      );
  });
});
