// Real vMCP pods: the controller's Deployment, run by the process kubelet as ToolHive's vmcp
// (the binary of the image tag we deploy), serves MCP at its pod IP. A client there sees the
// tool list the status predicts; a tool call reaches a backend that insists on the header
// whose value only the Secret holds; a backend added to the group rolls the pod and the new
// tools appear, also through a Service-stable loopback address; a Secret key that does not
// exist keeps the pod unready, and the VirtualMCPServer's status names the reason.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { DiscoveryV1Api } from "@kubernetes/client-node";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { jsonLogger } from "../../controller/log.js";
import { serviceProxy, type ProcessKubelet, type ServiceProxy } from "../../localcluster/index.js";
import { serviceName } from "../../program/names.js";
import { startMcpServer, type McpTestServer } from "../../samples/mcpservers.js";
import type { TestController } from "../support/controller.js";
import { conditionOf, kube, mergePatch } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { adminKubeConfig, newNamespace, runPods, startPodsController } from "./fixture.js";

async function toolsAt(url: string): Promise<{ names: string[]; client: Client }> {
  const client = new Client({ name: "pods-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  return { names, client };
}

describe("real vMCP pods (process kubelet): tools, auth, rollout, readiness", function () {
  this.timeout(600_000);
  const apiKey = `key-${randomBytes(12).toString("hex")}`;
  let ns: string;
  let kubelet: ProcessKubelet;
  let controller: TestController | undefined;
  let alpha: McpTestServer;
  let beta: McpTestServer;
  let gamma: McpTestServer;
  let proxy: ServiceProxy | undefined;
  const k = kube(adminKubeConfig, () => ns);
  const podsOf = async (name: string) =>
    (
      await k.core().listNamespacedPod({ namespace: ns, labelSelector: `toolhive-name=${name}` })
    ).items.filter((p) => !p.metadata?.deletionTimestamp);
  /** The one ready pod of `name` (and its IP) once the VirtualMCPServer is Ready with `tools` tools. */
  const readyPod = (name: string, tools: number, notUid?: string) =>
    poll(
      `${name} Ready with ${tools} tools on a ready pod${notUid ? " (a new one)" : ""}`,
      async () => {
        const s = await k.statusOf(name);
        if (s.phase !== "Ready" || s.capabilities?.tools !== tools) return undefined;
        const pods = await podsOf(name);
        const ready = pods.filter(
          (p) =>
            p.metadata?.uid !== notUid &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return pods.length === 1 && ready.length === 1 && ready[0]?.status?.podIP ? ready[0] : undefined;
      },
      240_000,
      500,
    );

  before(async () => {
    kubelet = await runPods();
    ns = await newNamespace("pods");
    const host = kubelet.gateway; // pods reach the host's backends here
    alpha = await startMcpServer({
      flavour: "streamable-http",
      host,
      spec: { tools: ["search", "fetch"], requireHeader: { name: "X-Api-Key", value: apiKey } },
    });
    beta = await startMcpServer({
      flavour: "streamable-http",
      host,
      spec: { tools: ["search", "summarize"] },
    });
    gamma = await startMcpServer({ flavour: "streamable-http", host, spec: { tools: ["translate"] } });
    await k.core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "alpha-key" }, stringData: { key: apiKey } },
    });
    await k.readyGroup("tools");
    await k.create("MCPExternalAuthConfig", "alpha-header", {
      type: "headerInjection",
      headerInjection: { headerName: "X-Api-Key", valueSecretRef: { name: "alpha-key", key: "key" } },
    });
    await k.create("MCPServerEntry", "alpha", {
      remoteUrl: alpha.url(),
      transport: "streamable-http",
      groupRef: { name: "tools" },
      externalAuthConfigRef: { name: "alpha-header" },
    });
    await k.entry("beta", "tools", beta.url());
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "tools" },
      incomingAuth: { type: "anonymous" },
      config: {
        aggregation: {
          conflictResolution: "prefix",
          conflictResolutionConfig: { prefixFormat: "{workload}_" },
        },
        operational: { failureHandling: { healthCheckInterval: "2s", healthCheckTimeout: "1s" } },
      },
    });
    const lines: string[] = [];
    controller = await startPodsController(
      "pods",
      ns,
      jsonLogger({ write: (line) => void lines.push(line) }),
    );
  });

  after(async () => {
    await proxy?.close();
    await controller?.stop();
    await Promise.all([alpha?.stop(), beta?.stop(), gamma?.stop()]);
  });

  it("serves, through the pod, the tool list the status predicts; a call carries the Secret's header", async () => {
    const pod = await readyPod("gw", 4);
    assert.equal(pod.spec?.nodeName, kubelet.nodeName, "the vMCP pod runs on the process kubelet's node");
    const ip = pod.status?.podIP as string;
    assert.ok(
      ip.startsWith(kubelet.podCidr.split(".").slice(0, 3).join(".")),
      `pod IP ${ip} in ${kubelet.podCidr}`,
    );
    const { names, client } = await toolsAt(`http://${ip}:4483/mcp`);
    try {
      assert.deepEqual(names, ["alpha_fetch", "alpha_search", "beta_search", "beta_summarize"]);
      const before = alpha.stats.unauthorized;
      const answer = await client.callTool({ name: "alpha_search", arguments: {} });
      assert.deepEqual(answer.content, [{ type: "text", text: "search" }]);
      assert.equal(alpha.stats.unauthorized, before, "alpha saw the right X-Api-Key");
    } finally {
      await client.close();
    }
    // kube-controller-manager points the Service's EndpointSlice at the pod.
    await poll("EndpointSlice → pod IP", async () => {
      const list = await adminKubeConfig()
        .makeApiClient(DiscoveryV1Api)
        .listNamespacedEndpointSlice({
          namespace: ns,
          labelSelector: `kubernetes.io/service-name=${serviceName("gw")}`,
        });
      const addrs = list.items.flatMap((s) =>
        (s.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses),
      );
      return addrs.length === 1 && addrs[0] === ip ? true : undefined;
    });
    // The pod's log is the vmcp process's.
    const logFile = kubelet.pods().find((p) => p.uid === pod.metadata?.uid)?.logFiles.vmcp as string;
    assert.match(readFileSync(logFile, "utf8"), /process kubelet: start vmcp/);
  });

  it("a backend added to the group rolls the pod; the new tool shows at the new pod and the stable URL", async () => {
    const old = await readyPod("gw", 4);
    proxy = await serviceProxy(adminKubeConfig(), ns, serviceName("gw"), 4483);
    const first = await toolsAt(`${proxy.url}/mcp`);
    await first.client.close();
    assert.equal(first.names.length, 4);
    await k.entry("gamma", "tools", gamma.url());
    const pod = await readyPod("gw", 5, old.metadata?.uid);
    const expected = ["alpha_fetch", "alpha_search", "beta_search", "beta_summarize", "gamma_translate"];
    const direct = await toolsAt(`http://${pod.status?.podIP}:4483/mcp`);
    await direct.client.close();
    assert.deepEqual(direct.names, expected);
    const stable = await poll("the stable URL serves the new tool list", async () => {
      const r = await toolsAt(`${(proxy as ServiceProxy).url}/mcp`).catch(() => undefined);
      await r?.client.close();
      return r && r.names.length === 5 ? r.names : undefined;
    });
    assert.deepEqual(stable, expected);
  });

  it("a Secret key that does not exist keeps the new pod unready; PodsReady says why; the old pod serves on", async () => {
    const old = await readyPod("gw", 5);
    await k.patchSpec("MCPExternalAuthConfig", "alpha-header", {
      headerInjection: { headerName: "X-Api-Key", valueSecretRef: { name: "alpha-key", key: "missing" } },
    });
    // An MCPExternalAuthConfig change reaches the VirtualMCPServer through the reference index.
    const status = await poll(
      "PodsReady=False CreateContainerConfigError",
      async () => {
        const s = await k.statusOf("gw");
        const c = conditionOf(s, "PodsReady");
        return c?.status === "False" && c.reason === "CreateContainerConfigError" ? s : undefined;
      },
      240_000,
      1000,
    );
    assert.match(
      conditionOf(status, "PodsReady")?.message ?? "",
      /couldn't find key missing in Secret alpha-key/,
    );
    // The rollout holds: the new pod is not ready, the old one still is (and still serves).
    const pods = await podsOf("gw");
    const isReady = (p: (typeof pods)[number]) =>
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
    const fresh = pods.filter((p) => p.metadata?.uid !== old.metadata?.uid);
    assert.ok(fresh.length >= 1 && fresh.every((p) => !isReady(p)), "the new pod is not ready");
    assert.ok(
      pods.some((p) => p.metadata?.uid === old.metadata?.uid && isReady(p)),
      "the old pod is ready",
    );
    // The key appears: the new pod starts, PodsReady turns True.
    await k
      .core()
      .patchNamespacedSecret(
        { name: "alpha-key", namespace: ns, body: { stringData: { missing: apiKey } } },
        mergePatch,
      );
    await readyPod("gw", 5, old.metadata?.uid);
    await poll("PodsReady=True", async () =>
      conditionOf(await k.statusOf("gw"), "PodsReady")?.status === "True" ? true : undefined,
    );
  });
});
