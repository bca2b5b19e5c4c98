// Referenced objects end to end (real API server, real Pulumi engine): changing an
// MCPExternalAuthConfig, an MCPToolConfig, a VirtualMCPCompositeToolDefinition or the
// ConfigMap holding the Cedar policies gives
// the VirtualMCPServer that references it a new config (ConfigMap content, pod template
// checksum, applied hash) and leaves a VirtualMCPServer of the same group that does not
// reference it alone (no Pulumi run, no object touched, applied hash unchanged).
// A referenced MCPToolConfig or authz ConfigMap deleted: a clear condition, the last good
// objects kept.
import assert from "node:assert/strict";
import type { Controller } from "../../controller/main.js";
import { jsonLogger } from "../../controller/log.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { conditionOf as cond, kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

/** What a user can see of one VirtualMCPServer's applied configuration. */
interface Snapshot {
  config: string;
  cmVersion: string;
  /** metadata.generation: moves with spec changes only (kwok's status updates do not count). */
  depGeneration: number;
  podChecksum: string;
  appliedHash: string;
}

describe("controller: referenced objects (auth, tool config, composite tool) end to end", function () {
  this.timeout(300_000);
  let ns: string;
  let tc: TestController | undefined;
  let controller: Controller;
  const k = kube(adminKubeConfig, () => ns);
  const { core, apps, statusOf } = k;

  async function snapshot(name: string): Promise<Snapshot> {
    const cm = await core().readNamespacedConfigMap({ name: `${name}-vmcp-config`, namespace: ns });
    const dep = await apps().readNamespacedDeployment({ name, namespace: ns });
    const st = await statusOf(name);
    return {
      config: cm.data?.["config.yaml"] ?? "",
      cmVersion: cm.metadata?.resourceVersion ?? "",
      depGeneration: dep.metadata?.generation ?? 0,
      podChecksum:
        dep.spec?.template.metadata?.annotations?.["toolhive.stacklok.dev/runconfig-checksum"] ?? "",
      appliedHash: st.appliedHash ?? "",
    };
  }

  /** A ConfigMap in ToolHive's authz file format, permitting one action. */
  const policyMap = (action: string) => ({
    metadata: { name: "policy" },
    data: {
      "authz.yaml": [
        'version: "1.0"',
        "type: cedarv1",
        "cedar:",
        "  policies:",
        `    - 'permit(principal, action == Action::"${action}", resource);'`,
        '  entities_json: "[]"',
        "",
      ].join("\n"),
    },
  });

  /** Pulumi up/repair runs so far. */
  const applies = async () =>
    (await controller.metrics.pulumiDuration.count({ op: "up" })) +
    (await controller.metrics.pulumiDuration.count({ op: "repair" }));

  /**
   * Makes `change`, waits until `refs` carries a new config containing `expect`, and shows
   * that `plain` (same group, no reference) was left alone.
   */
  async function changeAffectsOnlyRefs(
    ref: { kind: string; name: string },
    change: () => Promise<unknown>,
    expect: RegExp,
  ): Promise<Snapshot> {
    await controller.queue.idle();
    const before = await snapshot("refs");
    const plainBefore = await snapshot("plain");
    const appliesBefore = await applies();
    assert.doesNotMatch(before.config, expect, "precondition: the old config lacks the new value");
    await change();
    const after = await poll(`refs config matching ${expect}`, async () => {
      const s = await snapshot("refs");
      return expect.test(s.config) && s.appliedHash !== before.appliedHash && s.appliedHash !== ""
        ? s
        : undefined;
    });
    await controller.queue.idle();
    assert.notEqual(after.podChecksum, before.podChecksum, "the pod template checksum rolled");
    const st = await statusOf("refs");
    assert.equal(
      st.appliedHash,
      st.stackOutputs?.desiredHash,
      "status.appliedHash is what the stack applied",
    );
    assert.equal(st.phase, "Ready");
    assert.equal((await applies()) - appliesBefore, 1, "exactly one Pulumi up: for refs, none for plain");
    const plainAfter = await snapshot("plain");
    assert.deepEqual(plainAfter, plainBefore, "plain's objects and applied hash are untouched");
    // The live reference index routes the changed object to refs alone.
    assert.deepEqual(controller.router.index.referencing(ref.kind, ns, ref.name), [`${ns}/refs`]);
    return after;
  }

  before(async () => {
    ns = await newNamespace("refs");
    tc = await startTestController({
      name: "refs",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        kubeconfig: adminKubeConfig(),
        namespace: ns,
        workers: 2,
        resyncMs: 3_600_000,
        applyGraceMs: 5_000,
        healthChecks: false, // the backends are fake URLs: only configuration is under test
        log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "warn" }),
      },
    });
    controller = tc.controller;
    await k.readyGroup("tools");
    for (const entry of ["alpha", "beta"]) await k.entry(entry, "tools", `http://${entry}.example.test/mcp`);
    await k.create("MCPExternalAuthConfig", "api-key", {
      type: "headerInjection",
      headerInjection: { headerName: "X-Api-Key", valueSecretRef: { name: "alpha-key", key: "key" } },
    });
    await k.create("MCPToolConfig", "readonly", {
      toolsFilter: ["list_items", "get_item"],
    });
    await k.create("VirtualMCPCompositeToolDefinition", "lookup", {
      name: "lookup_item",
      description: "Find an item, version one",
      parameters: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
      steps: [{ id: "get", tool: "alpha.get_item", arguments: { id: "{{.params.id}}" } }],
    });
    await core().createNamespacedConfigMap({ namespace: ns, body: policyMap("list_tools") });
    await k.create("VirtualMCPServer", "refs", {
      groupRef: { name: "tools" },
      // Cedar policies from a ConfigMap (authzConfig.type defaults to configMap).
      incomingAuth: { type: "anonymous", authzConfig: { configMap: { name: "policy", key: "authz.yaml" } } },
      outgoingAuth: {
        source: "discovered",
        backends: { alpha: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "api-key" } } },
      },
      config: {
        aggregation: {
          conflictResolution: "prefix",
          tools: [{ workload: "alpha", toolConfigRef: { name: "readonly" } }],
        },
        compositeToolRefs: [{ name: "lookup" }],
      },
    });
    await k.create("VirtualMCPServer", "plain", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
    });
    for (const name of ["refs", "plain"])
      await poll(`${name} Ready`, async () => {
        const st = await statusOf(name);
        return st.phase === "Ready" && st.appliedHash ? true : undefined;
      });
    const refs = await snapshot("refs");
    // The references really are in the config (otherwise the test below proves nothing).
    assert.match(refs.config, /headerName: X-Api-Key/);
    assert.match(refs.config, /list_items/);
    assert.match(refs.config, /Find an item, version one/);
    assert.match(refs.config, /Action::"list_tools"/);
    assert.doesNotMatch((await snapshot("plain")).config, /X-Api-Key|list_items|lookup_item/);
  });

  after(async () => {
    await tc?.stop();
  });

  it("MCPExternalAuthConfig changed → only the referencing VirtualMCPServer gets a new config", async () => {
    const after = await changeAffectsOnlyRefs(
      { kind: "MCPExternalAuthConfig", name: "api-key" },
      () =>
        k.patchSpec("MCPExternalAuthConfig", "api-key", {
          headerInjection: { headerName: "X-Other-Key", valueSecretRef: { name: "alpha-key", key: "key" } },
        }),
      /headerName: X-Other-Key/,
    );
    assert.doesNotMatch(after.config, /X-Api-Key/);
  });

  it("MCPToolConfig changed → only the referencing VirtualMCPServer gets a new config", async () => {
    const after = await changeAffectsOnlyRefs(
      { kind: "MCPToolConfig", name: "readonly" },
      () => k.patchSpec("MCPToolConfig", "readonly", { toolsFilter: ["list_items", "search_items"] }),
      /search_items/,
    );
    assert.doesNotMatch(after.config, /^\s*- get_item$/m, "the old filter entry is gone");
  });

  it("VirtualMCPCompositeToolDefinition changed → only the referencing VirtualMCPServer gets a new config", async () => {
    await changeAffectsOnlyRefs(
      { kind: "VirtualMCPCompositeToolDefinition", name: "lookup" },
      () =>
        k.patchSpec("VirtualMCPCompositeToolDefinition", "lookup", {
          description: "Find an item, version two",
        }),
      /Find an item, version two/,
    );
  });

  it("authz ConfigMap changed → only the VirtualMCPServer reading it gets the new policy", async () => {
    const after = await changeAffectsOnlyRefs(
      { kind: "ConfigMap", name: "policy" },
      () =>
        core().replaceNamespacedConfigMap({ name: "policy", namespace: ns, body: policyMap("call_tool") }),
      /Action::"call_tool"/,
    );
    assert.doesNotMatch(after.config, /Action::"list_tools"/, "the old policy is gone");
  });

  it("authz ConfigMap deleted → AuthzConfigRefValidated=False, the last policy keeps running", async () => {
    await controller.queue.idle();
    const before = await snapshot("refs");
    const processes = controller.engine.processesStarted;
    await core().deleteNamespacedConfigMap({ name: "policy", namespace: ns });
    const st = await poll("AuthzConfigRefValidated=False", async () => {
      const s = await statusOf("refs");
      return cond(s, "AuthzConfigRefValidated")?.status === "False" ? s : undefined;
    });
    assert.match(cond(st, "AuthzConfigRefValidated")?.message ?? "", /authz ConfigMap policy not found/);
    assert.equal(st.phase, "Degraded");
    await controller.queue.idle();
    assert.deepEqual(await snapshot("refs"), before, "never a deployment without the policy");
    assert.equal(controller.engine.processesStarted, processes, "no Pulumi process");
    await core().createNamespacedConfigMap({ namespace: ns, body: policyMap("call_tool") });
    const back = await poll("refs Ready again", async () => {
      const s = await statusOf("refs");
      return s.phase === "Ready" && cond(s, "AuthzConfigRefValidated")?.status === "True" ? s : undefined;
    });
    assert.equal(back.appliedHash, before.appliedHash, "same inputs, same hash");
  });

  it("referenced MCPToolConfig deleted → clear condition, last good objects kept, no Pulumi run", async () => {
    await controller.queue.idle();
    const before = await snapshot("refs");
    const processes = controller.engine.processesStarted;
    await k.remove("MCPToolConfig", "readonly");
    const st = await poll("ToolConfigRefsValidated=False", async () => {
      const s = await statusOf("refs");
      return cond(s, "ToolConfigRefsValidated")?.status === "False" ? s : undefined;
    });
    assert.match(cond(st, "ToolConfigRefsValidated")?.message ?? "", /MCPToolConfig readonly .*not found/);
    assert.equal(cond(st, "Ready")?.status, "False");
    assert.match(cond(st, "Ready")?.message ?? "", /last applied configuration keeps running/);
    assert.equal(st.phase, "Degraded");
    await controller.queue.idle();
    assert.deepEqual(await snapshot("refs"), before, "ConfigMap, Deployment and applied hash unchanged");
    assert.equal(controller.engine.processesStarted, processes, "no Pulumi process");

    // Put it back: the VirtualMCPServer recovers with the same config as before the delete.
    await k.create("MCPToolConfig", "readonly", {
      toolsFilter: ["list_items", "search_items"],
    });
    const back = await poll("refs Ready again", async () => {
      const s = await statusOf("refs");
      return s.phase === "Ready" && cond(s, "ToolConfigRefsValidated")?.status === "True" ? s : undefined;
    });
    assert.equal(back.appliedHash, before.appliedHash, "same inputs, same hash");
    await controller.queue.idle();
    assert.equal(controller.engine.processesStarted, processes, "still no Pulumi process: nothing changed");
  });
});
