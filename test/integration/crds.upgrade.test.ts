// CRD upgrades that happen (issue 19 item 1). Helm installs a chart's crds/ once and never
// upgrades it; this chart renders the CRDs as templates (helm.sh/resource-policy: keep), so
// `helm upgrade` brings them to the chart's version, and the plain manifests, applied
// server-side, do the same. On a plane of its own (CRDs are cluster-wide), for each path:
// install a previous release whose CRDs are older (VirtualMCPServer served and stored as
// v1alpha1 only, without spec.telemetryConfigRef, no MCPTelemetryConfig kind), create a
// VirtualMCPServer through v1alpha1, upgrade, and see the new schema served while the old
// object reads back, unchanged, as v1beta1. Then the storage migration of docs/install.md
// (re-store every object, trim storedVersions), checked in etcd itself.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  KubeConfig,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { parse, parseAllDocuments, stringify } from "yaml";
import { GROUP } from "../../api/index.js";
import { applyCrds } from "../../localcluster/crds.js";
import { consoleLogger, startControlPlane, type ControlPlane } from "../../localcluster/index.js";
import { kubeRequest } from "../../localcluster/rawrequest.js";
import { pinnedHelm, pinnedHelmVersion } from "../support/helm.js";
import { gone, poll } from "../support/poll.js";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const CHART = join(ROOT, "deploy", "helm", "vmcp-operator");
const RELEASE_NS = "vmcp-system";
const VMCP_CRD = `virtualmcpservers.${GROUP}`;
const NEW_KIND_CRD = `mcptelemetryconfigs.${GROUP}`;

type Crd = V1CustomResourceDefinition;
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: Record<string, unknown>;
};

/**
 * The previous release's CRDs, derived from today's: one version, v1alpha1, served and
 * stored (as ToolHive's releases before v1beta1), without spec.telemetryConfigRef on
 * VirtualMCPServer, and no MCPTelemetryConfig at all.
 */
function previousCrds(dir: string): void {
  for (const f of readdirSync(dir)) {
    const crd = parse(readFileSync(join(dir, f), "utf8")) as Crd;
    if (crd.metadata?.name === NEW_KIND_CRD) {
      rmSync(join(dir, f));
      continue;
    }
    const v1alpha1 = crd.spec.versions.find((v) => v.name === "v1alpha1");
    assert.ok(v1alpha1, `${crd.metadata?.name} serves v1alpha1`);
    v1alpha1.storage = true;
    delete v1alpha1.deprecated;
    delete v1alpha1.deprecationWarning;
    crd.spec.versions = [v1alpha1];
    if (crd.metadata?.name === VMCP_CRD) {
      const spec = v1alpha1.schema?.openAPIV3Schema?.properties?.["spec"];
      assert.ok(
        spec?.properties?.["telemetryConfigRef"],
        "today's VirtualMCPServer has spec.telemetryConfigRef",
      );
      delete spec.properties["telemetryConfigRef"];
    }
    writeFileSync(join(dir, f), stringify(crd));
  }
}

/** A copy of the chart as the previous release shipped it: version 0.0.9, older CRDs. */
function previousChart(): string {
  const dir = join(mkdtempSync(join(tmpdir(), "vmcp-prev-chart-")), "vmcp-operator");
  cpSync(CHART, dir, { recursive: true });
  const chartYaml = join(dir, "Chart.yaml");
  writeFileSync(
    chartYaml,
    readFileSync(chartYaml, "utf8")
      .replace(/^version: .*$/m, "version: 0.0.9")
      .replace(/^appVersion: .*$/m, 'appVersion: "0.0.9"'),
  );
  previousCrds(join(dir, "files", "crds"));
  return dir;
}

/** The etcd client URL of the plane (from etcd's command line). */
function etcdUrl(plane: ControlPlane): string {
  const etcd = plane.processes.find((p) => p.name === "etcd");
  const args = etcd ? readFileSync(`/proc/${etcd.pid}/cmdline`, "utf8").split("\0") : [];
  const url = args.find((a) => a.startsWith("--advertise-client-urls="))?.split("=")[1];
  assert.ok(url, `etcd's client URL in: ${args.join(" ")}`);
  return url.split(",")[0]!;
}

