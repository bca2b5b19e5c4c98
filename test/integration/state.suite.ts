// The controller with its Pulumi state on a real shared backend (a PostgreSQL server or an
// S3-compatible object store, started by the test) instead of a file backend: create, spec
// change, drift repair, SIGKILL mid-up (mid-create and mid-change) and delete, each checked
// in the cluster AND in what the backend stores (every key read back and decoded). The
// controller runs as `vmcpctl controller` in its own process group, configured as the Helm
// chart does it: the backend URL in $PULUMI_BACKEND_URL and the credentials only in env vars
// (a Secret's values), never in its arguments; the suite checks that neither the credentials
// nor the vMCP's HMAC secret show in the logs or, in plaintext, in the state.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControllerProc } from "../support/controllerproc.js";
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

/** A running backend server, as the suite sees it. */
export interface StateStore {
  /** A Pulumi backend URL without credentials. */
  readonly url: string;
  /** The credentials, as env vars (what the chart's state.credentials gives the controller). */
  readonly env: Record<string, string>;
  /** The secret values among them: never in a log line or the state. */
  readonly secrets: string[];
  /** Every key the backend holds. */
  keys(): Promise<string[]>;
  /** The stored file's bytes (decoded from however the backend keeps them), as UTF-8. */
  read(key: string): Promise<string>;
  stop(): Promise<void>;
}

export function stateBackendSuite(title: string, start: () => Promise<StateStore>): void {
  describe(title, function () {
    this.timeout(600_000);
    let store: StateStore;
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
    /** Keys whose path names the stack (its checkpoint, backup, history and locks). */
    const keysOf = async (name: string) =>
      (await store.keys()).filter(
        (key) => key.includes(`/${stackName(name)}/`) || key.includes(`/${stackName(name)}.json`),
      );
    const locksOf = async (name: string) =>
      (await keysOf(name)).filter((key) => key.includes(".pulumi/locks/"));
    /** Everything the backend stores, decoded. */
    async function blobs(): Promise<Map<string, string>> {
      const out = new Map<string, string>();
      for (const key of await store.keys()) out.set(key, await store.read(key));
      return out;
    }
    async function checkpointOf(name: string): Promise<Checkpoint> {
      const found = (await store.keys()).filter((key) =>
        key.endsWith(`.pulumi/stacks/vmcp-operator/${stackName(name)}.json`),
      );
      assert.equal(found.length, 1, `one checkpoint of ${stackName(name)} in the backend`);
      return JSON.parse(await store.read(found[0]!)) as Checkpoint;
    }

    function startController(): ControllerProc {
      const c = new ControllerProc({
        kubeconfig: controlPlane().kubeconfigPath,
        namespace: ns,
        logLevel: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "info",
        // As the chart sets them: the URL (no password) and the password from a Secret.
        env: { PULUMI_BACKEND_URL: store.url, ...store.env, TMPDIR: tmp },
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
        if (st.observedGeneration !== generation || !st.appliedHash || st.phase === "Failed")
          return undefined;
        if (st.stackOutputs?.desiredHash !== st.appliedHash) return undefined;
        const cm = await core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
        return cm.data?.["config.yaml"]?.includes(timeout) ? true : undefined;
      });
      assert.notEqual((await statusOf(name)).phase, "Failed", (await statusOf(name)).message);
    }

    /** No lock row, no pending operation, every resource once, one Deployment in the cluster. */
    async function cleanState(name: string, round: string): Promise<void> {
      await poll(`${round}: no lock of ${name} in the backend`, async () =>
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
    async function killMidUp(
      name: string,
      change: () => Promise<unknown>,
      delayMs: number,
    ): Promise<string[]> {
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
      const pending = (await checkpointOf(name).catch(() => ({}) as Checkpoint)).checkpoint?.latest
        ?.pending_operations?.length;
      console.log(
        `      ${name}: killed at lock+${delayMs}ms: ${left.length} lock(s) left, ${pending ?? 0} pending operation(s)`,
      );
      current = startController();
      return left;
    }

    before(async () => {
      store = await start();
      ns = await newNamespace("state");
      tmp = mkdtempSync(join(tmpdir(), "vmcp-state-tmp-"));
      await k.readyGroup("tools");
      for (const e of ["alpha", "beta"]) await k.entry(e, "tools", `http://${e}.example.test/mcp`);
      current = startController();
    });

    after(async () => {
      for (const c of all) await c.killAndSweep().catch(() => {});
      await store?.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it("create → Ready; the stack lives in the backend, its secrets only encrypted", async () => {
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
        assert.ok(!dump.includes(b64), "the HMAC secret (base64) is not in the backend");
        assert.ok(
          !dump.includes(Buffer.from(b64, "base64").toString()),
          "the HMAC secret is not in the backend",
        );
      }
      const secret = (latest.resources ?? []).find((r) => r.type === "kubernetes:core/v1:Secret");
      assert.match(
        JSON.stringify(secret?.outputs?.data),
        /ciphertext/,
        "the Secret's data is encrypted in state",
      );
      for (const c of store.secrets) assert.ok(!dump.includes(c), "a backend credential is in the state");
    });

    it("spec change → the new config applied, recorded in the backend", async () => {
      const before = (await checkpointOf("gw")).checkpoint?.latest?.resources?.length;
      await k.patchSpec("VirtualMCPServer", "gw", { config: spec("tools", "42s").config });
      await converged("gw", "42s");
      await cleanState("gw", "change");
      const cm = (await checkpointOf("gw")).checkpoint?.latest?.resources?.find(
        (r) => r.type === "kubernetes:core/v1:ConfigMap",
      );
      assert.match(JSON.stringify(cm?.outputs), /42s/, "the checkpoint's ConfigMap holds the new config");
      assert.equal(
        (await checkpointOf("gw")).checkpoint?.latest?.resources?.length,
        before,
        "same resources",
      );
      const history = (await keysOf("gw")).filter((key) => key.includes(".pulumi/history/"));
      assert.ok(history.length >= 2, `update history in the backend: ${history.join(", ")}`);
    });

    it("a hand-deleted Deployment is recreated (refresh + up against the backend)", async () => {
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

    it("SIGKILL mid-create and mid-change: a fresh controller clears the stale lock and converges", async () => {
      // Mid-create: the checkpoint may hold pending creates, which only a refresh clears.
      const leftCreate = await killMidUp(
        "gw2",
        () => k.create("VirtualMCPServer", "gw2", spec("tools", "33s")),
        50,
      );
      assert.ok(leftCreate.length > 0, "the kill mid-create left the up's lock in the backend");
      await converged("gw2", "33s");
      await cleanState("gw2", "after the kill mid-create");

      const leftChange = await killMidUp(
        "gw",
        () => k.patchSpec("VirtualMCPServer", "gw", { config: spec("tools", "44s").config }),
        300,
      );
      assert.ok(leftChange.length > 0, "the kill mid-change left the up's lock in the backend");
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

    it("delete → stacks destroyed and gone from the backend; graceful exit", async () => {
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
        assert.deepEqual(await keysOf(name), [], `no key of stack ${stackName(name)} left in the backend`);
        await assert.rejects(
          core().readNamespacedService({ name: `vmcp-${name}`, namespace: ns }),
          /404|Not Found/i,
        );
      }
      const exit = await current.terminate();
      assert.equal(exit.code, 0, `graceful exit: ${JSON.stringify(exit)}`);
      // The credentials reached the backend through env vars only: not in any log line.
      for (const c of all)
        for (const v of store.secrets)
          assert.ok(!c.lines.some((l) => l.includes(v)), `controller ${c.pid} logged a backend credential`);
    });
  });
}
