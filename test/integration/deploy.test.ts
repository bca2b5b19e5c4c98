// The plain manifests (deploy/manifests/vmcp-operator.yaml, rendered from the Helm chart)
// against the local control plane, which enforces RBAC:
//   1. every object is created for real, and the CRDs become Established;
//   2. the chart's RBAC grants each verb the controller uses and nothing around it,
//      asked of the API server (SelfSubjectAccessReview as the group-less token user
//      `vmcp-controller` bound like the chart's ServiceAccount; SubjectAccessReview for the
//      ServiceAccount itself);
//   3. the controller, running with a token of the chart's ServiceAccount (TokenRequest),
//      reconciles a VirtualMCPServer to Ready and deletes it again, without one 403. Its
//      Pulumi home is laid out as in the image: an empty dir whose `plugins` links to the
//      provider plugins.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1CustomResourceDefinition,
  type V1ResourceAttributes,
} from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { GROUP } from "../../api/index.js";
import { applyCrds, readCrdFiles, waitForCrds } from "../../localcluster/crds.js";
import { freePorts } from "../../localcluster/ports.js";
import { startController, type Controller } from "../../controller/main.js";
import { createEngine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import { FINALIZER } from "../../program/names.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const RELEASE_NS = "vmcp-system";
const SA = "vmcp-operator";
const SA_USER = `system:serviceaccount:${RELEASE_NS}:${SA}`;

type Obj = KubernetesObject & { [k: string]: unknown };

function manifests(): Obj[] {
  return parseAllDocuments(readFileSync(join(ROOT, "deploy", "manifests", "vmcp-operator.yaml"), "utf8"))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

function statusCode(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e.code ?? e.statusCode ?? e.response?.statusCode;
}

/** One access question: verb on resource (group/resource[/subresource]) in namespace ("" = all), optionally by name. */
interface Access {
  verb: string;
  resource: string;
  namespace: string;
  name?: string;
}
const fmt = (a: Access) =>
  `${a.verb} ${a.resource}${a.name ? `/${a.name}` : ""} in ${a.namespace || "all namespaces"}`;

function attributes(a: Access): V1ResourceAttributes {
  const [groupRes, subresource] = a.resource.split("/") as [string, string | undefined];
  const dot = groupRes.indexOf(".");
  const resource = dot < 0 ? groupRes : groupRes.slice(0, dot);
  const group = dot < 0 ? "" : groupRes.slice(dot + 1);
  return {
    verb: a.verb,
    group,
    resource,
    ...(subresource ? { subresource } : {}),
    ...(a.namespace ? { namespace: a.namespace } : {}),
    ...(a.name ? { name: a.name } : {}),
  };
}

/** Everything the controller and its Pulumi stacks do, in the namespace `ns` of a VirtualMCPServer. */
function needs(ns: string): Access[] {
  const out: Access[] = [];
  const add = (resource: string, verbs: string[], namespace: string, name?: string) =>
    verbs.forEach((verb) => out.push({ verb, resource, namespace, ...(name ? { name } : {}) }));
  const toolhive = [
    "mcpexternalauthconfigs",
    "mcpgroups",
    "mcpremoteproxies",
    "mcpserverentries",
    "mcpservers",
    "mcptoolconfigs",
    "virtualmcpcompositetooldefinitions",
    "virtualmcpservers",
  ];
  // informers, all namespaces
  for (const r of toolhive) add(`${r}.${GROUP}`, ["list", "watch"], "");
  add("configmaps", ["list", "watch"], "");
  add("services", ["list", "watch"], "");
  add("deployments.apps", ["list", "watch"], "");
  // the VirtualMCPServer itself
  add(`virtualmcpservers.${GROUP}`, ["get", "patch"], ns);
  add(`virtualmcpservers.${GROUP}/status`, ["patch"], ns);
  add(`virtualmcpservers.${GROUP}/finalizers`, ["update"], ns);
  for (const r of toolhive) add(`${r}.${GROUP}`, ["get"], ns);
  // the stack's objects
  const crud = ["get", "list", "watch", "create", "update", "patch", "delete"];
  for (const r of [
    "configmaps",
    "services",
    "serviceaccounts",
    "deployments.apps",
    "poddisruptionbudgets.policy",
  ])
    add(r, crud, ns);
  // referenced Secrets (get), the HMAC Secret (server-side apply); the garbage collector deletes it
  add("secrets", ["get", "create", "patch"], ns);
  for (const r of ["roles", "rolebindings"]) add(`${r}.rbac.authorization.k8s.io`, crud, ns);
  add("events", ["create", "patch", "list", "watch"], ns);
  // leader election
  add("leases.coordination.k8s.io", ["create"], RELEASE_NS);
  add("leases.coordination.k8s.io", ["get", "update"], RELEASE_NS, "vmcp-operator");
  return out;
}

/** What the controller must NOT be able to do. */
function forbidden(ns: string): Access[] {
  return [
    { verb: "create", resource: "secrets", namespace: "kube-system" },
    { verb: "get", resource: "secrets", namespace: "kube-system" },
    { verb: "list", resource: "secrets", namespace: "" },
    // nothing lists, watches, replaces or deletes a Secret: `get` by name, create + patch of the HMAC one
    { verb: "list", resource: "secrets", namespace: ns },
    { verb: "watch", resource: "secrets", namespace: ns },
    { verb: "update", resource: "secrets", namespace: ns },
    { verb: "delete", resource: "secrets", namespace: ns },
    { verb: "deletecollection", resource: "secrets", namespace: ns },
    { verb: "get", resource: "secrets", namespace: RELEASE_NS, name: "vmcp-operator-passphrase" },
    { verb: "create", resource: "deployments.apps", namespace: "kube-system" },
    { verb: "create", resource: "rolebindings.rbac.authorization.k8s.io", namespace: "kube-system" },
    { verb: "create", resource: "clusterroles.rbac.authorization.k8s.io", namespace: "" },
    { verb: "create", resource: "clusterrolebindings.rbac.authorization.k8s.io", namespace: "" },
    { verb: "escalate", resource: "roles.rbac.authorization.k8s.io", namespace: ns },
    { verb: "bind", resource: "roles.rbac.authorization.k8s.io", namespace: ns },
    { verb: "create", resource: "customresourcedefinitions.apiextensions.k8s.io", namespace: "" },
    { verb: "create", resource: "pods", namespace: ns },
    { verb: "create", resource: "pods/exec", namespace: ns },
    { verb: "list", resource: "nodes", namespace: "" },
    { verb: "create", resource: "serviceaccounts/token", namespace: ns },
    { verb: "impersonate", resource: "users", namespace: "" },
    {
      verb: "update",
      resource: "leases.coordination.k8s.io",
      namespace: "kube-system",
      name: "kube-scheduler",
    },
    { verb: "update", resource: "leases.coordination.k8s.io", namespace: RELEASE_NS, name: "someone-else" },
    { verb: "delete", resource: `virtualmcpservers.${GROUP}`, namespace: ns },
    { verb: "create", resource: `virtualmcpservers.${GROUP}`, namespace: ns },
    { verb: "patch", resource: `mcpgroups.${GROUP}/status`, namespace: ns },
    { verb: "update", resource: "configmaps", namespace: "kube-system" },
  ];
}

describe("deploy: rendered manifests on the local API server (RBAC enforced)", function () {
  this.timeout(600_000);
  const objects = manifests();
  const admin = () => adminKubeConfig();
  let ns: string;
  let userKc: KubeConfig;
  const tmp: string[] = [];

  /** Each access as the vmcp-controller user (what `kubectl auth can-i` asks) and as the chart's ServiceAccount. */
  async function reviews(accesses: Access[]): Promise<{ who: string; allowed: boolean }[]> {
    const self = userKc.makeApiClient(AuthorizationV1Api);
    const authz = admin().makeApiClient(AuthorizationV1Api);
    const out: { who: string; allowed: boolean }[] = [];
    for (const a of accesses) {
      const s = await self.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: attributes(a) } },
      });
      out.push({ who: `vmcp-controller: ${fmt(a)}`, allowed: s.status?.allowed === true });
      const sa = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: SA_USER,
            groups: [
              "system:serviceaccounts",
              `system:serviceaccounts:${RELEASE_NS}`,
              "system:authenticated",
            ],
            resourceAttributes: attributes(a),
          },
        },
      });
      out.push({ who: `${SA_USER}: ${fmt(a)}`, allowed: sa.status?.allowed === true });
    }
    return out;
  }

  before(async () => {
    ns = await newNamespace("deploy");
  });

  after(async function () {
    this.timeout(60_000);
    for (const d of tmp) rmSync(d, { recursive: true, force: true });
    // Leave the shared plane as we found it (the CRDs stay: the fixture installed them):
    // vmcp-controller must be bound to nothing again for the tests that check that.
    const api = KubernetesObjectApi.makeApiClient(admin());
    for (const obj of [...objects].reverse()) {
      if (obj.kind === "CustomResourceDefinition") continue;
      await api.delete(obj).catch((err: unknown) => {
        if (statusCode(err) !== 404) throw err;
      });
    }
    if (ns)
      await api
        .delete({
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "vmcp-operator-vmcp-objects", namespace: ns },
        })
        .catch(() => {});
  });

  it("creates every object of deploy/manifests/vmcp-operator.yaml; the CRDs become Established", async () => {
    const api = KubernetesObjectApi.makeApiClient(admin());
    const core = admin().makeApiClient(CoreV1Api);
    let passphraseMade = false;
    for (const obj of objects) {
      if (obj.kind === "CustomResourceDefinition") {
        // Never downgrade the CRDs the other tests run against: the manifests' copy must be
        // crds/'s, and it is applied as raw JSON (a typed client would drop its CEL rules).
        const repo = readCrdFiles(join(ROOT, "crds")).find((c) => c.metadata?.name === obj.metadata?.name);
        assert.deepEqual(
          obj["spec"],
          repo?.spec,
          `the manifests' CRD ${obj.metadata?.name} is not crds/'s: npm run gen:crds`,
        );
        await applyCrds(admin(), [obj as unknown as V1CustomResourceDefinition], { timeoutMs: 60_000 });
      } else {
        await api.create(structuredClone(obj)).catch((err: unknown) => {
          throw new Error(`create ${obj.kind} ${obj.metadata?.name}: ${String(err)}`);
        });
      }
      // What docs/install.md has the user do right after the namespace exists.
      if (obj.kind === "Namespace" && !passphraseMade) {
        await core.createNamespacedSecret({
          namespace: RELEASE_NS,
          body: {
            metadata: { name: "vmcp-operator-passphrase" },
            stringData: { passphrase: "deploy-test-passphrase" },
          },
        });
        passphraseMade = true;
      }
    }
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata!.name!);
    assert.equal(crds.length, readdirSync(join(ROOT, "crds")).filter((f) => f.endsWith(".yaml")).length);
    await waitForCrds(admin(), crds, 60_000);
    for (const obj of objects) {
      const live = await api.read({
        apiVersion: obj.apiVersion!,
        kind: obj.kind!,
        metadata: {
          name: obj.metadata!.name!,
          ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
        },
      });
      assert.ok(live.metadata?.uid, `${obj.kind} ${obj.metadata?.name} exists`);
    }
    // the Deployment's ReplicaSet controller accepts the pod template (SA exists, valid spec)
    const apps = await poll("a ReplicaSet for the controller Deployment", async () => {
      const rs = await KubernetesObjectApi.makeApiClient(admin()).list("apps/v1", "ReplicaSet", RELEASE_NS);
      return rs.items.length > 0 ? rs.items : undefined;
    });
    assert.equal(apps.length, 1);
  });

  it("binds the chart's roles to the vmcp-controller user too, and to the test namespace (rbac.vmcpNamespaces)", async () => {
    const api = KubernetesObjectApi.makeApiClient(admin());
    const user = {
      kind: "User",
      apiGroup: "rbac.authorization.k8s.io",
      name: controlPlane().users.controller.name,
    };
    const withUser = async (kind: string, name: string, namespace?: string) => {
      const live = (await api.read({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind,
        metadata: { name, ...(namespace ? { namespace } : {}) },
      })) as Obj & { subjects: unknown[] };
      await api.replace({ ...live, subjects: [...live.subjects, user] });
    };
    await withUser("ClusterRoleBinding", "vmcp-operator");
    await withUser("RoleBinding", "vmcp-operator-leader-election", RELEASE_NS);
    // What the chart renders for rbac.vmcpNamespaces=[<ns>]: its RoleBinding for "default", moved.
    const template = objects.find(
      (o) => o.kind === "RoleBinding" && o.metadata?.name === "vmcp-operator-vmcp-objects",
    );
    assert.ok(template, "the manifests bind vmcp-operator-vmcp-objects in a namespace");
    const rb = structuredClone(template) as Obj & { subjects: unknown[] };
    rb.metadata = { ...rb.metadata, namespace: ns };
    rb.subjects = [...rb.subjects, user];
    await api.create(rb);
    userKc = new KubeConfig();
    userKc.loadFromString(controlPlane().kubeconfigFor(controlPlane().users.controller));
  });

  it("allows every verb the controller uses (SelfSubjectAccessReview as vmcp-controller, SubjectAccessReview for the ServiceAccount)", async () => {
    const denied = (await reviews(needs(ns))).filter((r) => !r.allowed).map((r) => r.who);
    assert.deepEqual(denied, [], "denied");
  });

  it("denies what the controller does not need (secrets in kube-system, clusterroles, pods/exec, …)", async () => {
    const allowed = (await reviews(forbidden(ns))).filter((r) => r.allowed).map((r) => r.who);
    assert.deepEqual(allowed, [], "allowed");
    // and the API server agrees in practice
    await assert.rejects(
      userKc.makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace: "kube-system",
        body: { metadata: { name: "vmcp-should-not-exist" }, stringData: { x: "y" } },
      }),
      (err: unknown) => statusCode(err) === 403,
    );
  });

  describe("the controller with the chart ServiceAccount's token", () => {
    let controller: Controller | undefined;
    const logs: { level: string; msg: string; key?: string; error?: string; [k: string]: unknown }[] = [];
    const k = kube(admin, () => ns);
    const getVmcp = (name: string) => k.vmcp(name);

    before(async () => {
      // A token of vmcp-system/vmcp-operator, as the kubelet would mount it.
      const tr = await admin()
        .makeApiClient(CoreV1Api)
        .createNamespacedServiceAccountToken({
          name: SA,
          namespace: RELEASE_NS,
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        });
      const token = tr.status?.token;
      assert.ok(token, "TokenRequest gave a token");
      const dir = mkdtempSync(join(tmpdir(), "vmcp-deploy-"));
      tmp.push(dir);
      const kubeconfig = join(dir, "sa.kubeconfig");
      writeFileSync(kubeconfig, controlPlane().kubeconfigFor({ name: SA_USER, token, groups: [] }), {
        mode: 0o600,
      });
      // PULUMI_HOME as in the pod: an empty, writable dir whose plugins/ links to the plugins
      // shipped elsewhere (the image's /opt/pulumi/plugins; here the toolchain's cache).
      const shippedPlugins = join(
        process.env.PULUMI_HOME ??
          join(process.env.VMCP_TOOLS ?? join(homedir(), ".cache", "vmcp-operator"), "pulumi-home"),
        "plugins",
      );
      const pulumiHome = join(dir, "pulumi-home");
      mkdirSync(pulumiHome);
      symlinkSync(shippedPlugins, join(pulumiHome, "plugins"));
      const scratch = join(dir, "tmp");
      mkdirSync(scratch);

      // MCPGroup + two remote backends, written by the admin (as a user would).
      await k.readyGroup("tools");
      for (const name of ["alpha", "beta"]) await k.entry(name, "tools", `http://${name}.example.test/mcp`);

      // As the chart runs it: all namespaces, leader election in vmcp-system, state on a dir.
      controller = await startController({
        kubeconfig,
        workers: 2,
        resyncMs: 3_600_000,
        stateDir: join(dir, "state"),
        passphrase: "deploy-test-passphrase",
        leaderElect: true,
        leaseNamespace: RELEASE_NS,
        leaseDurationMs: 5_000,
        healthChecks: false, // RBAC is the subject; the backends are placeholders
        metricsAddr: "127.0.0.1:0",
        engineFactory: (opts) => createEngine({ ...opts, pulumiHome, workDir: scratch }),
        log: jsonLogger({
          level: "debug",
          write: (line) => {
            const entry = JSON.parse(line) as (typeof logs)[number];
            logs.push(entry);
            if (process.env.VMCP_TEST_LOG === "debug" || entry.level === "error")
              process.stderr.write(`      ${line}\n`);
          },
        }),
      });
    });

    after(async () => {
      await controller?.stop(30_000);
    });

    const ours = () => logs.filter((l) => JSON.stringify(l).includes(ns));
    const forbiddenLines = () => ours().filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));

    it("takes the Lease in the release namespace", async () => {
      const lease = await poll("the lease", async () => {
        const l = (await KubernetesObjectApi.makeApiClient(admin()).read({
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name: "vmcp-operator", namespace: RELEASE_NS },
        })) as Obj & { spec?: { holderIdentity?: string } };
        // The Lease is in etcd a moment before the elector has handled the API server's answer.
        return l.spec?.holderIdentity && controller?.leader?.isLeader ? l : undefined;
      });
      assert.ok(lease.spec?.holderIdentity);
    });

    it("reconciles a VirtualMCPServer to Ready: stack objects created, status and events written", async () => {
      await k.create("VirtualMCPServer", "gw", {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
      });
      const s = await poll("gw Ready", async () => {
        const st = (await getVmcp("gw")).status;
        return st?.phase === "Ready" ? st : undefined;
      });
      assert.equal(s.backendCount, 2);
      assert.deepEqual((await getVmcp("gw")).metadata.finalizers, [FINALIZER]);
      const api = KubernetesObjectApi.makeApiClient(admin());
      for (const [apiVersion, kind, name] of [
        ["v1", "ServiceAccount", "gw-vmcp"],
        ["rbac.authorization.k8s.io/v1", "Role", "gw-vmcp"],
        ["rbac.authorization.k8s.io/v1", "RoleBinding", "gw-vmcp"],
        ["v1", "ConfigMap", "gw-vmcp-config"],
        ["apps/v1", "Deployment", "gw"],
        ["v1", "Service", "vmcp-gw"],
        ["v1", "Secret", "gw-hmac-secret"],
      ] as const) {
        const o = await api.read({ apiVersion, kind, metadata: { name, namespace: ns } });
        assert.ok(o.metadata?.uid, `${kind} ${name}`);
      }
      const events = await admin()
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=gw" });
      assert.ok(
        events.items.some((e) => e.reason === "StackUpdated"),
        events.items.map((e) => e.reason).join(","),
      );
      assert.deepEqual(forbiddenLines(), [], "no 403 in the controller's logs");
    });

    it("deletes it: the stack is destroyed and the finalizer removed, still without a 403", async () => {
      await k.remove("VirtualMCPServer", "gw");
      await poll(
        "gw gone",
        async () => {
          try {
            await getVmcp("gw");
            return undefined;
          } catch (err) {
            return statusCode(err) === 404 ? true : undefined;
          }
        },
        300_000,
      );
      const core = admin().makeApiClient(CoreV1Api);
      // The stack retains its HMAC Secret (no delete granted); the garbage collector deletes
      // it after its owner, the VirtualMCPServer, is gone.
      await poll("gw-hmac-secret collected", async () => {
        try {
          await core.readNamespacedSecret({ name: "gw-hmac-secret", namespace: ns });
          return undefined;
        } catch (err) {
          if (statusCode(err) === 404) return true;
          throw err;
        }
      });
      await assert.rejects(
        core.readNamespacedConfigMap({ name: "gw-vmcp-config", namespace: ns }),
        (e: unknown) => statusCode(e) === 404,
      );
      assert.deepEqual(forbiddenLines(), [], "no 403 in the controller's logs");
      assert.ok(
        !ours().some((l) => l.level === "error"),
        JSON.stringify(ours().filter((l) => l.level === "error")),
      );
    });

    it("a second replica, started with the Deployment's own args and env (the CLI accepts them), stands by", async () => {
      const deployment = objects.find((o) => o.kind === "Deployment") as Obj & {
        spec: {
          template: {
            spec: { containers: { name: string; args: string[]; env: { name: string; value?: string }[] }[] };
          };
        };
      };
      const c = deployment.spec.template.spec.containers.find((x) => x.name === "controller")!;
      const dir = tmp[0]!;
      const [port] = await freePorts(1);
      // The pod's paths and env, mapped onto this machine; $(POD_NAMESPACE) expanded as the kubelet does.
      const paths: Record<string, string> = {
        "/var/lib/vmcp-operator/state": join(dir, "state"),
        "/var/lib/vmcp-operator/pulumi-home": join(dir, "pulumi-home"),
        "/tmp": join(dir, "tmp"),
      };
      const mapPath = (v: string) => paths[v] ?? v;
      const args = c.args.map((a) => {
        const [flag, value] = a.split(/=(.*)/s, 2) as [string, string | undefined];
        if (value === undefined) return a;
        if (flag === "--metrics-addr") return `--metrics-addr=127.0.0.1:${port}`;
        return `${flag}=${mapPath(value.replace("$(POD_NAMESPACE)", RELEASE_NS))}`;
      });
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        POD_NAMESPACE: RELEASE_NS,
        PULUMI_CONFIG_PASSPHRASE: "deploy-test-passphrase",
      };
      for (const e of c.env) if (e.value !== undefined) env[e.name] = mapPath(e.value);
      assert.equal(env.PULUMI_HOME, join(dir, "pulumi-home"));
      // the heap sizes of the image, so this replica runs with them (Node would refuse a bad flag)
      assert.match(env.NODE_OPTIONS ?? "", /--max-old-space-size-percentage=\d+/);
      const child = spawn(
        process.execPath,
        [
          join(ROOT, "dist", "cli", "main.js"),
          "controller",
          ...args,
          `--kubeconfig=${join(dir, "sa.kubeconfig")}`,
        ],
        {
          env,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      try {
        const body = await poll(
          "the second replica's /readyz",
          async () => {
            if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output}`);
            const r = await fetch(`http://127.0.0.1:${port}/readyz`);
            return r.status === 200 ? await r.text() : undefined;
          },
          60_000,
        );
        assert.match(body, /standby/, "the in-process controller holds the Lease; this one waits");
        assert.ok(!/forbidden|\b403\b/i.test(output), output);
      } finally {
        child.kill("SIGTERM");
      }
      assert.equal(await exited, 0, output);
    });
  });
});
