// The shared Kubernetes provider (engine option provider: "shared", engine/provider.ts):
// operations attach to one long-lived provider process instead of starting their own, a
// killed provider is replaced, and close() leaves none running.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { parseManifests } from "../../program/manifests.js";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { build, type DesiredState } from "../../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../../program/inputs.js";
import type { VirtualMCPServer } from "../../api/index.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { API_VERSION, kube } from "../support/kube.js";

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("Pulumi engine with a shared provider process", function () {
  this.timeout(600_000);
  let ns: string;
  let engine: Engine;
  let stateDir: string;
  let parsed: AnyObject[];
  let vmcp: VirtualMCPServer;

  function desiredWith(timeout: string): DesiredState {
    const v = structuredClone(vmcp) as VirtualMCPServer & { spec: Record<string, unknown> };
    v.spec.config = { operational: { timeouts: { default: timeout } } };
    const b = build(gatherInputs(objectSet(parsed.map((o) => (o.kind === "VirtualMCPServer" ? v : o))), v), {
      vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
    });
    assert.ok(b.desired, JSON.stringify(b.problems));
    return b.desired;
  }

  async function configYaml(): Promise<string> {
    const cm = await adminKubeConfig()
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ name: "gateway-vmcp-config", namespace: ns });
    return cm.data?.["config.yaml"] ?? "";
  }

  before(async () => {
    ns = await newNamespace("shared-provider");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-state-"));
    engine = await createEngine({
      stateDir,
      passphrase: "test-passphrase",
      kubeconfig: controlPlane().kubeconfigPath,
      provider: "shared",
    });
    parsed = parseManifests(
      `apiVersion: ${API_VERSION}
kind: MCPGroup
metadata: {name: tools, namespace: ${ns}}
spec: {}
---
apiVersion: ${API_VERSION}
kind: VirtualMCPServer
metadata: {name: gateway, namespace: ${ns}}
spec: {groupRef: {name: tools}, incomingAuth: {type: anonymous}}`,
      "test",
    ).objects;
    vmcp = (await kube(adminKubeConfig(), ns).createObject(
      parsed.find((o) => o.kind === "VirtualMCPServer")!,
    )) as VirtualMCPServer;
  });

  after(async () => {
    await engine?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("runs successive ups through one provider process, each applied", async () => {
    await engine.up(desiredWith("11s"));
    const [pid] = engine.providerPids();
    assert.ok(pid, "no provider process after the first up");
    // The CLI sends Cancel to the provider when it exits: without the pass-through answering
    // it, every later request of this process fails with "context canceled".
    for (const t of ["12s", "13s"]) {
      const result = await engine.up(desiredWith(t));
      assert.ok(
        result.changes.some((c) => c.type.endsWith("ConfigMap")),
        JSON.stringify(result.summary),
      );
      assert.match(await configYaml(), new RegExp(`default: ${t}`));
    }
    assert.deepEqual(engine.providerPids(), [pid], "the ups did not share the provider process");
  });

  it("replaces a provider process that died, and stops it on close", async () => {
    const [old] = engine.providerPids();
    assert.ok(old);
    process.kill(old, "SIGKILL");
    while (alive(old)) await new Promise((r) => setTimeout(r, 50));
    await engine.up(desiredWith("14s"));
    assert.match(await configYaml(), /default: 14s/);
    const [fresh] = engine.providerPids();
    assert.ok(fresh && fresh !== old, `provider not replaced: ${engine.providerPids().join(",")}`);
    await engine.close();
    assert.equal(alive(fresh), false, "close() left the provider process running");
    assert.deepEqual(engine.providerPids(), []);
  });
});
