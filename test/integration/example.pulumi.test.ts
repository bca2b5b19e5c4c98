// examples/pulumi, a user's own TypeScript Pulumi program importing `vmcp-operator/pulumi`:
// real `pulumi up` and `pulumi destroy` by the CLI and the Node.js language host (ts-node,
// type-checked) against the local API server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { pulumiEnv } from "../../engine/offline.js";
import { COMPONENT_TYPE } from "../../program/resources.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";

/** Who answers 404 for an object that is gone. */
const gone = (read: () => Promise<unknown>) =>
  read().then(
    () => false,
    (err: { code?: number }) => err.code === 404,
  );

describe("examples/pulumi: the component in a user's own Pulumi program", function () {
  this.timeout(600_000);
  let work: string;
  let project: string;
  let ns: string;
  let env: NodeJS.ProcessEnv;
  let applied = false;
  const stack = `example-${process.pid}`;
  /** The CLI's stdout; a failure carries what it printed (the program's error is on stdout). */
  const pulumi = async (...args: string[]) => {
    try {
      const opts = { cwd: project, env, maxBuffer: 64 << 20 };
      return (await promisify(execFile)("pulumi", [...args, "--non-interactive", "--stack", stack], opts))
        .stdout;
    } catch (err) {
      const e = err as Error & { stdout?: string };
      throw new Error(`${e.message}\n${e.stdout ?? ""}`);
    }
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-example-"));
    // The example as a user has it after `npm install`: its files, and node_modules with
    // vmcp-operator (the `file:../..` dependency is a link to this package) and the SDKs.
    project = join(work, "project");
    cpSync(join(ROOT, "examples", "pulumi"), project, { recursive: true });
    const modules = join(project, "node_modules");
    mkdirSync(join(modules, "@types"), { recursive: true });
    symlinkSync(ROOT, join(modules, "vmcp-operator"));
    for (const dep of ["@pulumi", "typescript", "@types/node"])
      symlinkSync(join(ROOT, "node_modules", dep), join(modules, dep));
    ns = await newNamespace("example");
    env = {
      ...process.env,
      ...pulumiEnv({ passphrase: "example-passphrase", kubeconfig: controlPlane().kubeconfigPath }),
      PULUMI_BACKEND_URL: `file://${work}`,
    };
    await pulumi("stack", "init", "--secrets-provider", "passphrase");
    await pulumi("config", "set", "namespace", ns);
  });

  after(async () => {
    await pulumi("stack", "rm", "--yes", "--force").catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it("pulumi up deploys the backend and the virtual MCP server, and exports its URL", async () => {
    await pulumi("up", "--yes");
    applied = true;
    const outputs = JSON.parse(await pulumi("stack", "output", "--json")) as {
      url: string;
      objects: { kind: string; name: string }[];
      backendService: string;
    };
    assert.equal(outputs.url, `http://vmcp-tools.${ns}.svc.cluster.local:4483`);
    assert.equal(outputs.backendService, "osv");
    assert.deepEqual(outputs.objects.map((o) => `${o.kind}/${o.name}`).sort(), [
      "ConfigMap/tools-vmcp-config",
      "Deployment/tools",
      "Role/tools-vmcp",
      "RoleBinding/tools-vmcp",
      "Service/vmcp-tools",
      "ServiceAccount/tools-vmcp",
    ]);
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const cm = await core.readNamespacedConfigMap({ name: "tools-vmcp-config", namespace: ns });
    // The backend the program declared is the one the vMCP config points at.
    assert.match(
      cm.data?.["config.yaml"] ?? "",
      new RegExp(`http://osv\\.${ns}\\.svc\\.cluster\\.local:8080/mcp`),
    );
    const deployment = await apps.readNamespacedDeployment({ name: "tools", namespace: ns });
    assert.equal(deployment.metadata?.ownerReferences, undefined, "nothing in the cluster owns it");
    assert.ok(await core.readNamespacedSecret({ name: "tools-hmac-secret", namespace: ns }));
    assert.ok(await apps.readNamespacedDeployment({ name: "osv", namespace: ns }));

    const tree = await pulumi("stack", "--show-urns");
    const children = tree.split("\n").filter((l) => l.includes(`::${COMPONENT_TYPE}$`));
    assert.equal(children.length, 8, tree); // its provider and 7 objects
  });

  it("a second pulumi up changes nothing", async () => {
    const out = await pulumi("preview", "--json");
    const steps = (JSON.parse(out) as { steps?: { op: string }[] }).steps ?? [];
    assert.deepEqual(
      steps.filter((s) => s.op !== "same").map((s) => s.op),
      [],
      out,
    );
  });

  it("pulumi destroy deletes every object it created", async () => {
    assert.ok(applied, "up failed: nothing to destroy");
    await pulumi("destroy", "--yes");
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const namespace = ns;
    const reads: [string, () => Promise<unknown>][] = [
      ["Deployment tools", () => apps.readNamespacedDeployment({ name: "tools", namespace })],
      ["Service vmcp-tools", () => core.readNamespacedService({ name: "vmcp-tools", namespace })],
      ["ConfigMap", () => core.readNamespacedConfigMap({ name: "tools-vmcp-config", namespace })],
      ["ServiceAccount", () => core.readNamespacedServiceAccount({ name: "tools-vmcp", namespace })],
      ["Role", () => rbac.readNamespacedRole({ name: "tools-vmcp", namespace })],
      ["RoleBinding", () => rbac.readNamespacedRoleBinding({ name: "tools-vmcp", namespace })],
      ["HMAC Secret", () => core.readNamespacedSecret({ name: "tools-hmac-secret", namespace })],
      ["Deployment osv", () => apps.readNamespacedDeployment({ name: "osv", namespace })],
      ["Service osv", () => core.readNamespacedService({ name: "osv", namespace })],
    ];
    const left = [];
    for (const [what, read] of reads) if (!(await gone(read))) left.push(what);
    assert.deepEqual(left, [], "objects left after destroy");
  });
});
