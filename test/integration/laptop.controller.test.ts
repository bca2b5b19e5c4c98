// The laptop path next to the controller, with the real Pulumi CLI, the Node.js language
// host, the local API server and a controller running a real engine:
// - from-cluster mode (vmcp:namespace + vmcp:name) renders the objects the controller renders;
// - `pulumi up` of manifests whose VirtualMCPServer the controller manages refuses before
//   it changes anything; with vmcp:takeOver=true it applies.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { pulumiEnv } from "../../engine/offline.js";
import { jsonLogger } from "../../controller/log.js";
import { FINALIZER } from "../../program/names.js";
import { derivedObjects } from "../../program/ownership.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const API_VERSION: Record<string, string> = {
  ServiceAccount: "v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  ConfigMap: "v1",
  Deployment: "apps/v1",
  Service: "v1",
  Secret: "v1",
};

type Obj = KubernetesObject & Record<string, unknown>;

describe("the laptop path next to the controller (real CLI, engine and API server)", function () {
  this.timeout(900_000);
  let work: string;
  let ns: string;
  let env: NodeJS.ProcessEnv;
  let tc: TestController | undefined;
  const k = kube(adminKubeConfig, () => ns);
  const stacks = { cluster: `from-cluster-${process.pid}`, manifests: `from-files-${process.pid}` };
  const configFile = (stack: string) => join(work, `Pulumi.${stack}.yaml`);
  const pulumi = async (stack: string, ...args: string[]) => {
    // `stack` subcommands take no --config-file.
    const config = args[0] === "stack" ? [] : ["--config-file", configFile(stack)];
    const r = await promisify(execFile)(
      "pulumi",
      [...args, "--non-interactive", "--stack", stack, ...config],
      {
        cwd: ROOT,
        env,
        maxBuffer: 64 << 20,
      },
    ).catch((e: Error & { stdout?: string; stderr?: string }) => {
      // The CLI's own output says why; execFile's message only names the command.
      e.message = `${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`;
      throw e;
    });
    return r.stdout;
  };
  /** A pulumi command that must fail: its whole output. */
  const pulumiFails = async (stack: string, ...args: string[]) => {
    const err = await pulumi(stack, ...args).then(
      (out) => assert.fail(`pulumi ${args.join(" ")} succeeded:\n${out}`),
      (e: { stdout?: string; stderr?: string }) => e,
    );
    return `${err.stdout ?? ""}\n${err.stderr ?? ""}`;
  };
  const manifests = () => `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: tools, namespace: ${ns}}
spec: {}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: docs, namespace: ${ns}}
spec: {remoteUrl: "http://docs.example.test/mcp", transport: streamable-http, groupRef: {name: tools}}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: gw, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}
`;

  const objects = () => KubernetesObjectApi.makeApiClient(adminKubeConfig());
  const read = async (kind: string, name: string): Promise<Obj | undefined> =>
    (await objects()
      .read({ apiVersion: API_VERSION[kind] ?? "v1", kind, metadata: { name, namespace: ns } })
      .catch((e: { code?: number }) => {
        if (e.code === 404) return undefined;
        throw e;
      })) as Obj | undefined;
  const derived = () => [...derivedObjects("gw"), { kind: "Secret", name: "gw-hmac-secret" }];
  /** Every object of the stack as the API server holds it. */
  const snapshot = async () => {
    const out: Record<string, Obj | undefined> = {};
    for (const d of derived()) out[`${d.kind} ${d.name}`] = await read(d.kind, d.name);
    return out;
  };
  /** What the stack decided about an object: no server bookkeeping, no server-assigned fields. */
  const content = (o: Obj | undefined) => {
    if (!o) return undefined;
    const { metadata, status: _status, ...rest } = o as Obj & { status?: unknown };
    const m = metadata ?? {};
    const annotations = { ...m.annotations };
    delete annotations["deployment.kubernetes.io/revision"];
    const spec = rest.spec as Record<string, unknown> | undefined;
    const cleanSpec = spec && { ...spec, clusterIP: undefined, clusterIPs: undefined };
    const ownerReferences = m.ownerReferences?.map((r) => ({ kind: r.kind, name: r.name, uid: r.uid }));
    return { ...rest, spec: cleanSpec, labels: m.labels, annotations, ownerReferences };
  };
  const managers = (o: Obj | undefined): string[] =>
    (o?.metadata?.managedFields ?? [])
      .map((f) => f.manager)
      .filter((m): m is string => m !== undefined)
      .sort();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-laptop-ctl-"));
    ns = await newNamespace("laptop-ctl");
    writeFileSync(join(work, "vmcp.yaml"), manifests());
    // The objects as a user would apply them; no MCPGroup controller runs here.
    await k.readyGroup("tools");
    await k.entry("docs", "tools", "http://docs.example.test/mcp");
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    env = {
      ...process.env,
      ...pulumiEnv({ passphrase: "laptop-passphrase", kubeconfig: controlPlane().kubeconfigPath }),
      PULUMI_BACKEND_URL: `file://${work}`,
    };
    for (const stack of Object.values(stacks)) {
      await promisify(execFile)(
        "pulumi",
        ["stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive"],
        { cwd: ROOT, env },
      );
    }
    await pulumi(stacks.cluster, "config", "set", "vmcp:namespace", ns);
    await pulumi(stacks.cluster, "config", "set", "vmcp:name", "gw");
    await pulumi(stacks.manifests, "config", "set", "vmcp:manifests", join(work, "vmcp.yaml"));
  });

  after(async () => {
    await tc?.stop();
    // Leaves the objects to the namespace: destroying would delete the controller's.
    for (const stack of Object.values(stacks)) {
      await pulumi(stack, "stack", "rm", "--yes", "--force").catch(() => undefined);
      rmSync(join(ROOT, `Pulumi.${stack}.yaml`), { force: true });
    }
    rmSync(work, { recursive: true, force: true });
  });

  let laptop: { hash: string; objects: Record<string, ReturnType<typeof content>> };

  it("from-cluster mode, no controller: pulumi up applies the VirtualMCPServer the cluster holds, owned by it", async () => {
    await pulumi(stacks.cluster, "up", "--yes");
    const outputs = JSON.parse(await pulumi(stacks.cluster, "stack", "output", "--json")) as {
      desiredHash: string;
    };
    const now = await snapshot();
    const vmcp = await k.vmcp("gw");
    for (const d of derivedObjects("gw")) {
      const o = now[`${d.kind} ${d.name}`];
      assert.ok(o, `${d.kind} ${d.name} applied`);
      assert.equal(
        o.metadata?.ownerReferences?.[0]?.uid,
        vmcp.metadata.uid,
        `${d.kind} owned by the VirtualMCPServer`,
      );
    }
    assert.match(
      String((now["ConfigMap gw-vmcp-config"] as { data?: Record<string, string> }).data?.["config.yaml"]),
      /name: docs/,
    );
    laptop = {
      hash: outputs.desiredHash,
      objects: Object.fromEntries(
        derivedObjects("gw").map((d) => [`${d.kind} ${d.name}`, content(now[`${d.kind} ${d.name}`])]),
      ),
    };
    // Its own objects (owned by the live VirtualMCPServer, no controller's finalizer) are no claim.
    await pulumi(stacks.cluster, "preview");
    await pulumi(stacks.cluster, "destroy", "--yes");
    // skipAwait: the delete returns before the garbage collector has removed the object.
    await poll("destroy removed the Deployment", async () =>
      (await read("Deployment", "gw")) === undefined ? true : undefined,
    );
  });

  it("the controller, started on that namespace, applies the same objects with the same desired hash", async () => {
    tc = await startTestController({
      name: "laptop-ctl",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        kubeconfig: adminKubeConfig(),
        namespace: ns,
        workers: 1,
        metricsAddr: "127.0.0.1:0",
        healthChecks: false, // the backend is a placeholder
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "error" }),
      },
    });
    const status = await poll("gw applied by the controller", async () => {
      const s = await k.statusOf("gw");
      return s.appliedHash ? s : undefined;
    });
    assert.equal(status.appliedHash, laptop.hash, "the controller's desired hash is the laptop's");
    const now = await snapshot();
    for (const [key, want] of Object.entries(laptop.objects))
      assert.deepEqual(content(now[key]), want, `${key} as the laptop rendered it`);
    assert.deepEqual((await k.vmcp("gw")).metadata.finalizers, [FINALIZER]);
  });

  it("pulumi up of the same manifests refuses before changing anything; so does from-cluster mode", async () => {
    const before = await snapshot();
    const out = await pulumiFails(stacks.manifests, "up", "--yes");
    assert.match(
      out,
      new RegExp(
        `not applying VirtualMCPServer ${ns}/gw from this stack: VirtualMCPServer ${ns}/gw exists in the cluster \\(managed by the vmcp-operator controller \\(finalizer vmcp\\.stacklok\\.dev/stack\\)`,
      ),
      out,
    );
    assert.match(out, /Deployment gw is owned by VirtualMCPServer gw/, out);
    assert.match(out, /pulumi config set vmcp:takeOver true/, out);
    const fromCluster = await pulumiFails(stacks.cluster, "up", "--yes");
    assert.match(
      fromCluster,
      new RegExp(`VirtualMCPServer ${ns}/gw is managed by the vmcp-operator controller`),
      fromCluster,
    );
    const after = await snapshot();
    for (const d of derived()) {
      const key = `${d.kind} ${d.name}`;
      assert.ok(before[key], `${key} exists`);
      assert.deepEqual(managers(after[key]), managers(before[key]), `${key}: field managers unchanged`);
      assert.equal(
        after[key]?.metadata?.resourceVersion,
        before[key]?.metadata?.resourceVersion,
        `${key} untouched`,
      );
    }
    // Nothing registered: the stack holds no Kubernetes object a destroy could delete.
    const state = JSON.parse(await pulumi(stacks.manifests, "stack", "export")) as {
      deployment: { resources?: { type: string }[] };
    };
    assert.deepEqual(
      (state.deployment.resources ?? []).filter((r) => r.type.startsWith("kubernetes:")),
      [],
    );
  });

  // Without the force (forceApply off) this up fails: server-side apply conflicts with the
  // controller's field managers.
  it("with vmcp:takeOver=true, pulumi up applies over the controller's objects (forced), with a warning", async () => {
    const before = await snapshot();
    await pulumi(stacks.manifests, "config", "set", "vmcp:takeOver", "true");
    const out = await pulumi(stacks.manifests, "up", "--yes");
    assert.match(out, /vmcp:takeOver is set, taking over: VirtualMCPServer .* exists in the cluster/, out);
    const after = await snapshot();
    const added = managers(after["Deployment gw"]).filter(
      (m) => !managers(before["Deployment gw"]).includes(m),
    );
    assert.ok(
      added.some((m) => m.startsWith("pulumi-kubernetes")),
      `the laptop stack's field manager on the Deployment: ${managers(after["Deployment gw"]).join(", ")}`,
    );
  });
});
