// Migration from ToolHive's operator without downtime (issue 19 item 2), and the way back.
// On a plane of its own with ToolHive's CRDs, thv-operator 0.44.0 runs a VirtualMCPServer
// until its Deployment is available. Then it is stopped and vmcp-operator started: it must
// take over the very objects (same uids, owner references to the same VirtualMCPServer)
// with at most one rolling update, while a watch on the Deployment and on the Service's
// EndpointSlices sees an available, ready replica at every moment; the status changes
// writers cleanly (ours, and no condition of ToolHive's left behind). What thv-operator
// made that we do not is left alone. Then back: stop ours, drop our finalizer, start
// thv-operator again, and it serves with the same objects, again without a gap.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  Watch,
  type KubernetesObject,
  type V1Deployment,
  type V1EndpointSlice,
} from "@kubernetes/client-node";
import { GROUP } from "../../api/index.js";
import { isOurCondition } from "../../controller/conditions.js";
import { jsonLogger } from "../../controller/log.js";
import {
  consoleLogger,
  installCrdsFromDir,
  startControlPlane,
  type ControlPlane,
} from "../../localcluster/index.js";
import { DEFAULT_VMCP_IMAGE, FINALIZER, FIELD_MANAGER } from "../../program/names.js";
import { startTestController, type TestController } from "../support/controller.js";
import { mergePatch } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { startThvOperator, THV_CRDS, type ThvOperator } from "../support/thvoperator.js";

const NS = "team-a";
const NAME = "gw";
const CHECKSUM = "toolhive.stacklok.dev/runconfig-checksum";

type Meta = { uid?: string; ownerReferences?: { uid?: string; kind?: string }[] };
type Listed = { kind: string; name: string; uid: string; owned: boolean };

/** A running record of the vMCP's availability, from watch events (not from polling). */
class Availability {
  readonly samples: { at: number; what: string; available: number }[] = [];
  private aborts: (() => void)[] = [];
  constructor(private readonly kc: KubeConfig) {}

