// The component from another language: examples/pulumi-go, a Go Pulumi program using the
// Go SDK generated from the component provider's schema (sdk/go), run by the real engine
// (Go Automation API, inline program) against the local API server. The engine starts
// bin/pulumi-resource-vmcp, which constructs the TypeScript component.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { pulumiEnv } from "../../engine/offline.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";

const run = promisify(execFile);

describe("examples/pulumi-go: the component from a Go Pulumi program", function () {
  this.timeout(900_000);
  let work: string;
  let ns: string;
  let env: NodeJS.ProcessEnv;
  let applied = false;
  let example: string;
  const stack = `go-${process.pid}`;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-example-go-"));
    ns = await newNamespace("example-go");
    env = {
      ...process.env,
      ...pulumiEnv({ passphrase: "example-go", kubeconfig: controlPlane().kubeconfigPath }),
      PULUMI_BACKEND_URL: `file://${work}`,
      VMCP_NAMESPACE: ns,
      VMCP_PROVIDER_DIR: join(ROOT, "bin"),
    };
    // Modules come from the module cache or the Go module proxy (go.sum pins them).
    example = join(work, "example");
    await run("go", ["build", "-o", example, "."], { cwd: join(ROOT, "examples", "pulumi-go"), env });
  });

  after(async () => {
    rmSync(work, { recursive: true, force: true });
  });

  it("the provider serves the schema the Go SDK was generated from (sdk/schema.json)", async () => {
    const { stdout } = await run(
      "pulumi",
      ["package", "get-schema", join(ROOT, "bin", "pulumi-resource-vmcp")],
      {
        cwd: work,
        env,
      },
    );
    const committed = JSON.parse(readFileSync(join(ROOT, "sdk", "schema.json"), "utf8")) as unknown;
    assert.deepEqual(
      JSON.parse(stdout),
      committed,
      "sdk/schema.json is stale: regenerate the SDK (docs/pulumi.md)",
    );
  });

  it("up deploys the virtual MCP server and returns the component's outputs to Go", async () => {
    const { stdout } = await run(example, ["up", stack], { cwd: work, env, maxBuffer: 64 << 20 });
    applied = true;
    const outputs = JSON.parse(stdout) as { url: string; objects: { kind: string; name: string }[] };
    assert.equal(outputs.url, `http://vmcp-tools.${ns}.svc.cluster.local:4483`);
    assert.deepEqual(outputs.objects.map((o) => `${o.kind}/${o.name}`).sort(), [
      "ConfigMap/tools-vmcp-config",
      "Deployment/tools",
      "Role/tools-vmcp",
      "RoleBinding/tools-vmcp",
      "Service/vmcp-tools",
      "ServiceAccount/tools-vmcp",
    ]);
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ name: "tools-vmcp-config", namespace: ns });
    assert.match(
      cm.data?.["config.yaml"] ?? "",
      new RegExp(`http://osv\\.${ns}\\.svc\\.cluster\\.local:8080/mcp`),
    );
    assert.ok(
      await adminKubeConfig()
        .makeApiClient(AppsV1Api)
        .readNamespacedDeployment({ name: "tools", namespace: ns }),
    );
  });

  it("destroy deletes what up created", async () => {
    assert.ok(applied, "up failed: nothing to destroy");
    await run(example, ["destroy", stack], { cwd: work, env, maxBuffer: 64 << 20 });
    const apps = adminKubeConfig().makeApiClient(AppsV1Api);
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    assert.deepEqual(
      (await apps.listNamespacedDeployment({ namespace: ns })).items.map((d) => d.metadata?.name),
      [],
    );
    assert.deepEqual(
      (await core.listNamespacedConfigMap({ namespace: ns })).items
        .map((c) => c.metadata?.name)
        .filter((n) => n !== "kube-root-ca.crt"),
      [],
    );
  });
});
