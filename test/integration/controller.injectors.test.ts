// Living beside injectors (issue 19 item 3). A mesh or policy controller adds its own
// labels, annotations, a sidecar container, an init container and a volume to the vMCP
// Deployment's pod template, and labels and annotations to our Service and ConfigMap: one
// as a server-side apply of its own field manager (the way a controller claims fields),
// one as a plain merge patch (an Update, the way `kubectl annotate` or cert-manager's
// cainjector writes). Over many resyncs, and through a forced drift repair, the controller
// must neither loop nor roll the pods nor run Pulumi, and its repair must not strip what the
// other managers own. Counted: Deployment generations, ReplicaSets, Pulumi processes
// (engine) and Pulumi operations (the controller's /metrics).
import assert from "node:assert/strict";
import type { V1Deployment } from "@kubernetes/client-node";
import type { Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { kubeRequest } from "../../localcluster/rawrequest.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { kube, mergePatch } from "../support/kube.js";
import { poll } from "../support/poll.js";

const INJECTOR = "mesh-injector";
const ANNOTATOR = "cainjector";
const CHECKSUM = "toolhive.stacklok.dev/runconfig-checksum";

describe("controller beside injectors: no loop, no rollout, no Pulumi run, nothing stripped (real engine)", function () {
  this.timeout(600_000);
  let ns: string;
  let controller: Controller;
  let tc: TestController | undefined;
  const k = kube(adminKubeConfig, () => ns);
  const deployment = () => k.apps().readNamespacedDeployment({ name: "gw", namespace: ns });
  const replicaSets = async () =>
    (
      await k
        .apps()
        .listNamespacedReplicaSet({ namespace: ns, labelSelector: "app.kubernetes.io/instance=gw" })
    ).items;
  const pulumiOps = async () => {
    const text = await (await fetch(`http://127.0.0.1:${controller.port}/metrics`)).text();
    return [...text.matchAll(/^vmcp_pulumi_operation_duration_seconds_count\{op="(\w+)"\} (\d+)$/gm)]
      .map((m) => `${m[1]}=${m[2]}`)
      .sort()
      .join(",");
  };
  /** The Deployment rolled out: the controller-manager saw its generation, one available replica. */
  const rolledOut = (what: string) =>
    poll(what, async () => {
      const d = await deployment();
      // replicas 1: the old ReplicaSet's pod is gone too (it is counted in the status).
      return d.status?.observedGeneration === d.metadata?.generation &&
        d.status?.replicas === 1 &&
        d.status?.updatedReplicas === 1 &&
        d.status?.availableReplicas === 1
        ? d
        : undefined;
    });
  /** What the injectors added, as found on the live objects (asserted, not returned). */
  async function assertInjected(): Promise<void> {
    const d = await deployment();
    const t = d.spec!.template;
    assert.equal(t.metadata?.labels?.["sidecar.istio.io/inject"], "true");
    assert.equal(t.metadata?.annotations?.["sidecar.istio.io/status"], '{"containers":["istio-proxy"]}');
    assert.deepEqual(
      t.spec?.containers.map((c) => c.name),
      ["vmcp", "istio-proxy"],
    );
    assert.deepEqual(
      t.spec?.initContainers?.map((c) => c.name),
      ["istio-init"],
    );
    assert.ok(
      t.spec?.volumes?.some((v) => v.name === "istio-envoy"),
      "the sidecar's volume",
    );
    assert.equal(t.metadata?.labels?.["app.kubernetes.io/instance"], "gw", "our labels are still there");
    const svc = await k.core().readNamespacedService({ name: "vmcp-gw", namespace: ns });
    assert.equal(svc.metadata?.labels?.["mesh.example/exported"], "true");
    assert.equal(svc.metadata?.annotations?.["cert-manager.io/inject-ca-from"], `${ns}/vmcp-ca`);
    const cm = await k.core().readNamespacedConfigMap({ name: "gw-vmcp-config", namespace: ns });
    assert.equal(cm.metadata?.labels?.["mesh.example/watched"], "true");
    assert.equal(cm.metadata?.annotations?.["reloader.example/match"], "true");
  }

  before(async () => {
    ns = await newNamespace("inject");
    tc = await startTestController({
      name: "inject",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        kubeconfig: adminKubeConfig(),
        namespace: ns,
        workers: 2,
        resyncMs: 1_000, // many resyncs in a short observation window
        metricsAddr: "127.0.0.1:0",
        applyGraceMs: 5_000,
        healthChecks: false, // the backend is a placeholder
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }),
      },
    });
    controller = tc.controller;
    await k.readyGroup("tools");
    await k.entry("alpha", "tools", "http://alpha.example.test/mcp");
  });

  after(async () => {
    await tc?.stop();
  });

  let injectedGeneration: number;
  let rsCount: number;
  let processes: number;
  let ops: string;

  it("the first apply, then two injectors: only the injector's own rollout, no Pulumi run", async () => {
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    await poll("gw Ready", async () => ((await k.statusOf("gw")).phase === "Ready" ? true : undefined));
    const first = await rolledOut("gw's first rollout");
    await controller.queue.idle();
    processes = controller.engine.processesStarted;
    ops = await pulumiOps();
    assert.match(ops, /up=1/, "one Pulumi up made it");

    // A mesh injector claims its fields by server-side apply, force (as controllers do).
    const apply = (path: string, body: unknown) =>
      kubeRequest(
        adminKubeConfig(),
        "PATCH",
        `${path}?fieldManager=${INJECTOR}&force=true`,
        body,
        "application/apply-patch+yaml",
      );
    await apply(`/apis/apps/v1/namespaces/${ns}/deployments/gw`, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "gw", namespace: ns },
      spec: {
        template: {
          metadata: {
            labels: { "sidecar.istio.io/inject": "true", "security.istio.io/tlsMode": "istio" },
            annotations: { "sidecar.istio.io/status": '{"containers":["istio-proxy"]}' },
          },
          spec: {
            initContainers: [{ name: "istio-init", image: "istio/proxyv2:1.24.0", args: ["istio-iptables"] }],
            containers: [
              {
                name: "istio-proxy",
                image: "istio/proxyv2:1.24.0",
                args: ["proxy", "sidecar"],
                volumeMounts: [{ name: "istio-envoy", mountPath: "/etc/istio/proxy" }],
              },
            ],
            volumes: [{ name: "istio-envoy", emptyDir: { medium: "Memory" } }],
          },
        },
      },
    });
    await apply(`/api/v1/namespaces/${ns}/configmaps/gw-vmcp-config`, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "gw-vmcp-config", namespace: ns, labels: { "mesh.example/watched": "true" } },
    });
    // Another one writes with plain patches (an Update: it owns what it changed).
    await k.core().patchNamespacedService(
      {
        name: "vmcp-gw",
        namespace: ns,
        fieldManager: ANNOTATOR,
        body: {
          metadata: {
            labels: { "mesh.example/exported": "true" },
            annotations: { "cert-manager.io/inject-ca-from": `${ns}/vmcp-ca` },
          },
        },
      },
      mergePatch,
    );
    await k.core().patchNamespacedConfigMap(
      {
        name: "gw-vmcp-config",
        namespace: ns,
        fieldManager: ANNOTATOR,
        body: { metadata: { annotations: { "reloader.example/match": "true" } } },
      },
      mergePatch,
    );
    const injected = await rolledOut("the injector's rollout");
    injectedGeneration = injected.metadata!.generation!;
    assert.equal(injectedGeneration, first.metadata!.generation! + 1, "one generation: the injector's edit");
    rsCount = (await replicaSets()).length;
    assert.equal(rsCount, 2, "ours and the injector's ReplicaSet");
    await assertInjected();
  });

  it("over many resyncs: no reconcile loop, no new generation or ReplicaSet, no Pulumi run, status not rewritten", async () => {
    // The status settled after the injector's rollout: one pod counted, not the old one too.
    await poll("gw's status counts the one pod", async () =>
      (await k.statusOf("gw")).conditions?.some(
        (c: { type: string; message?: string }) => c.type === "PodsReady" && c.message?.startsWith("1/1 "),
      )
        ? true
        : undefined,
    );
    await controller.queue.idle();
    const runs = controller.reconcileCounts.get(`${ns}/gw`) ?? 0;
    const writes = await controller.metrics.statusWrites.get();
    const status = await k.statusOf("gw");
    // 20 resyncs of 1 s (plus the events the injectors' writes caused): a loop shows within a few.
    await poll(
      "20 more reconciles of gw",
      () => ((controller.reconcileCounts.get(`${ns}/gw`) ?? 0) >= runs + 20 ? true : undefined),
      300_000,
      500,
    );
    const d = await deployment();
    assert.equal(d.metadata?.generation, injectedGeneration, "no rollout of ours");
    assert.equal((await replicaSets()).length, rsCount);
    assert.equal(controller.engine.processesStarted, processes, "no Pulumi process");
    assert.equal(await pulumiOps(), ops, "no Pulumi operation");
    assert.deepEqual(await k.statusOf("gw"), status, "the status as it was");
    assert.equal(await controller.metrics.statusWrites.get(), writes, "no status write");
    assert.equal(controller.queue.failuresOf(`${ns}/gw`), 0, "not in backoff");
    await assertInjected();
  });

  it("a forced drift repair (our checksum edited by hand) restores ours and keeps every injected field", async () => {
    const before: V1Deployment = await deployment();
    const ours = before.spec!.template.metadata!.annotations![CHECKSUM];
    await k.apps().patchNamespacedDeployment(
      {
        name: "gw",
        namespace: ns,
        fieldManager: "kubectl-edit",
        body: { spec: { template: { metadata: { annotations: { [CHECKSUM]: "edited-by-hand" } } } } },
      },
      mergePatch,
    );
    const repaired = await poll("the checksum repaired", async () => {
      const d = await deployment();
      return d.spec?.template.metadata?.annotations?.[CHECKSUM] === ours ? d : undefined;
    });
    await controller.queue.idle();
    assert.equal(controller.queue.failuresOf(`${ns}/gw`), 0, "the repair did not fail");
    await rolledOut("the repair's rollout");
    // The hand edit is one generation, the repair another; the injected fields stay.
    assert.equal(repaired.metadata?.generation, injectedGeneration + 2);
    await assertInjected();
    const afterRepair = { processes: controller.engine.processesStarted, ops: await pulumiOps() };
    const runs = controller.reconcileCounts.get(`${ns}/gw`) ?? 0;
    await poll(
      "10 more reconciles of gw",
      () => ((controller.reconcileCounts.get(`${ns}/gw`) ?? 0) >= runs + 10 ? true : undefined),
      300_000,
      500,
    );
    assert.equal(
      (await deployment()).metadata?.generation,
      repaired.metadata?.generation,
      "no loop after it",
    );
    assert.equal(controller.engine.processesStarted, afterRepair.processes);
    assert.equal(await pulumiOps(), afterRepair.ops);
    await assertInjected();
  });
});
