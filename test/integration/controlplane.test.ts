// The local control plane behaves like a cluster: everything the controller and Pulumi's
// awaits rely on (CRDs, Deployments becoming Available, Service endpoints, ownerReference
// GC, RBAC) works, and stopping it leaves nothing behind.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  VersionApi,
  type V1CustomResourceDefinition,
  type V1Deployment,
} from "@kubernetes/client-node";
import {
  applyCrds,
  crdReady,
  FAKE_NODE_NAME,
  isAlive,
  silentLogger,
  startControlPlane,
} from "../../localcluster/index.js";
import { waitFor } from "../../localcluster/readiness.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function deployment(name: string, labels: Record<string, string>): V1Deployment {
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        // kwok never pulls or runs the image; it only has to be a valid reference.
        spec: {
          containers: [
            { name: "app", image: "registry.invalid/vmcp/noop:1", ports: [{ containerPort: 8080 }] },
          ],
        },
      },
    },
  };
}

async function waitForAvailable(apps: AppsV1Api, namespace: string, name: string): Promise<V1Deployment> {
  let latest: V1Deployment | undefined;
  await waitFor(
    `Deployment ${namespace}/${name} Available`,
    async () => {
      latest = await apps.readNamespacedDeployment({ name, namespace });
      return latest.status?.conditions?.some((c) => c.type === "Available" && c.status === "True") ?? false;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  assert.ok(latest);
  return latest;
}

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.test.vmcp.dev" },
  spec: {
    group: "test.vmcp.dev",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: { spec: { type: "object", properties: { size: { type: "integer" } } } },
          },
        },
      },
    ],
  },
};

describe("local control plane", function () {
  this.timeout(90_000);

  it("serves the API to the admin kubeconfig written to disk", async () => {
    const plane = controlPlane();
    assert.ok(existsSync(plane.kubeconfigPath));
    assert.equal(process.env.KUBECONFIG, plane.kubeconfigPath);
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfigPath);
    assert.equal(
      kc.getCurrentCluster()?.skipTLSVerify ?? false,
      false,
      "TLS is verified with the plane's CA",
    );
    const version = await kc.makeApiClient(VersionApi).getCode();
    assert.match(version.gitVersion, /^v1\.\d+\.\d+/);
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace();
    assert.ok(namespaces.items.some((n) => n.metadata?.name === "default"));
  });

  it("installs a CRD that becomes Established and serves custom objects", async () => {
    const kc = adminKubeConfig();
    const names = await applyCrds(kc, [widgetCrd]);
    assert.deepEqual(names, ["widgets.test.vmcp.dev"]);
    const namespace = await newNamespace("crd");
    const custom = kc.makeApiClient(CustomObjectsApi);
    const target = { group: "test.vmcp.dev", version: "v1", namespace, plural: "widgets" };
    await custom.createNamespacedCustomObject({
      ...target,
      body: { apiVersion: "test.vmcp.dev/v1", kind: "Widget", metadata: { name: "w1" }, spec: { size: 3 } },
    });
    const got = (await custom.getNamespacedCustomObject({ ...target, name: "w1" })) as {
      spec?: { size?: number };
    };
    assert.equal(got.spec?.size, 3);
  });

  it("reports Established=True and NamesAccepted=True for the repo's CRDs", async function () {
    const list = await adminKubeConfig().makeApiClient(ApiextensionsV1Api).listCustomResourceDefinition();
    const repo = list.items.filter((c) => c.spec.group === "toolhive.stacklok.dev");
    if (repo.length === 0) this.skip(); // crds/ not generated yet
    for (const crd of repo) assert.ok(crdReady(crd), `${crd.metadata?.name} is not ready`);
  });

  it("makes a 1-replica Deployment Available with a pod on the fake node", async () => {
    const kc = adminKubeConfig();
    const namespace = await newNamespace("deploy");
    const apps = kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace, body: deployment("web", { app: "web" }) });
    const ready = await waitForAvailable(apps, namespace, "web");
    assert.equal(ready.status?.availableReplicas, 1);
    const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace, labelSelector: "app=web" });
    assert.equal(pods.items.length, 1);
    assert.equal(pods.items[0]?.spec?.nodeName, FAKE_NODE_NAME);
    assert.equal(pods.items[0]?.status?.phase, "Running");
  });

  it("gives a Service with a selector a ready EndpointSlice and Endpoints", async () => {
    const kc = adminKubeConfig();
    const namespace = await newNamespace("svc");
    const apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    await apps.createNamespacedDeployment({ namespace, body: deployment("api", { app: "api" }) });
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: "api" },
        spec: { selector: { app: "api" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      },
    });
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    let addresses: string[] = [];
    await waitFor(
      "EndpointSlice of Service api with a ready endpoint",
      async () => {
        const slices = await discovery.listNamespacedEndpointSlice({
          namespace,
          labelSelector: "kubernetes.io/service-name=api",
        });
        addresses = slices.items
          .flatMap((s) => s.endpoints ?? [])
          .filter((e) => e.conditions?.ready === true)
          .flatMap((e) => e.addresses);
        return addresses.length > 0;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const pods = await core.listNamespacedPod({ namespace, labelSelector: "app=api" });
    const podIP = pods.items[0]?.status?.podIP;
    assert.deepEqual(addresses, [podIP]);
    // The legacy Endpoints object is still what some clients (and Pulumi's Service await) read.
    await waitFor(
      "Endpoints of Service api",
      async () => {
        const endpoints = await core.readNamespacedEndpoints({ name: "api", namespace });
        return endpoints.subsets?.some((s) => s.addresses?.some((a) => a.ip === podIP)) ?? false;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const service = await core.readNamespacedService({ name: "api", namespace });
    assert.match(service.spec?.clusterIP ?? "", /^10\.96\.0\.\d+$/);
  });

  it("garbage-collects a dependent when its owner is deleted", async () => {
    const kc = adminKubeConfig();
    const namespace = await newNamespace("gc");
    const core = kc.makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "owner" } } });
    const uid = owner.metadata?.uid;
    assert.ok(uid);
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: "dependent",
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ name: "owner", namespace });
    await waitFor(
      "dependent ConfigMap to be garbage-collected",
      async () => {
        try {
          await core.readNamespacedConfigMap({ name: "dependent", namespace });
          return false;
        } catch (err) {
          if (statusOf(err) === 404) return true;
          throw err;
        }
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  });

  it("deletes a namespace with its contents (no namespace stuck Terminating)", async () => {
    const kc = adminKubeConfig();
    const namespace = await newNamespace("nsdel");
    const core = kc.makeApiClient(CoreV1Api);
    const rootCa = await core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace });
    assert.match(rootCa.data?.["ca.crt"] ?? "", /BEGIN CERTIFICATE/);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "content" } } });
    await core.deleteNamespace({ name: namespace });
    await waitFor(
      `namespace ${namespace} to disappear`,
      async () => {
        try {
          await core.readNamespace({ name: namespace });
          return false;
        } catch (err) {
          if (statusOf(err) === 404) return true;
          throw err;
        }
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  });

  it("enforces RBAC: the group-less vmcp-controller user may not list secrets", async () => {
    const plane = controlPlane();
    const namespace = await newNamespace("rbac");
    const admin = adminKubeConfig().makeApiClient(CoreV1Api);
    await admin.listNamespacedSecret({ namespace }); // the admin may
    const kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfigFor(plane.users.controller));
    const controller = kc.makeApiClient(CoreV1Api);
    await assert.rejects(controller.listNamespacedSecret({ namespace }), (err) => statusOf(err) === 403);
  });
});

