// The laptop path: `pulumi preview --diff` and `pulumi up` of the root Pulumi.yaml,
// run by the real CLI and the Node.js language host against the local API server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { homedir, tmpdir } from "node:os";
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
    // The same component as the controller's stacks: every Kubernetes resource under it.
    const tree = await pulumi("stack", "--show-urns", "--stack", stack);
    const k8s = tree
      .split("\n")
      .filter((l) => /URN: .*kubernetes:/.test(l) && !l.includes("::vmcp:kubernetes:VirtualMCPServer::"));
    assert.equal(k8s.length, 8, tree); // the provider and 7 objects
    for (const line of k8s) assert.match(line, /::vmcp:kubernetes:VirtualMCPServer\$\S+::laptop-/, tree);
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

describe("the root project with no cluster reachable", function () {
  this.timeout(300_000);
  let work: string;
  let env: NodeJS.ProcessEnv;
  const stack = `offline-${process.pid}`;
  /** stdout and stderr: with --diff the CLI prints diagnostics (warnings) on stderr. */
  const pulumi = async (...args: string[]) => {
    const r = await promisify(execFile)(
      "pulumi",
      [...args, "--non-interactive", "--stack", stack, "--config-file", join(work, "Pulumi.offline.yaml")],
      { cwd: ROOT, env, maxBuffer: 64 << 20 },
    );
    return `${r.stdout}${r.stderr}`;
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-offline-"));
    // A port that was free a moment ago: nothing listens, every request is refused.
    const port = await freePort();
    writeFileSync(
      join(work, "kubeconfig"),
      `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:${port}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: none, context: {cluster: none, user: u}}]
current-context: none
`,
    );
    env = {
      ...process.env,
      ...pulumiEnv({ passphrase: "offline", kubeconfig: join(work, "kubeconfig") }),
      PULUMI_BACKEND_URL: `file://${work}`,
    };
    await promisify(execFile)("pulumi", ["stack", "init", stack, "--non-interactive"], { cwd: ROOT, env });
    await pulumi("config", "set", "vmcp:manifests", "examples/basic");
  });

  after(async () => {
    await promisify(execFile)("pulumi", ["stack", "rm", stack, "--yes", "--force", "--non-interactive"], {
      cwd: ROOT,
      env,
    }).catch(() => undefined);
    rmSync(join(ROOT, `Pulumi.${stack}.yaml`), { force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("preview still shows the objects, warning that the ownership check could not run", async () => {
    const out = await pulumi("preview", "--diff");
    assert.match(out, /\+ kubernetes:apps\/v1:Deployment/, out);
    assert.match(
      out,
      /warning: cannot check whether a controller manages VirtualMCPServer team-a\/engineering-tools: .*ECONNREFUSED.*previewing without the check/,
      out,
    );
  });

  it("up stops before it applies anything", async () => {
    const failed = await pulumi("up", "--yes", "--skip-preview").then(
      (out) => assert.fail(`up succeeded:\n${out}`),
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`,
    );
    assert.match(failed, /Nothing was changed; set vmcp:takeOver=true to apply without the check/, failed);
    assert.doesNotMatch(failed, /kubernetes:apps\/v1:Deployment/, failed);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The shell block of README.md that follows the laptop-path marker. */
function readmeLaptopBlock(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const at = readme.indexOf("<!-- laptop-path:");
  assert.ok(at >= 0, "README.md has no laptop-path block");
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m?.[1], "no ```sh block after the laptop-path marker");
  return m[1].replace(/^ {3}/gm, "");
}

describe("README's laptop commands, run in a shell as written", function () {
  this.timeout(900_000);
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), "vmcp-laptop-home-"));
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "team-a" } } }).catch(() => undefined);
    env = { ...process.env, HOME: home, KUBECONFIG: controlPlane().kubeconfigPath };
    // A person's shell has no test settings: the block must set what it needs itself.
    delete env.PULUMI_BACKEND_URL;
    delete env.PULUMI_CONFIG_PASSPHRASE;
    delete env.PULUMI_SKIP_UPDATE_CHECK;
    delete env.PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION;
    // The tool cache lives under the real HOME (scripts/toolchain.sh builds it there).
    env.VMCP_TOOLS = process.env.VMCP_TOOLS ?? join(homedir(), ".cache", "vmcp-operator");
  });

  after(async () => {
    const cleanup = `eval "$(scripts/toolchain.sh env)"; export PULUMI_BACKEND_URL="file://$HOME/.vmcp-operator-laptop" PULUMI_CONFIG_PASSPHRASE=choose-one
      pulumi destroy --yes --stack dev --non-interactive && pulumi stack rm dev --yes --force --non-interactive`;
    await promisify(execFile)("bash", ["-c", cleanup], { cwd: ROOT, env, maxBuffer: 64 << 20 }).catch(
      () => undefined,
    );
    rmSync(home, { recursive: true, force: true });
    rmSync(join(ROOT, "Pulumi.dev.yaml"), { force: true });
  });

  it("stack init, config set with a relative path, preview --diff and up all succeed", async () => {
    const script = `set -euo pipefail\n${readmeLaptopBlock()}`;
    const run = await promisify(execFile)("bash", ["-c", script], {
      cwd: ROOT,
      env,
      maxBuffer: 64 << 20,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(
        `the README's commands failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`,
      );
    });
    assert.match(run.stdout, /\+ .*kubernetes:apps\/v1:Deployment/, run.stdout);
    const apps = adminKubeConfig().makeApiClient(AppsV1Api);
    assert.ok(await apps.readNamespacedDeployment({ name: "engineering-tools", namespace: "team-a" }));
  });
});