  async start(): Promise<void> {
    const watch = new Watch(this.kc);
    const record = (what: string, available: number) =>
      this.samples.push({ at: Date.now(), what, available });
    const w1 = await watch.watch(
      `/apis/apps/v1/namespaces/${NS}/deployments`,
      { fieldSelector: `metadata.name=${NAME}` },
      (_type: string, d: V1Deployment) =>
        record(`deployment gen ${d.metadata?.generation}`, d.status?.availableReplicas ?? 0),
      () => undefined,
    );
    const w2 = await watch.watch(
      `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
      { labelSelector: `kubernetes.io/service-name=vmcp-${NAME}` },
      (type: string, s: V1EndpointSlice) =>
        record(
          `endpointslice ${type}`,
          type === "DELETED" ? 0 : (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length,
        ),
      () => undefined,
    );
    this.aborts = [() => w1.abort(), () => w2.abort()];
  }

  stop(): void {
    for (const a of this.aborts) a();
  }

  /** The samples where nothing was available (after `from`), e.g. "deployment gen 3: 0". */
  gaps(from: number): string[] {
    return this.samples.filter((s) => s.at >= from && s.available === 0).map((s) => `${s.what}: 0`);
  }
}

describe("migration from ToolHive's operator: take over without downtime, and back", function () {
  this.timeout(600_000);
  let plane: ControlPlane;
  let kc: KubeConfig;
  let thv: ThvOperator | undefined;
  let ours: TestController | undefined;
  let availability: Availability;
  let vmcpUid: string;
  let thvObjects: Listed[];
  let rsBefore: number;
  let genBefore: number;
  let hmacBefore: string | undefined;
  const hmac = async () =>
    (await core().readNamespacedSecret({ name: `${NAME}-hmac-secret`, namespace: NS })).data?.["hmac-secret"];

  const apps = () => kc.makeApiClient(AppsV1Api);
  const core = () => kc.makeApiClient(CoreV1Api);
  const custom = () => kc.makeApiClient(CustomObjectsApi);
  const at = (plural: string) => ({ group: GROUP, version: "v1beta1", namespace: NS, plural });
  const vmcp = async () =>
    (await custom().getNamespacedCustomObject({
      ...at("virtualmcpservers"),
      name: NAME,
    })) as KubernetesObject & {
      status?: { phase?: string; conditions?: { type: string; status: string; reason?: string }[] };
      metadata: { managedFields?: { manager?: string; subresource?: string }[] };
    };
  const deployment = () => apps().readNamespacedDeployment({ name: NAME, namespace: NS });
  const objectMeta = async (kind: string) => {
    const at = {
      namespace: NS,
      name:
        kind === "Deployment"
          ? NAME
          : kind === "Service"
            ? `vmcp-${NAME}`
            : kind === "ConfigMap"
              ? `${NAME}-vmcp-config`
              : `${NAME}-vmcp`,
    };
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const read: Record<
      string,
      () => Promise<{ metadata?: { managedFields?: { manager?: string; subresource?: string }[] } }>
    > = {
      Deployment: () => apps().readNamespacedDeployment(at),
      Service: () => core().readNamespacedService(at),
      ConfigMap: () => core().readNamespacedConfigMap(at),
      ServiceAccount: () => core().readNamespacedServiceAccount(at),
      Role: () => rbac.readNamespacedRole(at),
      RoleBinding: () => rbac.readNamespacedRoleBinding(at),
    };
    return (await read[kind]!()).metadata ?? {};
  };
  const replicaSets = async () => (await apps().listNamespacedReplicaSet({ namespace: NS })).items;
  /** Every object of the namespace's kinds a vMCP consists of, and whether it is owned by the VirtualMCPServer. */
  async function inventory(): Promise<Listed[]> {
    const out: Listed[] = [];
    const add = (kind: string, items: { metadata?: Meta & { name?: string } }[]) => {
      for (const o of items)
        out.push({
          kind,
          name: o.metadata!.name!,
          uid: o.metadata!.uid!,
          owned: (o.metadata?.ownerReferences ?? []).some(
            (r) => r.uid === vmcpUid && r.kind === "VirtualMCPServer",
          ),
        });
    };
    add("Deployment", (await apps().listNamespacedDeployment({ namespace: NS })).items);
    add("Service", (await core().listNamespacedService({ namespace: NS })).items);
    add("ConfigMap", (await core().listNamespacedConfigMap({ namespace: NS })).items);
    add("Secret", (await core().listNamespacedSecret({ namespace: NS })).items);
    add("ServiceAccount", (await core().listNamespacedServiceAccount({ namespace: NS })).items);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    add("Role", (await rbac.listNamespacedRole({ namespace: NS })).items);
    add("RoleBinding", (await rbac.listNamespacedRoleBinding({ namespace: NS })).items);
    return out
      .filter((o) => o.owned)
      .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  }
  const rolledOut = (what: string, check: (d: V1Deployment) => boolean = () => true) =>
    poll(what, async () => {
      const d = await deployment();
      return d.status?.observedGeneration === d.metadata?.generation &&
        d.status?.updatedReplicas === 1 &&
        d.status?.availableReplicas === 1 &&
        (d.status?.replicas ?? 0) === 1 &&
        check(d)
        ? d
        : undefined;
    });
  const startThv = () =>
    startThvOperator(plane.kubeconfigPath, join(plane.dir, "thv-operator.log"), {
      // The image a ToolHive user pins; the same our controller deploys.
      VMCP_IMAGE: DEFAULT_VMCP_IMAGE,
    });

  before(async function () {
    this.timeout(240_000);
    assert.ok(THV_CRDS, 'THV_OPERATOR_CRDS is set (eval "$(bash scripts/toolchain.sh env)")');
    // kwok and the controller-manager: Deployments become available, EndpointSlices get endpoints.
    plane = await startControlPlane({
      full: true,
      keep: process.env.VMCP_TEST_KEEP === "1",
      log: consoleLogger("migrate-plane"),
    });
    kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    await installCrdsFromDir(kc, THV_CRDS);
    await core().createNamespace({ body: { metadata: { name: NS } } });
    await core().createNamespace({ body: { metadata: { name: "toolhive-system" } } });
    thv = startThv();
    const create = (plural: string, kind: string, name: string, spec: Record<string, unknown>) =>
      custom().createNamespacedCustomObject({
        ...at(plural),
        body: { apiVersion: `${GROUP}/v1beta1`, kind, metadata: { name, namespace: NS }, spec },
      });
    await create("mcpgroups", "MCPGroup", "tools", {});
    await create("mcpserverentries", "MCPServerEntry", "alpha", {
      remoteUrl: "http://alpha.example.test/mcp",
      transport: "streamable-http",
      groupRef: { name: "tools" },
    });
    await create("virtualmcpservers", "VirtualMCPServer", NAME, {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    vmcpUid = (await vmcp()).metadata!.uid!;
  });

  after(async function () {
    this.timeout(90_000);
    availability?.stop();
    await ours?.stop();
    await thv?.stop();
    await plane?.stop();
  });

  it("thv-operator serves the VirtualMCPServer: its Deployment available, its Service with a ready endpoint", async () => {
    const d = await rolledOut("thv-operator's Deployment available", (x) =>
      Boolean(x.spec?.template.metadata?.annotations?.[CHECKSUM]),
    );
    await poll("an EndpointSlice with a ready endpoint", async () => {
      const slices = await kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
        namespace: NS,
        labelSelector: `kubernetes.io/service-name=vmcp-${NAME}`,
      });
      return slices.items.some((s) => (s.endpoints ?? []).some((e) => e.conditions?.ready))
        ? true
        : undefined;
    });
    thvObjects = await inventory();
    rsBefore = (await replicaSets()).length;
    genBefore = d.metadata!.generation!;
    hmacBefore = await hmac();
    assert.ok(hmacBefore, "thv-operator made the HMAC Secret");
    assert.ok(
      thvObjects.some((o) => o.kind === "Deployment" && o.name === NAME),
      JSON.stringify(thvObjects),
    );
    console.log(`      thv-operator's objects: ${thvObjects.map((o) => `${o.kind}/${o.name}`).join(", ")}`);
  });