describe("control plane lifecycle", function () {
  this.timeout(120_000);

  it("a second full plane runs alongside, and stop() leaves no process and no work dir", async () => {
    const plane = await startControlPlane({ full: true, log: silentLogger });
    let stopped = false;
    try {
      assert.deepEqual(plane.processes.map((p) => p.name).sort(), [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
      ]);
      assert.notEqual(plane.server, controlPlane().server);
      for (const p of plane.processes) assert.ok(isAlive(p.pid), `${p.name} should be running`);
      await plane.stop();
      stopped = true;
      for (const p of plane.processes) assert.ok(!isAlive(p.pid), `${p.name} (pid ${p.pid}) survived stop()`);
      assert.ok(!existsSync(plane.dir), "work dir removed");
    } finally {
      if (!stopped) await plane.stop();
    }
  });

  it("a minimal plane (no controller-manager) admits Pods without a default ServiceAccount", async () => {
    const plane = await startControlPlane({ full: false, log: silentLogger });
    try {
      assert.deepEqual(plane.processes.map((p) => p.name).sort(), ["etcd", "kube-apiserver"]);
      const kc = new KubeConfig();
      kc.loadFromString(plane.kubeconfig);
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: "bare" } } });
      const pod = await core.createNamespacedPod({
        namespace: "bare",
        body: {
          metadata: { name: "p" },
          spec: { containers: [{ name: "c", image: "registry.invalid/x:1" }] },
        },
      });
      assert.equal(pod.spec?.nodeName, undefined, "nothing schedules it");
    } finally {
      await plane.stop();
    }
    for (const p of plane.processes) assert.ok(!isAlive(p.pid), `${p.name} (pid ${p.pid}) survived stop()`);
  });
});
