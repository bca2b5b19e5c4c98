// Backend health through the controller: real MCP servers on 127.0.0.1 behind a
// VirtualMCPServer; a server that stops turns it Degraded and back to Ready, with tool
// counts after aggregation, and none of it runs Pulumi or touches the Deployment.
import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import type { Engine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import type { Controller } from "../../controller/main.js";
import { startMcpServer, type McpTestServer } from "../../samples/mcpservers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { startTestController, type TestController } from "../support/controller.js";
import { kube, type VmcpObject } from "../support/kube.js";

describe("controller health monitoring (real MCP backends)", function () {
  this.timeout(300_000);
  let ns: string;
  let tc: TestController | undefined;
  let engine: Engine;
  let controller: Controller;
  const servers: McpTestServer[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const vmcp = () => k.vmcp("gw");
  async function until(
    what: string,
    check: (v: VmcpObject) => boolean,
    timeoutMs = 60_000,
  ): Promise<VmcpObject> {
    const deadline = Date.now() + timeoutMs;
    let last: VmcpObject | undefined;
    while (Date.now() < deadline) {
      last = await vmcp();
      if (check(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}; status: ${JSON.stringify(last?.status, null, 1)}`);
  }
  const backend = (v: VmcpObject, name: string) => v.status?.discoveredBackends?.find((b) => b.name === name);

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
    await k.create("MCPGroup", "g", {});
    for (const [i, name] of ["wiki", "tracker"].entries()) await k.entry(name, "g", servers[i]?.url() ?? "");
    await k.create("VirtualMCPServer", "gw", {
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
            healthCheckTimeout: "900ms", // vmcp wants it below the interval
            unhealthyThreshold: 2,
            partialFailureMode: "best_effort",
          },
        },
      },
    });
    tc = await startTestController({
      name: "health",
      kubeconfigPath: controlPlane().kubeconfigPath,
      controller: {
        probeEgress: { allowLoopback: true }, // the MCP servers listen on 127.0.0.1
        kubeconfig: controlPlane().kubeconfigPath,
        namespace: ns,
        resyncMs: 3_600_000,
        log: jsonLogger({ level: "warn" }),
      },
    });
    ({ controller, engine } = tc);
  });

  after(async () => {
    await tc?.stop();
    await Promise.all(servers.map((s) => s.stop()));
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
    const apps = k.apps();
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

  it("manual conflict resolution without overrides: a condition names the clashes the probes find", async () => {
    const aggregation = (tools: unknown[]) =>
      k.patchSpec("VirtualMCPServer", "gw", {
        config: { aggregation: { conflictResolution: "manual", tools } },
      });
    const condition = (v: VmcpObject) =>
      v.status?.conditions?.find((c) => c.type === "ToolConflictsResolved");
    // Both backends advertise "search"; the tracker entry filters but does not rename it.
    await aggregation([{ workload: "tracker", filter: ["search", "create_issue"] }]);
    const clash = await until("a clash reported", (x) => condition(x)?.status === "False");
    assert.equal(condition(clash)?.reason, "UnresolvedToolConflicts");
    assert.match(condition(clash)?.message ?? "", /"search" \((tracker, wiki|wiki, tracker)\)/);
    assert.equal(clash.status?.conditions?.find((c) => c.type === "Valid")?.status, "True");

    await aggregation([
      {
        workload: "tracker",
        filter: ["search", "create_issue"],
        overrides: { search: { name: "find_issues" } },
      },
    ]);
    const resolved = await until("the clash resolved", (x) => condition(x)?.status === "True");
    assert.equal(condition(resolved)?.reason, "NoToolConflicts");
  });
});