  let takeoverFrom: number;

  it("stop thv-operator, start vmcp-operator: the same objects taken over, one rolling update, never unavailable", async () => {
    availability = new Availability(kc);
    await availability.start();
    takeoverFrom = Date.now();
    await thv!.stop();
    thv = undefined;
    ours = await startTestController({
      name: "migrate",
      kubeconfigPath: plane.kubeconfigPath,
      controller: {
        kubeconfig: kc,
        namespace: NS,
        workers: 2,
        resyncMs: 3_600_000,
        metricsAddr: "127.0.0.1:0",
        healthChecks: false, // the backend is a placeholder
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }),
      },
    });
    const s = await poll(
      "vmcp-operator's status: StackApplied",
      async () => {
        const v = await vmcp();
        const applied = v.status?.conditions?.find((c) => c.type === "StackApplied");
        return applied?.status === "True" && v.status?.phase === "Ready" ? v : undefined;
      },
      240_000,
    );
    assert.ok(s.metadata.finalizers?.includes(FINALIZER));
    await ours.controller.queue.idle();
    const d = await rolledOut("our rollout done");
    const after = await inventory();
    for (const o of thvObjects) {
      const now = after.find((a) => a.kind === o.kind && a.name === o.name);
      assert.ok(now, `${o.kind}/${o.name} of thv-operator still there (never delete what is not ours)`);
      assert.equal(now.uid, o.uid, `${o.kind}/${o.name} is the same object, taken over, not recreated`);
    }
    assert.ok(
      d.metadata!.generation! - genBefore <= 1,
      `at most one rollout: generation ${genBefore} → ${d.metadata?.generation}`,
    );
    assert.ok((await replicaSets()).length - rsBefore <= 1, "at most one new ReplicaSet");
    assert.deepEqual(
      availability.gaps(takeoverFrom),
      [],
      "an available replica and a ready endpoint at every moment",
    );
    assert.equal(await hmac(), hmacBefore, "the HMAC Secret keeps its bytes (sessions stay valid)");
    // What thv-operator set and we do not declare went with the takeover's one write: its
    // VMCP_NAME/VMCP_NAMESPACE would make vmcp write the VirtualMCPServer's status itself.
    const vmcpEnv = d.spec?.template.spec?.containers.find((c) => c.name === "vmcp")?.env?.map((e) => e.name);
    assert.ok(vmcpEnv?.includes("VMCP_SESSION_HMAC_SECRET"), vmcpEnv?.join(","));
    assert.deepEqual(
      vmcpEnv?.filter((e) => e.startsWith("VMCP_NAME")),
      [],
      `thv-operator's env vars are gone: ${vmcpEnv?.join(",")}`,
    );
    for (const kind of [
      "Deployment",
      "ConfigMap",
      "Service",
      "Role",
      "RoleBinding",
      "ServiceAccount",
    ] as const) {
      const meta = await objectMeta(kind);
      const managers = (meta.managedFields ?? []).filter((f) => !f.subresource).map((f) => f.manager);
      assert.ok(
        !managers.includes("thv-operator"),
        `${kind}: thv-operator no longer owns fields: ${managers.join(",")}`,
      );
    }
    // The status has one writer now: ours, with none of ToolHive's conditions left over.
    const types = (s.status?.conditions ?? []).map((c) => c.type).sort();
    const ourTypes = [
      "AuthConfigured",
      "BackendsDiscovered",
      "GroupRefValidated",
      "Ready",
      "StackApplied",
      "Valid",
    ];
    for (const t of ourTypes) assert.ok(types.includes(t), `condition ${t}: ${types.join(",")}`);
    assert.deepEqual(
      types.filter((t) => !isOurCondition(t)),
      [],
      "no condition of ToolHive's left that nobody updates any more",
    );
    const statusWriters = new Set(
      (await vmcp()).metadata.managedFields?.filter((f) => f.subresource === "status").map((f) => f.manager),
    );
    assert.ok(statusWriters.has(FIELD_MANAGER), [...statusWriters].join(","));
    console.log(
      `      conditions after the takeover: ${types.join(", ")}; status managers: ${[...statusWriters].join(", ")}`,
    );
  });

  it("a resync after the takeover: no Pulumi process, no rollout", async () => {
    const processes = ours!.engine.processesStarted;
    const gen = (await deployment()).metadata?.generation;
    const runs = ours!.controller.reconcileCounts.get(`${NS}/${NAME}`) ?? 0;
    ours!.controller.queue.resync();
    await poll("the resync's reconcile", () =>
      (ours!.controller.reconcileCounts.get(`${NS}/${NAME}`) ?? 0) > runs ? true : undefined,
    );
    await ours!.controller.queue.idle();
    assert.equal(ours!.engine.processesStarted, processes);
    assert.equal((await deployment()).metadata?.generation, gen);
  });

  it("the way back: stop vmcp-operator, remove its finalizer, start thv-operator: it serves with the same objects, never unavailable", async () => {
    const back = Date.now();
    const uids = await inventory();
    await ours!.stop();
    ours = undefined;
    await custom().patchNamespacedCustomObject(
      { ...at("virtualmcpservers"), name: NAME, body: { metadata: { finalizers: null } } },
      mergePatch,
    );
    const ourChecksum = (await deployment()).spec?.template.metadata?.annotations?.[CHECKSUM];
    thv = startThv();
    await rolledOut(
      "thv-operator's rollout",
      (d) => d.spec?.template.metadata?.annotations?.[CHECKSUM] !== ourChecksum,
    );
    const again = await inventory();
    for (const o of uids.filter((u) => thvObjects.some((b) => b.kind === u.kind && b.name === u.name)))
      assert.equal(
        again.find((a) => a.kind === o.kind && a.name === o.name)?.uid,
        o.uid,
        `${o.kind}/${o.name} kept`,
      );
    assert.deepEqual(
      availability.gaps(back),
      [],
      "an available replica and a ready endpoint at every moment",
    );
  });
});