/** The apiVersion an object is stored under in etcd (custom resources are stored as JSON). */
async function storedApiVersion(
  plane: ControlPlane,
  plural: string,
  ns: string,
  name: string,
): Promise<string> {
  const key = `/registry/${GROUP}/${plural}/${ns}/${name}`;
  const res = await fetch(`${etcdUrl(plane)}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
  });
  const body = (await res.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  assert.ok(value, `etcd has ${key}`);
  return (JSON.parse(Buffer.from(value, "base64").toString("utf8")) as { apiVersion: string }).apiVersion;
}

describe("CRD upgrades: helm upgrade and the plain manifests bring the CRDs to the release's version", function () {
  this.timeout(600_000);
  let plane: ControlPlane;
  let kc: KubeConfig;
  let prevChart: string;
  let stored: Record<string, unknown>;
  const helm = pinnedHelm();

  const crd = async (name: string): Promise<Crd> =>
    kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name });
  const served = async (name: string) =>
    (await crd(name)).spec.versions.map((v) => `${v.name}${v.storage ? "*" : ""}`).sort();
  const path = (version: string, ns: string, name = "") =>
    `/apis/${GROUP}/${version}/namespaces/${ns}/virtualmcpservers${name ? `/${name}` : ""}`;
  const createVmcp = (version: string, ns: string, name: string, spec: Record<string, unknown>) =>
    kubeRequest(kc, "POST", path(version, ns), {
      apiVersion: `${GROUP}/${version}`,
      kind: "VirtualMCPServer",
      metadata: { name, namespace: ns },
      spec,
    }) as Promise<Obj>;
  const readVmcp = (version: string, ns: string, name: string) =>
    kubeRequest(kc, "GET", path(version, ns, name)) as Promise<Obj>;
  const run = (args: string[]) => {
    const r = spawnSync(helm!, args, {
      encoding: "utf8",
      env: { ...process.env, KUBECONFIG: plane.kubeconfigPath, HELM_CACHE_HOME: join(plane.dir, "helm") },
    });
    assert.equal(r.status, 0, `helm ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  /**
   * helm writes CRDs and returns: the API server serves a new version a moment later (a
   * request before that is a 404; docs/install.md has users wait for it). The test waits
   * until a request to that version is answered.
   */
  const established = async (version: string) => {
    await poll(
      `virtualmcpservers served at ${version}`,
      () =>
        kubeRequest(kc, "GET", `/apis/${GROUP}/${version}/virtualmcpservers`).then(
          () => true,
          () => undefined,
        ),
      30_000,
      100,
    );
  };
  const namespace = async (name: string) => {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
    return name;
  };
  const spec = { groupRef: { name: "tools" }, incomingAuth: { type: "anonymous" } };

  /** What the upgrade must leave: the old object as v1beta1, the new schema, the new kind. */
  async function assertUpgraded(ns: string, written: Record<string, unknown>): Promise<void> {
    assert.deepEqual(await served(VMCP_CRD), ["v1alpha1", "v1beta1*"]);
    const old = await readVmcp("v1beta1", ns, "old");
    assert.equal(old.apiVersion, `${GROUP}/v1beta1`);
    assert.deepEqual(
      old.spec,
      written,
      "the object written through v1alpha1 reads back unchanged as v1beta1",
    );
    const created = await createVmcp("v1beta1", ns, "new", { ...spec, telemetryConfigRef: { name: "otel" } });
    assert.deepEqual(created.spec?.["telemetryConfigRef"], { name: "otel" }, "the new field is kept");
    const newKind = await crd(NEW_KIND_CRD);
    assert.ok(newKind.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"));
    assert.deepEqual((await crd(VMCP_CRD)).status?.storedVersions?.sort(), ["v1alpha1", "v1beta1"]);
  }

  /** Before the upgrade: the old schema prunes the field it does not know. Returns the spec stored. */
  async function createOnOldSchema(ns: string): Promise<Record<string, unknown>> {
    assert.deepEqual(await served(VMCP_CRD), ["v1alpha1*"]);
    await assert.rejects(crd(NEW_KIND_CRD), (e: unknown) => (e as { code?: number }).code === 404);
    const old = await createVmcp("v1alpha1", ns, "old", { ...spec, telemetryConfigRef: { name: "otel" } });
    assert.deepEqual(old.spec?.["groupRef"], spec.groupRef);
    assert.equal(
      old.spec?.["telemetryConfigRef"],
      undefined,
      "the previous schema does not know telemetryConfigRef",
    );
    assert.equal(await storedApiVersion(plane, "virtualmcpservers", ns, "old"), `${GROUP}/v1alpha1`);
    return old.spec!;
  }

  before(async function () {
    if (!helm) {
      console.log(`      (skipped: no helm v${pinnedHelmVersion()}; run scripts/toolchain.sh helm)`);
      this.skip();
    }
    this.timeout(180_000);
    // The API server alone: nothing here needs pods.
    plane = await startControlPlane({
      full: false,
      keep: process.env.VMCP_TEST_KEEP === "1",
      log: consoleLogger("crd-plane"),
    });
    kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    prevChart = previousChart();
  });

  after(async function () {
    this.timeout(60_000);
    await plane?.stop();
    if (prevChart) rmSync(join(prevChart, ".."), { recursive: true, force: true });
  });

  it("helm install of the previous release, then helm upgrade: the new schema is served, the old object reads as v1beta1", async () => {
    const sets = ["--set", "state.passphrase=upgrade-test"];
    run(["install", "vmcp-operator", prevChart, "-n", RELEASE_NS, "--create-namespace", ...sets]);
    await established("v1alpha1");
    const ns = await namespace("helm-upgrade");
    stored = await createOnOldSchema(ns);
    run(["upgrade", "vmcp-operator", CHART, "-n", RELEASE_NS, ...sets]);
    await established("v1beta1");
    await assertUpgraded(ns, stored);
  });

  it("the storage migration of docs/install.md: every object re-stored as v1beta1, storedVersions trimmed", async () => {
    const ns = "helm-upgrade";
    // `kubectl get virtualmcpservers -A -o json | kubectl replace -f -`: an unchanged PUT
    // that the API server writes because the stored bytes name another version.
    const list = (await kubeRequest(kc, "GET", `/apis/${GROUP}/v1beta1/virtualmcpservers`)) as {
      items: Obj[];
    };
    for (const o of list.items)
      await kubeRequest(kc, "PUT", path("v1beta1", o.metadata.namespace!, o.metadata.name), o);
    assert.equal(await storedApiVersion(plane, "virtualmcpservers", ns, "old"), `${GROUP}/v1beta1`);
    // `kubectl patch crd … --subresource=status --type=merge -p '{"status":{"storedVersions":["v1beta1"]}}'`
    await kubeRequest(
      kc,
      "PATCH",
      `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${VMCP_CRD}/status`,
      { status: { storedVersions: ["v1beta1"] } },
      "application/merge-patch+json",
    );
    assert.deepEqual((await crd(VMCP_CRD)).status?.storedVersions, ["v1beta1"]);
    assert.deepEqual((await readVmcp("v1alpha1", ns, "old")).spec, stored, "still served as v1alpha1 too");
  });

  it("helm uninstall keeps the CRDs and the objects (resource-policy keep)", async () => {
    run(["uninstall", "vmcp-operator", "-n", RELEASE_NS, "--wait"]);
    assert.deepEqual(await served(VMCP_CRD), ["v1alpha1", "v1beta1*"]);
    assert.equal((await readVmcp("v1beta1", "helm-upgrade", "old")).metadata.name, "old");
  });

  it("the plain manifests of the previous release, then today's, applied server-side: the same upgrade", async () => {
    // Back to a cluster without the CRDs (deleting one deletes its objects).
    const api = kc.makeApiClient(ApiextensionsV1Api);
    for (const c of (await api.listCustomResourceDefinition()).items) {
      const name = c.metadata!.name!;
      await api.deleteCustomResourceDefinition({ name });
      await gone(`CRD ${name}`, () => crd(name), 60_000);
    }
    // `kubectl apply --server-side -f vmcp-operator.yaml`, the CRDs of it (the deploy test
    // applies the rest): rendered as deploy/render.sh renders them.
    const manifestCrds = (chart: string): Crd[] =>
      parseAllDocuments(
        run([
          "template",
          "vmcp-operator",
          chart,
          "-n",
          RELEASE_NS,
          "-f",
          join(ROOT, "deploy", "manifests", "values.yaml"),
        ]),
      )
        .map((d) => d.toJS() as Obj | null)
        .filter((o): o is Obj => o?.kind === "CustomResourceDefinition") as unknown as Crd[];
    const previous = manifestCrds(prevChart);
    assert.equal(previous.length, readdirSync(join(ROOT, "crds")).length - 1);
    await applyCrds(kc, previous, { timeoutMs: 60_000 });
    const ns = await namespace("manifests-upgrade");
    const before = await createOnOldSchema(ns);
    const today = readFileSync(join(ROOT, "deploy", "manifests", "vmcp-operator.yaml"), "utf8");
    const current = parseAllDocuments(today)
      .map((d) => d.toJS() as Obj | null)
      .filter((o): o is Obj => o?.kind === "CustomResourceDefinition") as unknown as Crd[];
    await applyCrds(kc, current, { timeoutMs: 60_000 });
    await poll("MCPTelemetryConfig served", () => crd(NEW_KIND_CRD));
    await assertUpgraded(ns, before);
  });
});
