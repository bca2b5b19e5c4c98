// Mocha root hook plugin: ONE full local control plane per test run, shared by every
// integration test; each test isolates itself in its own namespace (newNamespace).
// Load it with: mocha --require dist/test/integration/fixture.js ...
// Set VMCP_TEST_KEEP=1 to keep the work dir (logs, etcd data) after the run.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import {
  consoleLogger,
  installCrdsFromDir,
  isAlive,
  startControlPlane,
  startProcessKubelet,
  vmcpImages,
  type ControlPlane,
  type ProcessKubelet,
} from "../../localcluster/index.js";
import type { Logger } from "../../controller/log.js";
import { DEFAULT_VMCP_IMAGE } from "../../program/names.js";
import { startTestController, type TestController } from "../support/controller.js";
import { waitFor } from "../../localcluster/readiness.js";

let plane: ControlPlane | undefined;
let kubelet: Promise<ProcessKubelet> | undefined;

/** The shared control plane; only valid inside tests (after the root beforeAll). */
export function controlPlane(): ControlPlane {
  if (!plane) throw new Error("no control plane: run mocha with --require dist/test/integration/fixture.js");
  return plane;
}

/** A client config for the shared plane's admin user. */
export function adminKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(controlPlane().kubeconfig);
  return kc;
}

/** The repo root: the nearest ancestor of this file holding package.json (works from dist/ too). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above the test fixture");
    dir = parent;
  }
  return dir;
}

/**
 * Creates a namespace `<prefix>-<random>` and waits for its `default` ServiceAccount
 * (created by kube-controller-manager), without which Pods are rejected at admission.
 */
export async function newNamespace(prefix: string): Promise<string> {
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await core.createNamespace({ body: { metadata: { name, labels: { "vmcp.test/prefix": prefix } } } });
  await waitFor(
    `ServiceAccount ${name}/default`,
    async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: name })) !== undefined,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return name;
}

/**
 * The shared plane's process kubelet, started on first use: vMCP pods (the image we deploy,
 * ToolHive's vmcp at $VMCP_BINARY's version) then really run; other pods stay on kwok's node.
 * Needs root. Stopped (every pod process, netns and the bridge) before the plane.
 */
export function runPods(): Promise<ProcessKubelet> {
  kubelet ??= (async () => {
    const images = vmcpImages(process.env.VMCP_BINARY ?? "vmcp");
    if (!(DEFAULT_VMCP_IMAGE in images))
      throw new Error(
        `$VMCP_BINARY plays ${Object.keys(images).join()}, the controller deploys ${DEFAULT_VMCP_IMAGE}`,
      );
    const p = controlPlane();
    return startProcessKubelet({
      kubeconfig: p.kubeconfig,
      dir: join(p.dir, "kubelet"),
      images,
      nodeName: "process-node-0",
      backoffBaseMs: 2000,
      backoffCapMs: 20_000,
      log: consoleLogger("kubelet"),
    });
  })();
  return kubelet;
}

/**
 * A controller for tests whose vMCP pods really run (runPods): its probes reach backends
 * the way the pods do, not over loopback, and a change is reconciled by its watch, not by a
 * resync.
 */
export function startPodsController(name: string, namespace: string, log?: Logger): Promise<TestController> {
  return startTestController({
    name,
    kubeconfigPath: controlPlane().kubeconfigPath,
    controller: {
      kubeconfig: adminKubeConfig(),
      namespace,
      workers: 2,
      resyncMs: 3_600_000,
      probeEgress: { allowLoopback: false },
      ...(log ? { log } : {}),
    },
  });
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    const log = consoleLogger("cluster");
    plane = await startControlPlane({ full: true, keep: process.env.VMCP_TEST_KEEP === "1", log });
    process.env.KUBECONFIG = plane.kubeconfigPath;
    const crdDir = join(repoRoot(), "crds");
    if (existsSync(crdDir)) {
      const names = await installCrdsFromDir(adminKubeConfig(), crdDir);
      log("CRDs established", { count: names.length, from: crdDir });
    }
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(30_000);
    if (!plane) return;
    const stopped = plane;
    plane = undefined;
    const pods = await kubelet?.catch(() => undefined);
    kubelet = undefined;
    const podPids = pods?.pids() ?? [];
    await pods?.stop();
    await stopped.stop();
    const leakedPods = podPids.filter(isAlive);
    if (leakedPods.length > 0) throw new Error(`pod processes left after stop(): ${leakedPods.join(", ")}`);
    // A leaked apiserver/etcd would survive into the next run: fail loudly instead.
    const leaked = stopped.processes.filter((p) => isAlive(p.pid));
    if (leaked.length > 0)
      throw new Error(`processes left after stop(): ${leaked.map((p) => `${p.name}:${p.pid}`).join(", ")}`);
  },
};
