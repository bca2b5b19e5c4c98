// The controller against the real control plane and the real Pulumi engine: what a user
// sees (status, objects, events) after creating, changing and deleting resources.
// The controller talks to the API server through a TCP proxy the test can cut, to show
// that the informers survive a lost API server and pick up what changed meanwhile.
import assert from "node:assert/strict";
import { createServer, connect, type Server, type Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { FINALIZER } from "../../program/names.js";
import type { Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { conditionOf as cond, kube } from "../support/kube.js";
import { gone, poll } from "../support/poll.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP proxy in front of the API server that can drop every connection and refuse new ones. */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async listen(port = 0): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /** Like an API server going away: every connection reset, new ones refused. */
  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  async close(): Promise<void> {
    await this.cut().catch(() => {});
  }
}

describe("controller against the local control plane (real engine)", function () {
  this.timeout(600_000);
  let ns: string;
  let controller: Controller;
  let proxy: CuttableProxy;
  let tc: TestController | undefined;
  const k = kube(adminKubeConfig, () => ns);
  const { core, apps, statusOf, readyGroup } = k;
  const getVmcp = k.vmcp;
  const entry = (name: string, group: string) => k.entry(name, group, `http://${name}.example.test/mcp`);
  const vmcpSpec = (group: string, config?: Record<string, unknown>) => ({
    groupRef: { name: group },
    incomingAuth: { type: "anonymous" },
    ...(config ? { config } : {}),
  });
  const checksum = async (name: string) =>
    (await apps().readNamespacedDeployment({ name, namespace: ns })).spec?.template.metadata?.annotations?.[
      "toolhive.stacklok.dev/runconfig-checksum"
    ];

  before(async () => {
    ns = await newNamespace("ctrl");
    const server = new URL(controlPlane().server);
    proxy = new CuttableProxy({ host: server.hostname, port: Number(server.port) });
    await proxy.listen();
    const kc = new KubeConfig();
    kc.loadFromString(
      controlPlane().kubeconfig.replace(controlPlane().server, `https://127.0.0.1:${proxy.port}`),
    );
    tc = await startTestController({
      name: "ctrl",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        kubeconfig: kc,
        namespace: ns,
        workers: 2,
        resyncMs: 3_600_000, // resync is triggered by hand below
        metricsAddr: "127.0.0.1:0",
        applyGraceMs: 5_000,
        healthChecks: false, // backends here are placeholders; controller.health.test.ts probes real ones
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }),
      },
    });
    controller = tc.controller;
    await readyGroup("tools");
    await readyGroup("other");
    await entry("alpha", "tools");
    await entry("beta", "tools");
    await entry("solo", "other");
  });

  after(async () => {
    await tc?.stop();
    await proxy?.close();
  });

  it("create → Ready with URL, backends, conditions, owned objects and events", async () => {
    await k.create("VirtualMCPServer", "gw", vmcpSpec("tools"));
    await k.create("VirtualMCPServer", "gw2", vmcpSpec("other"));
    const s = await poll("gw Ready", async () => {
      const st = await statusOf("gw");
      // Both members may reach the informer cache one reconcile apart: wait for both.
      return st.phase === "Ready" && st.backendCount === 2 ? st : undefined;
    });
    assert.equal(s.url, `http://vmcp-gw.${ns}.svc.cluster.local:4483`);
    assert.equal(s.backendCount, 2);
    assert.deepEqual(
      s.discoveredBackends?.map((b) => [b.name, b.url, b.status]),
      [
        ["alpha", "http://alpha.example.test/mcp", "ready"],
        ["beta", "http://beta.example.test/mcp", "ready"],
      ],
    );
    for (const t of ["Valid", "GroupRefValidated", "BackendsDiscovered", "AuthConfigured", "Ready"])
      assert.equal(cond(s, t)?.status, "True", `${t}: ${JSON.stringify(cond(s, t))}`);
    assert.equal(s.observedGeneration, 1);
    assert.deepEqual((await getVmcp("gw")).metadata.finalizers, [FINALIZER]);
    const dep = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
    assert.equal(dep.metadata?.ownerReferences?.[0]?.uid, (await getVmcp("gw")).metadata.uid);
    const events = await core().listNamespacedEvent({
      namespace: ns,
      fieldSelector: "involvedObject.name=gw",
    });
    const reasons = events.items.map((e) => e.reason);
    assert.ok(reasons.includes("Preview") && reasons.includes("StackUpdated"), reasons.join(","));
    await poll("gw2 Ready", async () => ((await statusOf("gw2")).phase === "Ready" ? true : undefined));
    const metrics = await (await fetch(`http://127.0.0.1:${controller.port}/metrics`)).text();
    assert.match(metrics, /vmcp_pulumi_operation_duration_seconds_count\{op="up"\} [1-9]/);
    assert.equal((await fetch(`http://127.0.0.1:${controller.port}/readyz`)).status, 200);
  });

  it("our own status writes do not trigger reconciles; an unchanged resync starts no Pulumi process", async () => {
    await controller.queue.idle();
    const before = { ...Object.fromEntries(controller.reconcileCounts) };
    const ignored = controller.router.ignored;
    const processes = controller.engine.processesStarted;
    const writes = await controller.metrics.statusWrites.get();
    // A barrier instead of a sleep: one watch delivers in order, so once the cache holds this
    // annotation (itself metadata noise), every status-write echo before it has been routed.
    const mark = String(Date.now());
    await k.patch("VirtualMCPServer", "gw", { metadata: { annotations: { "test.vmcp/barrier": mark } } });
    await poll("the barrier reached the cache", async () =>
      controller.informers.get("VirtualMCPServer", ns, "gw")?.metadata?.annotations?.["test.vmcp/barrier"] ===
      mark
        ? true
        : undefined,
    );
    await controller.queue.idle();
    assert.ok(controller.router.ignored > ignored, "the echoes and the barrier were seen and ignored");
    assert.deepEqual(Object.fromEntries(controller.reconcileCounts), before, "quiet: no reconcile at all");
    controller.queue.resync();
    await poll("the resync's reconcile of gw", async () =>
      (controller.reconcileCounts.get(`${ns}/gw`) ?? 0) > (before[`${ns}/gw`] ?? 0) ? true : undefined,
    );
    await controller.queue.idle();
    assert.equal(
      controller.reconcileCounts.get(`${ns}/gw`),
      (before[`${ns}/gw`] ?? 0) + 1,
      "the resync reconciled gw",
    );
    assert.equal(controller.engine.processesStarted, processes, "no Pulumi process for an unchanged resync");
    assert.equal(await controller.metrics.statusWrites.get(), writes, "no status write either");
  });

  it("a member joining the group updates that VirtualMCPServer only: config checksum changes, pods roll", async () => {
    const before = await checksum("gw");
    const gw2Runs = controller.reconcileCounts.get(`${ns}/gw2`);
    const gw2Checksum = await checksum("gw2");
    await entry("gamma", "tools");
    const s = await poll("gw has 3 backends", async () => {
      const st = await statusOf("gw");
      return st.backendCount === 3 ? st : undefined;
    });
    assert.ok(s.discoveredBackends?.some((b) => b.name === "gamma"));
    const after = await checksum("gw");
    assert.notEqual(after, before, "pod template checksum changed");
    const cm = await core().readNamespacedConfigMap({ name: "gw-vmcp-config", namespace: ns });
    assert.match(cm.data?.["config.yaml"] ?? "", /name: gamma/);
    await poll("new pods rolled out", async () => {
      const d = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
      return d.status?.observedGeneration === d.metadata?.generation &&
        d.status?.updatedReplicas === 1 &&
        d.status?.availableReplicas === 1
        ? true
        : undefined;
    });
    assert.equal(controller.reconcileCounts.get(`${ns}/gw2`), gw2Runs, "gw2 was not reconciled");
    assert.equal(await checksum("gw2"), gw2Checksum);

    await k.remove("MCPServerEntry", "gamma");
    await poll("gw back to 2 backends", async () =>
      (await statusOf("gw")).backendCount === 2 ? true : undefined,
    );
    assert.equal(controller.reconcileCounts.get(`${ns}/gw2`), gw2Runs, "gw2 still not reconciled");
  });

  it("invalid spec → Failed, Valid=False with the field path, no engine call, no objects", async () => {
    const processes = controller.engine.processesStarted;
    await k.create(
      "VirtualMCPServer",
      "bad",
      vmcpSpec("tools", { aggregation: { conflictResolution: "priority" } }),
    );
    const s = await poll("bad Failed", async () => {
      const st = await statusOf("bad");
      return st.phase === "Failed" ? st : undefined;
    });
    assert.equal(cond(s, "Valid")?.status, "False");
    assert.match(
      cond(s, "Valid")?.message ?? "",
      /spec\.config\.aggregation\.conflictResolutionConfig\.priorityOrder/,
    );
    await controller.queue.idle();
    assert.equal(controller.engine.processesStarted, processes, "no Pulumi process");
    await assert.rejects(apps().readNamespacedDeployment({ name: "bad", namespace: ns }), /404|Not Found/i);
  });

  it("a hand-deleted Deployment is restored", async () => {
    const uid = (await apps().readNamespacedDeployment({ name: "gw", namespace: ns })).metadata?.uid;
    await apps().deleteNamespacedDeployment({ name: "gw", namespace: ns });
    const restored = await poll("Deployment gw recreated", async () => {
      const d = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
      return d.metadata?.uid !== uid && !d.metadata?.deletionTimestamp ? d : undefined;
    });
    assert.ok(restored);
    // The Deployment reappears during the repair; its Event is recorded once the repair returns.
    await poll("DriftRepaired event", async () => {
      const events = await core().listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=gw",
      });
      return events.items.some((e) => e.reason === "DriftRepaired") ? true : undefined;
    });
  });

  it("survives the API server going away: informers reconnect and catch up", async () => {
    const port = proxy.port;
    await proxy.cut();
    // While the API server is unreachable, someone adds a member to gw2's group.
    await entry("late", "other");
    await sleep(3000);
    await proxy.listen(port);
    const s = await poll("gw2 sees the new member", async () => {
      const st = await statusOf("gw2");
      return st.backendCount === 2 ? st : undefined;
    });
    assert.ok(s.discoveredBackends?.some((b) => b.name === "late"));
    const restarts = await (await fetch(`http://127.0.0.1:${controller.port}/metrics`)).text();
    assert.match(restarts, /vmcp_informer_restarts_total\{kind="[A-Za-z]+"\} [1-9]/);
  });

  it("delete → stack destroyed, then the finalizer removed and the object gone", async () => {
    await k.remove("VirtualMCPServer", "gw");
    await gone("gw", () => getVmcp("gw"));
    assert.equal(await controller.engine.exists({ namespace: ns, name: "gw" }), false, "stack removed");
    await gone("Service vmcp-gw", () => core().readNamespacedService({ name: "vmcp-gw", namespace: ns }));
  });
});
