// vmcpctl preview against the local control plane and a stack the "controller" applied:
// a group-membership change, an auth change and a Service type change, as a reviewer
// would see them in JSON and markdown.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseManifests } from "../../program/manifests.js";
import { createEngine } from "../../engine/stacks.js";
import { build } from "../../program/desired.js";
import { gatherInputs, objectSet } from "../../program/inputs.js";
import type { VirtualMCPServer } from "../../api/index.js";
import { ROOT } from "../unit/helpers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { API_VERSION, kube } from "../support/kube.js";

function manifests(ns: string, opts: { members: string[]; authOn?: string; serviceType?: string }): string {
  const docs = [
    `apiVersion: ${API_VERSION}
kind: MCPGroup
metadata: {name: tools, namespace: ${ns}}
spec: {}`,
    `apiVersion: ${API_VERSION}
kind: MCPExternalAuthConfig
metadata: {name: api-key, namespace: ${ns}}
spec: {type: headerInjection, headerInjection: {headerName: X-API-Key, valueSecretRef: {name: keys, key: api}}}`,
    ...opts.members.map(
      (m) => `apiVersion: ${API_VERSION}
kind: MCPServerEntry
metadata: {name: ${m}, namespace: ${ns}}
spec:
  remoteUrl: "http://${m}.example.test/mcp"
  transport: streamable-http
  groupRef: {name: tools}${opts.authOn === m ? "\n  externalAuthConfigRef: {name: api-key}" : ""}`,
    ),
    `apiVersion: ${API_VERSION}
kind: VirtualMCPServer
metadata: {name: gw, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}, serviceType: ${opts.serviceType ?? "ClusterIP"}}`,
  ];
  return docs.join("\n---\n");
}

interface Report {
  summary: Record<string, number>;
  vmcps: {
    vmcp: string;
    changes: { kind: string; op: string; fields: { path: string; old?: unknown; new?: unknown }[] }[];
    configDiff: string;
    warnings: string[];
  }[];
}

describe("vmcpctl preview (real engine, local control plane)", function () {
  this.timeout(300_000);
  let ns: string;
  let work: string;
  const env = () => ({
    ...process.env,
    PULUMI_CONFIG_PASSPHRASE: "preview-test",
    KUBECONFIG: controlPlane().kubeconfigPath,
  });

  function preview(file: string, output: string, extra: { stateDir?: string; passphrase?: string } = {}) {
    return spawnSync(
      process.execPath,
      [
        join(ROOT, "dist", "cli", "main.js"),
        "preview",
        "-f",
        file,
        "--state-dir",
        extra.stateDir ?? join(work, "state"),
        "-o",
        output,
        "--detailed-exitcode",
      ],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...env(), ...(extra.passphrase ? { PULUMI_CONFIG_PASSPHRASE: extra.passphrase } : {}) },
      },
    );
  }
  function changed(name: string, opts: Parameters<typeof manifests>[1]): string {
    const file = join(work, `${name}.yaml`);
    writeFileSync(file, manifests(ns, opts));
    return file;
  }

  before(async () => {
    ns = await newNamespace("preview");
    work = mkdtempSync(join(tmpdir(), "vmcp-preview-"));
    // What is in the cluster, and what the controller applied for it.
    const base = parseManifests(manifests(ns, { members: ["alpha", "beta"] }), "base").objects;
    const k = kube(adminKubeConfig(), ns);
    let vmcp: VirtualMCPServer | undefined;
    for (const o of base) {
      const created = await k.createObject(o);
      if (o.kind === "VirtualMCPServer") vmcp = created as VirtualMCPServer;
    }
    assert.ok(vmcp);
    const objects = base.map((o) => (o.kind === "VirtualMCPServer" ? vmcp : o)) as typeof base;
    const desired = build(gatherInputs(objectSet(objects), vmcp), {
      vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
    }).desired;
    assert.ok(desired);
    const engine = await createEngine({
      stateDir: join(work, "state"),
      passphrase: "preview-test",
      kubeconfig: controlPlane().kubeconfigPath,
    });
    await engine.up(desired);
    await engine.close();
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it("reports no change, exit 0, for the manifests as applied", () => {
    const r = preview(changed("same", { members: ["alpha", "beta"] }), "json");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as Report).vmcps, []);
  });

  it("a group-membership change: ConfigMap and Deployment updated in place, config.yaml diff", () => {
    const r = preview(changed("member", { members: ["alpha", "beta", "gamma"] }), "json");
    assert.equal(r.status, 2, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(report.summary, { create: 0, update: 2, replace: 0, delete: 0 });
    const v = report.vmcps[0];
    assert.deepEqual(
      v?.changes.map((c) => `${c.op} ${c.kind}`),
      ["update ConfigMap", "update Deployment"],
    );
    const dep = v?.changes.find((c) => c.kind === "Deployment");
    assert.ok(
      dep?.fields.some((f) => f.path.endsWith('annotations["toolhive.stacklok.dev/runconfig-checksum"]')),
      JSON.stringify(dep),
    );
    assert.match(v?.configDiff ?? "", /^\+ +name: gamma$/m);
    assert.deepEqual(v?.warnings, []);
  });

  it("an auth change: the secret reference appears as an env var, its value nowhere", () => {
    const r = preview(changed("auth", { members: ["alpha", "beta"], authOn: "beta" }), "json");
    assert.equal(r.status, 2, r.stderr);
    const v = (JSON.parse(r.stdout) as Report).vmcps[0];
    const dep = v?.changes.find((c) => c.kind === "Deployment");
    const env = dep?.fields.find((f) =>
      f.path.includes("env[name=TOOLHIVE_HEADER_INJECTION_VALUE_API_KEY].valueFrom.secretKeyRef.name"),
    );
    assert.equal(env?.new, "keys", JSON.stringify(dep?.fields));
    assert.match(v?.configDiff ?? "", /headerValueEnv: TOOLHIVE_HEADER_INJECTION_VALUE_API_KEY/);
  });

  it("a Service type change is flagged disruptive, in markdown for a pull request", () => {
    const r = preview(changed("svc", { members: ["alpha", "beta"], serviceType: "NodePort" }), "markdown");
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stdout, /^### vmcp-operator preview$/m);
    assert.match(r.stdout, /\*\*0 to create, 1 to update, 0 to replace, 0 to delete\*\*/);
    assert.match(r.stdout, /> :warning: \*\*Service .*\/vmcp-gw: Service type ClusterIP → NodePort/);
    assert.match(
      r.stdout,
      /\| update \| Service `[^`]+\/vmcp-gw` \| `spec\.type: "ClusterIP" → "NodePort"` \|/,
    );
  });

  it("a wrong state dir: the stack is not found, instead of a preview of everything as creates", () => {
    const r = preview(changed("wrongdir", { members: ["alpha", "beta"] }), "json", {
      stateDir: join(work, "not-the-state"),
    });
    assert.equal(r.status, 1, r.stdout);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^error: [^ ]+\/gw: the VirtualMCPServer is in the cluster, but its stack [^ ]+\.gw was not found in file:\/\/.*not-the-state: is --state-dir/m,
    );
  });

  it("a wrong passphrase: one clean error line", () => {
    const r = preview(changed("wrongpass", { members: ["alpha", "beta"] }), "json", { passphrase: "not-it" });
    assert.equal(r.status, 1, r.stdout);
    assert.equal(
      r.stderr.trim(),
      `vmcpctl: the passphrase does not decrypt the state of stack ${ns}.gw: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the controller's`,
    );
  });
});
