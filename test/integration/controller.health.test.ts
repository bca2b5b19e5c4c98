// Backend health through the controller: real MCP servers on 127.0.0.1 behind a
// VirtualMCPServer; a server that stops turns it Degraded and back to Ready, with tool
// counts after aggregation, and none of it runs Pulumi or touches the Deployment.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import { startController, type Controller } from "../../controller/main.js";
import { startMcpServer, type McpTestServer } from "../support/mcpservers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import type { VirtualMCPServer } from "../../api/index.js";

const GROUP = "toolhive.stacklok.dev";
const V = "v1beta1";

describe("controller health monitoring (real MCP backends)", function () {
  this.timeout(300_000);
  let ns: string;
  let stateDir: string;
  let engine: Engine;
  let controller: Controller;
  const servers: McpTestServer[] = [];
  const custom = () => adminKubeConfig().makeApiClient(CustomObjectsApi);
  const create = (plural: string, body: object) =>
    custom().createNamespacedCustomObject({ group: GROUP, version: V, namespace: ns, plural, body });
  const vmcp = async () =>
    (await custom().getNamespacedCustomObject({
      group: GROUP,
      version: V,
      namespace: ns,
      plural: "virtualmcpservers",
      name: "gw",
    })) as VirtualMCPServer;
  async function until(
    what: string,
    check: (v: VirtualMCPServer) => boolean,
    timeoutMs = 60_000,
  ): Promise<VirtualMCPServer> {
    const deadline = Date.now() + timeoutMs;
    let last: VirtualMCPServer | undefined;
    while (Date.now() < deadline) {
      last = await vmcp();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(last?.status, null, 1)}`);
  }
  const backend = (v: VirtualMCPServer, name: string) =>
    v.status?.discoveredBackends?.find((b) => b.name === name);

  before(async () => {
    ns = await newNamespace("health");
    servers.push(
      await startMcpServer({ flavour: "streamable-http", spec: { tools: ["search", "get_page"] } }),
    );
    servers.push(
      await startMcpServer({
        flavour: "streamable-http",
        spec: { tools: ["search", "create_issue", "close_issue"] },
      }),
    );
    await create("mcpgroups", {
      apiVersion: `${GROUP}/${V}`,
      kind: "MCPGroup",
      metadata: { name: "g", namespace: ns },
      spec: {},
    });
    for (const [i, name] of ["wiki", "tracker"].entries())
      await create("mcpserverentries", {
        apiVersion: `${GROUP}/${V}`,
        kind: "MCPServerEntry",
        metadata: { name, namespace: ns },
        spec: { remoteUrl: servers[i]?.url(), transport: "streamable-http", groupRef: { name: "g" } },
      });
    await create("virtualmcpservers", {
      apiVersion: `${GROUP}/${V}`,
      kind: "VirtualMCPServer",
      metadata: { name: "gw", namespace: ns },
      spec: {
        groupRef: { name: "g" },
        incomingAuth: { type: "anonymous" },
        config: {
          aggregation: {
            conflictResolution: "prefix",
            tools: [{ workload: "tracker", filter: ["search", "create_issue"] }],
          },
          operational: {
            failureHandling: {
              healthCheckInterval: "1s",
              healthCheckTimeout: "2s",
              unhealthyThreshold: 2,
              partialFailureMode: "best_effort",
            },
          },
        },
      },
    });
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-health-state-"));
    engine = await createEngine({ stateDir, passphrase: "test", kubeconfig: controlPlane().kubeconfigPath });
    controller = await startController({
      probeEgress: { allowLoopback: true }, // the MCP servers listen on 127.0.0.1
      kubeconfig: controlPlane().kubeconfigPath,
      namespace: ns,
      engine,
      resyncMs: 3_600_000,
      log: jsonLogger({ level: "warn" }),
    });
  });

  after(async () => {
    await controller?.stop(30_000);
    await engine?.close();
    await Promise.all(servers.map((s) => s.stop()));
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("goes Ready with per-backend health and the tool count a client will see", async () => {
    const v = await until(
      "Ready with probed backends",
      (x) => x.status?.phase === "Ready" && x.status?.capabilities?.tools !== undefined,
    );
    assert.equal(backend(v, "wiki")?.status, "ready");
    assert.equal(backend(v, "wiki")?.capabilities?.tools, 2, JSON.stringify(v.status, null, 1));
    assert.equal(backend(v, "tracker")?.capabilities?.tools, 3);
    assert.ok(backend(v, "tracker")?.lastHealthCheck, "lastHealthCheck missing");
    // prefix resolution: wiki_search, wiki_get_page, tracker_search, tracker_create_issue (close_issue filtered out)
    assert.equal(v.status?.capabilities?.tools, 4);
    assert.equal(v.status?.backendCount, 2);
  });

  it("a backend that stops turns the server Degraded and back to Ready, without Pulumi or a rollout", async () => {
    const apps = adminKubeConfig().makeApiClient(AppsV1Api);
    const before = await apps.readNamespacedDeployment({ name: "gw", namespace: ns });
    const processes = engine.processesStarted;

    await servers[1]?.stop();
    const degraded = await until("Degraded", (x) => x.status?.phase === "Degraded");
    assert.equal(backend(degraded, "tracker")?.status, "unavailable");
    assert.ok((backend(degraded, "tracker")?.consecutiveFailures ?? 0) >= 2);
    assert.equal(degraded.status?.backendCount, 1);
    assert.equal(
      degraded.status?.conditions?.find((c) => c.type === "Ready")?.reason,
      "SomeBackendsUnhealthy",
    );

    await servers[1]?.start();
    const ready = await until(
      "Ready again",
      (x) => x.status?.phase === "Ready" && backend(x, "tracker")?.status === "ready",
    );
    assert.equal(ready.status?.backendCount, 2);

    // kubectl describe tells the same story as the status.
    const core = adminKubeConfig().makeApiClient(CoreV1Api);
    const deadline = Date.now() + 30_000;
    let story: string[] = [];
    const expected = [
      "Warning BackendUnavailable Backend tracker is unavailable",
      "Warning PhaseChanged Phase Ready → Degraded",
      "Normal BackendRecovered Backend tracker is ready again",
      "Normal PhaseChanged Phase Degraded → Ready",
    ];
    while (Date.now() < deadline) {
      const events = await core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: "involvedObject.name=gw",
      });
      story = events.items.map((e) => `${e.type} ${e.reason} ${e.message}`);
      if (expected.every((line) => story.some((e) => e.startsWith(line)))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const line of expected)
      assert.ok(
        story.some((e) => e.startsWith(line)),
        `no Event "${line}…" in:\n${story.join("\n")}`,
      );

    const after = await apps.readNamespacedDeployment({ name: "gw", namespace: ns });
    assert.equal(after.metadata?.generation, before.metadata?.generation, "the Deployment changed");
    assert.equal(engine.processesStarted, processes, "a health change started Pulumi");
  });
});
