// A flapping backend (real MCP server on 127.0.0.1, probed every second by the controller's
// health monitor) must not churn the deployment: while it flaps — first failing every
// other probe (setMode("flap")), then going down and up at seeded random intervals — the
// Deployment keeps its generation, no ReplicaSet is added, the ConfigMap and applied hash
// stay, and the engine starts no Pulumi process after the initial up. Status follows the
// health (the flapping is seen: the backend is reported unavailable at times), and once
// the server is stable again the backend is ready and the phase Ready.
//
// Default 20 s of flapping (CI); VMCP_FLAP_SECONDS=300 for the "minutes".
import assert from "node:assert/strict";
import type { Engine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import type { Controller } from "../../controller/main.js";
import * as n from "../../program/names.js";
import { startMcpServer, type McpTestServer } from "../../samples/mcpservers.js";
import { rng } from "../support/specgen.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { backendOf as backend, kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FLAP_SECONDS = Number(process.env.VMCP_FLAP_SECONDS ?? 20);
const SEED = Number(process.env.VMCP_FLAP_SEED ?? 3);

interface Snapshot {
  depGeneration: number;
  depUid: string;
  podChecksum: string;
  replicaSets: string[];
  cmVersion: string;
  appliedHash: string;
}

describe(`a backend flapping for ${FLAP_SECONDS} s (1 s health interval): no Deployment churn, status right at the end`, function () {
  this.timeout(Math.max(300_000, (FLAP_SECONDS + 240) * 1000));
  let ns: string;
  let tc: TestController | undefined;
  let engine: Engine;
  let controller: Controller;
  let flappy: McpTestServer;
  let steady: McpTestServer;
  const k = kube(adminKubeConfig, () => ns);
  const { apps, core } = k;
  const status = () => k.statusOf("gw");

  async function snapshot(): Promise<Snapshot> {
    const dep = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
    const rs = await apps().listNamespacedReplicaSet({
      namespace: ns,
      labelSelector: "app.kubernetes.io/instance=gw",
    });
    const cm = await core().readNamespacedConfigMap({ name: n.configMapName("gw"), namespace: ns });
    return {
      depGeneration: dep.metadata?.generation ?? -1,
      depUid: dep.metadata?.uid ?? "",
      podChecksum: dep.spec?.template.metadata?.annotations?.[n.ANNOTATION_RUNCONFIG_CHECKSUM] ?? "",
      replicaSets: rs.items.map((x) => x.metadata?.name ?? "").sort(),
      cmVersion: cm.metadata?.resourceVersion ?? "",
      appliedHash: (await status()).appliedHash ?? "",
    };
  }

  let started = 0;
  before(async () => {
    started = Date.now();
    ns = await newNamespace("flap");
    flappy = await startMcpServer({ flavour: "streamable-http", spec: { tools: ["search", "fetch"] } });
    steady = await startMcpServer({ flavour: "streamable-http", spec: { tools: ["create_issue"] } });
    await k.readyGroup("g");
    for (const [name, s] of [
      ["flappy", flappy],
      ["steady", steady],
    ] as const)
      await k.entry(name, "g", s.url());
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "g" },
      incomingAuth: { type: "anonymous" },
      config: {
        operational: {
          failureHandling: {
            healthCheckInterval: "1s",
            healthCheckTimeout: "900ms", // vmcp wants it below the interval
            unhealthyThreshold: 1, // every failed probe is a transition: the worst case for churn
            partialFailureMode: "best_effort",
          },
        },
      },
    });
    tc = await startTestController({
      name: "flap",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        probeEgress: { allowLoopback: true }, // the MCP servers listen on 127.0.0.1
        kubeconfig: adminKubeConfig(),
        namespace: ns,
        workers: 2,
        resyncMs: 3_600_000,
        applyGraceMs: 5_000,
        log: jsonLogger({ level: "error" }),
      },
    });
    ({ controller, engine } = tc);
  });

  after(async () => {
    await tc?.stop();
    await Promise.all([flappy?.stop(), steady?.stop()]);
  });

  it("goes Ready with both backends probed ready", async () => {
    await poll("Ready, both backends ready, rolled out", async () => {
      const s = await status();
      const dep = await apps().readNamespacedDeployment({ name: "gw", namespace: ns });
      return s.phase === "Ready" &&
        backend(s, "flappy")?.status === "ready" &&
        backend(s, "steady")?.status === "ready" &&
        dep.status?.observedGeneration === dep.metadata?.generation &&
        (dep.status?.availableReplicas ?? 0) >= 1
        ? true
        : undefined;
    });
  });

  it("flapping: status follows, but no Pulumi process, no Deployment/ConfigMap/ReplicaSet change", async () => {
    await controller.queue.idle();
    const before = await snapshot();
    const processes = engine.processesStarted;
    const writes = await controller.metrics.statusWrites.get();
    const reconciles = controller.reconcileCounts.get(`${ns}/gw`) ?? 0;
    const seen = new Set<string>();
    const phases = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await status().catch(() => undefined);
        if (s) {
          seen.add(backend(s, "flappy")?.status ?? "?");
          phases.add(s.phase ?? "?");
        }
        await sleep(250);
      }
    })();

    const r = rng(SEED);
    const end = Date.now() + FLAP_SECONDS * 1000;
    const half = Date.now() + (FLAP_SECONDS * 1000) / 2;
    let cycles = 0;
    flappy.setMode("flap"); // first half: every other probe fails
    while (Date.now() < half) await sleep(250);
    flappy.setMode("ok");
    while (Date.now() < end) {
      // second half: the port goes away and comes back at random intervals
      await flappy.stop();
      await sleep(r.range(300, 2500));
      await flappy.start();
      await sleep(r.range(300, 2500));
      cycles++;
    }
    await flappy.start();
    flappy.setMode("ok");

    const ready = await poll("flappy ready again and phase Ready", async () => {
      const s = await status();
      return s.phase === "Ready" &&
        backend(s, "flappy")?.status === "ready" &&
        backend(s, "steady")?.status === "ready"
        ? s
        : undefined;
    });
    watching = false;
    await watcher;
    await controller.queue.idle();
    const after = await snapshot();

    assert.ok(seen.has("unavailable"), `the flapping was seen in status (saw ${[...seen].join(", ")})`);
    assert.equal(ready.backendCount, 2);
    assert.deepEqual(
      after,
      before,
      "Deployment generation/uid/checksum, ReplicaSets, ConfigMap and applied hash unchanged",
    );
    assert.equal(engine.processesStarted, processes, "no Pulumi process after the initial up");

    // kubectl describe tells the story, without a storm: at most one Event per transition
    // kind and backend (or phase pair) per minute.
    const events = (
      await core().listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=gw" })
    ).items.filter((e) =>
      ["PhaseChanged", "BackendUnavailable", "BackendRecovered"].includes(e.reason ?? ""),
    );
    const minutes = Math.ceil((Date.now() - started) / 60_000) + 1;
    const count = (reason: string, subject: string) =>
      events.filter((e) => e.reason === reason && e.message?.includes(subject)).length;
    const story = events.map((e) => `${e.reason}: ${e.message}`).join("\n");
    assert.ok(count("BackendUnavailable", "flappy") >= 1, `no BackendUnavailable Event:\n${story}`);
    assert.ok(count("BackendUnavailable", "flappy") <= minutes, story);
    assert.ok(count("BackendRecovered", "flappy") <= minutes, story);
    assert.ok(count("PhaseChanged", "Ready → Degraded") <= minutes, story);
    // 2 kinds × 2 backends + 4 phase pairs (Ready/Degraded/Pending) per minute, at most
    assert.ok(events.length <= 8 * minutes, `${events.length} transition Events:\n${story}`);
    const dWrites = (await controller.metrics.statusWrites.get()) - writes;
    const dReconciles = (controller.reconcileCounts.get(`${ns}/gw`) ?? 0) - reconciles;
    // No hot loop: at most a few reconciles per second of flapping (one per transition, 1 s probes).
    assert.ok(dReconciles <= 3 * (FLAP_SECONDS + 30), `reconciles while flapping: ${dReconciles}`);
    console.log(
      `      ${FLAP_SECONDS} s flapping (${cycles} stop/start cycles): phases seen ${[...phases].join(",")}; ` +
        `${dReconciles} reconciles, ${dWrites} status writes, ${events.length} transition Events, 0 Pulumi processes, Deployment generation ${after.depGeneration} unchanged, ${after.replicaSets.length} ReplicaSet(s)`,
    );
  });
});
