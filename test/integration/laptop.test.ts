// The laptop path: `pulumi preview --diff` and `pulumi up` of the root Pulumi.yaml,
// run by the real CLI and the Node.js language host against the local API server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { pulumiEnv } from "../../engine/offline.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";

describe("pulumi up of the root project (laptop workflow)", function () {
  this.timeout(600_000);
  let work: string;
  let ns: string;
  let env: NodeJS.ProcessEnv;
  const stack = `laptop-${process.pid}`;
  const configFile = () => join(work, "Pulumi.laptop.yaml");
  const pulumi = async (...args: string[]) =>
    (
      await promisify(execFile)("pulumi", [...args, "--non-interactive"], {
        cwd: ROOT,
        env,
        maxBuffer: 64 << 20,
      })
    ).stdout;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-laptop-"));
    ns = await newNamespace("laptop");
    writeFileSync(
      join(work, "vmcp.yaml"),
      `apiVersion: toolhive.stacklok.dev/v1beta1
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
metadata: {name: laptop, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}
`,
    );
    env = {
      ...process.env,
      ...pulumiEnv({ passphrase: "laptop-passphrase", kubeconfig: controlPlane().kubeconfigPath }),
      PULUMI_BACKEND_URL: `file://${work}`,
    };
    await pulumi("stack", "init", stack, "--secrets-provider", "passphrase");
    await pulumi("config", "set", "vmcp:manifests", join(work, "vmcp.yaml"), "--config-file", configFile());
  });

  after(async () => {
    await pulumi("stack", "rm", stack, "--yes", "--force").catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it("previews the objects with a diff", async () => {
    const out = await pulumi("preview", "--diff", "--stack", stack, "--config-file", configFile());
    for (const kind of ["ConfigMap", "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"])
      assert.match(
        out,
        new RegExp(`\\+ kubernetes:[a-z.\\/0-9]*:${kind}`),
        `no create of ${kind} in:\n${out}`,
      );
  });

  it("applies them and exports the same outputs as the controller's stacks", async () => {
    await pulumi("up", "--yes", "--stack", stack, "--config-file", configFile());
    const outputs = JSON.parse(await pulumi("stack", "output", "--json", "--stack", stack)) as {
      url: string;
      desiredHash: string;
    };
    assert.equal(outputs.url, `http://vmcp-laptop.${ns}.svc.cluster.local:4483`);
    assert.match(outputs.desiredHash, /^[0-9a-f]{64}$/);
    const apps = adminKubeConfig().makeApiClient(AppsV1Api);
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    assert.ok(await apps.readNamespacedDeployment({ name: "laptop", namespace: ns }));
    const cm = await core.readNamespacedConfigMap({ name: "laptop-vmcp-config", namespace: ns });
    assert.match(cm.data?.["config.yaml"] ?? "", /name: docs/);
  });

  it("destroys what it created", async () => {
    await pulumi("destroy", "--yes", "--stack", stack, "--config-file", configFile());
    const apps = adminKubeConfig().makeApiClient(AppsV1Api);
    const left = (await apps.listNamespacedDeployment({ namespace: ns })).items;
    assert.deepEqual(
      left.map((d) => d.metadata?.name),
      [],
    );
  });
});
