// vmcpctl demo: everything in one command. Starts a local control plane (or uses the
// cluster of --kubeconfig), three real MCP servers on 127.0.0.1 registered as MCPServers
// of a group, a VirtualMCPServer in front of them, and the controller; then shows a live
// table until Ctrl-C, and tears everything down.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { GROUP, STORAGE_VERSION, type VirtualMCPServer } from "../api/index.js";
import { jsonLogger } from "../controller/log.js";
import { startController, type Controller } from "../controller/main.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { EXTRA_SAMPLE, SAMPLE_NAMES, startSample, type Sample } from "../samples/demo.js";
import {
  consoleLogger,
  installCrdsFromDir,
  serviceProxy,
  startControlPlane,
  vmcpImages,
  type ControlPlane,
  type ServiceProxy,
} from "../localcluster/index.js";
import { DEFAULT_VMCP_IMAGE, serviceName } from "../program/names.js";
import { parseArgs } from "./args.js";

const HELP = `usage: vmcpctl demo [--kubeconfig F] [--namespace NS] [--until-ready] [--timeout SECONDS]

Starts, on this machine: a local Kubernetes control plane (etcd, kube-apiserver,
controller-manager, scheduler, kwok; skipped with --kubeconfig), the CRDs, three real
MCP servers (weather, notes, tickets) registered as MCPServers of the group "demo", a
VirtualMCPServer "demo-gateway" in front of them, and the vmcp-operator controller.
Shows the VirtualMCPServer, its backends, their health and tool counts live; Ctrl-C
deletes the VirtualMCPServer (the controller destroys its stack) and stops everything.

Run as root on the local plane, the vMCP pod really runs (the process kubelet:
ToolHive's vmcp from $VMCP_BINARY in its own network namespace). Once Ready, the demo
prints the URL, lists the aggregated tools through it with an MCP client, calls one,
then adds a fourth server (calendar) to the group: the pod rolls and the new tool
appears at the same URL (a loopback proxy to the Service's ready endpoints).

flags:
  --kubeconfig    use this cluster instead of starting one (the MCP servers must be
                  reachable from this machine at 127.0.0.1, so a remote cluster only
                  shows them unavailable)
  --namespace     namespace for the demo objects (default vmcp-demo)
  --until-ready   exit 0 as soon as the VirtualMCPServer is Ready (for scripts)
  --timeout       give up after this many seconds without Ready (default 300)
`;

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

const api = (kc: KubeConfig) => kc.makeApiClient(CustomObjectsApi);
const custom = (namespace: string, plural: string) => ({
  group: GROUP,
  version: STORAGE_VERSION,
  namespace,
  plural,
});

async function ignoreExists<T>(p: Promise<T>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!String((err as { code?: number }).code ?? err).includes("409")) throw err;
  }
}

/** An MCPServer of the group "demo" at the sample's URL (standing in for ToolHive's controller). */
async function addServer(kc: KubeConfig, ns: string, s: Sample): Promise<void> {
  const o = api(kc);
  await ignoreExists(
    o.createNamespacedCustomObject({
      ...custom(ns, "mcpservers"),
      body: {
        apiVersion: `${GROUP}/${STORAGE_VERSION}`,
        kind: "MCPServer",
        metadata: { name: s.name, namespace: ns },
        spec: {
          image: `example.com/${s.name}-mcp:1.0.0`,
          transport: "streamable-http",
          groupRef: { name: "demo" },
        },
      },
    }),
  );
  // Standing in for ToolHive's MCPServer controller: the server runs here, at this URL.
  await o.patchNamespacedCustomObjectStatus(
    { ...custom(ns, "mcpservers"), name: s.name, body: { status: { phase: "Ready", url: s.url } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

async function createObjects(kc: KubeConfig, ns: string, samples: Sample[]): Promise<void> {
  await ignoreExists(kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } }));
  const o = api(kc);
  const meta = (name: string) => ({ name, namespace: ns });
  await ignoreExists(
    o.createNamespacedCustomObject({
      ...custom(ns, "mcpgroups"),
      body: {
        apiVersion: `${GROUP}/${STORAGE_VERSION}`,
        kind: "MCPGroup",
        metadata: meta("demo"),
        spec: { description: "demo servers" },
      },
    }),
  );
  for (const s of samples) await addServer(kc, ns, s);
  await ignoreExists(
    o.createNamespacedCustomObject({
      ...custom(ns, "virtualmcpservers"),
      body: {
        apiVersion: `${GROUP}/${STORAGE_VERSION}`,
        kind: "VirtualMCPServer",
        metadata: meta("demo-gateway"),
        spec: {
          groupRef: { name: "demo" },
          incomingAuth: { type: "anonymous" },
          config: {
            aggregation: {
              conflictResolution: "prefix",
              conflictResolutionConfig: { prefixFormat: "{workload}_" },
            },
            operational: { failureHandling: { healthCheckInterval: "5s", healthCheckTimeout: "2s" } },
          },
        },
      },
    }),
  );
}

/** The AUTH column: outgoing auth of the backend ("unauthenticated" is ToolHive's name for none). */
const authLabel = (authType: string | undefined): string =>
  authType === undefined ? "-" : authType === "unauthenticated" ? "none" : authType;

/** The live table of the demo (exported for its test). */
export function table(v: VirtualMCPServer | undefined, elapsed: number): string {
  const s = v?.status;
  const lines = [
    `vmcp-operator demo — ${Math.round(elapsed / 1000)}s — Ctrl-C to stop and clean up`,
    "",
    `VirtualMCPServer  ${v?.metadata.namespace}/${v?.metadata.name}`,
    `  phase           ${s?.phase ?? "-"}${s?.message ? `  (${s.message})` : ""}`,
    `  url             ${s?.url ?? "-"}`,
    `  backends        ${s?.backendCount ?? "-"} routable`,
    `  tools (total)   ${s?.capabilities?.tools ?? "-"}`,
    "",
    `  ${"BACKEND".padEnd(10)} ${"STATUS".padEnd(16)} ${"TOOLS".padEnd(6)} ${"AUTH".padEnd(16)} URL`,
    ...(s?.discoveredBackends ?? []).map(
      (b) =>
        `  ${b.name.padEnd(10)} ${(b.status ?? "-").padEnd(16)} ${String(b.capabilities?.tools ?? "-").padEnd(6)} ${authLabel(b.authType).padEnd(16)} ${b.url ?? ""}`,
    ),
    "",
    ...(s?.conditions ?? []).map((c) => `  ${c.type.padEnd(20)} ${c.status.padEnd(6)} ${c.reason}`),
  ];
  return lines.join("\n");
}

const print = (line = ""): boolean => process.stdout.write(`${line}\n`);

/** Polls `fn` every 500 ms until it returns a value, up to `ms`. */
async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function mcpClient(url: string): Promise<Client> {
  const client = new Client({ name: "vmcpctl-demo", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

async function toolNames(url: string): Promise<string[]> {
  const client = await mcpClient(url);
  try {
    return (await client.listTools()).tools.map((t) => t.name).sort();
  } finally {
    await client.close();
  }
}

/** The ready vMCP pod (not `notUid`) of the demo gateway. */
async function readyPod(kc: KubeConfig, ns: string, notUid?: string) {
  const pods = await kc
    .makeApiClient(CoreV1Api)
    .listNamespacedPod({ namespace: ns, labelSelector: "toolhive-name=demo-gateway" });
  return pods.items.find(
    (p) =>
      !p.metadata?.deletionTimestamp &&
      p.metadata?.uid !== notUid &&
      p.status?.podIP &&
      p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
}

/**
 * The end of the demo on real pods: the URL, the tools through it, one call end to end,
 * how to connect, then a fourth server joins the group and the pod rolls.
 */
async function endpointTour(
  kc: KubeConfig,
  ns: string,
  plane: ControlPlane,
  samples: Sample[],
  say: ReturnType<typeof consoleLogger>,
): Promise<ServiceProxy> {
  const pod = await until("a ready vMCP pod", 180_000, () => readyPod(kc, ns));
  const podUrl = `http://${pod.status?.podIP}:4483/mcp`;
  const proxy = await serviceProxy(kc, ns, serviceName("demo-gateway"), 4483);
  const stableUrl = `${proxy.url}/mcp`;
  const log = plane.kubelet?.pods().find((p) => p.uid === pod.metadata?.uid)?.logFiles.vmcp;
  print();
  print(`vMCP pod ${pod.metadata?.name} runs ToolHive's vmcp on node ${pod.spec?.nodeName}`);
  print(`  pod URL     ${podUrl}`);
  print(
    `  stable URL  ${stableUrl}   (Service ${serviceName("demo-gateway")}: loopback proxy to its ready endpoints)`,
  );
  if (log) print(`  pod log     ${log}`);
  const tools = await until("the aggregated tools", 60_000, async () => {
    const names = await toolNames(podUrl);
    return names.length ? names : undefined;
  });
  print();
  print(`aggregated tools through the pod (${tools.length}):`);
  for (const t of tools) print(`  ${t}`);
  const client = await mcpClient(stableUrl);
  try {
    const answer = await client.callTool({ name: "weather_forecast", arguments: { q: "Berlin" } });
    const text = (answer.content as { type: string; text?: string }[]).map((c) => c.text ?? "").join(" ");
    print();
    print(`tools/call weather_forecast {"q":"Berlin"} → ${text}   (client → vMCP pod → weather server)`);
  } finally {
    await client.close();
  }
  print();
  print("connect your own MCP client (streamable HTTP, no auth) to");
  print(`  ${stableUrl}`);
  print(`  e.g. npx @modelcontextprotocol/inspector, transport "Streamable HTTP", URL ${stableUrl}`);
  print(`  or a client config: {"mcpServers":{"demo":{"type":"http","url":"${stableUrl}"}}}`);
  print();
  const gateway = plane.kubelet?.gateway ?? "127.0.0.1";
  const extra = await startSample(EXTRA_SAMPLE, gateway);
  samples.push(extra);
  await addServer(kc, ns, extra);
  say(`added MCPServer ${EXTRA_SAMPLE} to the group; the config changes and the pod rolls`);
  const rolled = await until("the rolled pod", 240_000, () => readyPod(kc, ns, pod.metadata?.uid));
  const after = await until(`${EXTRA_SAMPLE}'s tool at the stable URL`, 120_000, async () => {
    const names = await toolNames(stableUrl);
    return names.some((n) => n.startsWith(`${EXTRA_SAMPLE}_`)) ? names : undefined;
  });
  print(
    `new pod ${rolled.metadata?.name} (${rolled.status?.podIP}); tools at ${stableUrl} (${after.length}):`,
  );
  for (const t of after) print(`  ${t}${tools.includes(t) ? "" : "   ← new"}`);
  return proxy;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    flags: {
      kubeconfig: "string",
      namespace: "string",
      "until-ready": "boolean",
      timeout: "string",
      help: "boolean",
    },
    aliases: { h: "help", n: "namespace" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const ns = (values.namespace as string | undefined) ?? "vmcp-demo";
  const timeoutMs = Number((values.timeout as string | undefined) ?? "300") * 1000;
  const untilReady = values["until-ready"] === true;
  const say = consoleLogger("demo");
  const work = mkdtempSync(join(tmpdir(), "vmcp-demo-"));
  let plane: ControlPlane | undefined;
  let controller: Controller | undefined;
  const samples: Sample[] = [];
  let kc: KubeConfig | undefined;
  let proxy: ServiceProxy | undefined;
  let stopping = false;

  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    say("cleaning up");
    if (kc && controller) {
      await api(kc)
        .deleteNamespacedCustomObject({ ...custom(ns, "virtualmcpservers"), name: "demo-gateway" })
        .catch(() => undefined);
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const gone = await api(kc)
          .getNamespacedCustomObject({ ...custom(ns, "virtualmcpservers"), name: "demo-gateway" })
          .then(
            () => false,
            () => true,
          );
        if (gone) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      say("VirtualMCPServer deleted; its stack was destroyed by the controller");
    }
    await proxy?.close();
    await controller?.stop(10_000);
    await Promise.all(samples.map((s) => s.stop()));
    await plane?.stop();
    rmSync(work, { recursive: true, force: true });
    say("stopped");
  };

  try {
    const kubeconfigPath = (values.kubeconfig as string | undefined) ?? undefined;
    if (kubeconfigPath) {
      say("using the cluster of", { kubeconfig: kubeconfigPath });
    } else {
      say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)");
      const root = process.getuid?.() === 0;
      const images = root ? vmcpImages(process.env.VMCP_BINARY ?? "vmcp") : undefined;
      if (!root) say("not root: the vMCP pod will not run (kwok only); run as root for a working endpoint");
      else if (!(DEFAULT_VMCP_IMAGE in (images ?? {})))
        throw new Error(
          `$VMCP_BINARY plays ${Object.keys(images ?? {}).join()}, the controller deploys ${DEFAULT_VMCP_IMAGE}`,
        );
      plane = await startControlPlane({ full: true, log: say, ...(images ? { runPods: { images } } : {}) });
    }
    const path = kubeconfigPath ?? (plane as ControlPlane).kubeconfigPath;
    kc = new KubeConfig();
    kc.loadFromFile(path);
    const crds = await installCrdsFromDir(kc, join(repoRoot(), "crds"));
    say("CRDs installed", { count: crds.length });
    // With real pods the servers listen where the pods reach the host: the kubelet's gateway.
    const host = plane?.kubelet?.gateway ?? "127.0.0.1";
    for (const name of SAMPLE_NAMES) samples.push(await startSample(name, host));
    say("MCP servers listening", Object.fromEntries(samples.map((s) => [s.name, s.url])));
    await createObjects(kc, ns, samples);
    say("applied MCPGroup demo, 3 MCPServers, VirtualMCPServer demo-gateway", { namespace: ns });
    const logFile = join(work, "controller.log");
    const out = createWriteStream(logFile);
    controller = await startController({
      probeEgress: { allowLoopback: true }, // the MCP servers listen on 127.0.0.1
      kubeconfig: path,
      kubeconfigPath: path,
      stateDir: join(work, "state"),
      passphrase: randomBytes(16).toString("hex"),
      workers: 2,
      log: jsonLogger({ write: (line) => out.write(`${line}\n`) }),
    });
    say("controller started", { log: logFile });

    const started = Date.now();
    let readyAt: number | undefined;
    const interrupted = new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    let done = false;
    void interrupted.then(() => (done = true));
    while (!done) {
      const v = (await api(kc)
        .getNamespacedCustomObject({ ...custom(ns, "virtualmcpservers"), name: "demo-gateway" })
        .catch(() => undefined)) as VirtualMCPServer | undefined;
      // Ready, and every backend probed at least once (the first probes are spread out).
      const probed = (v?.status?.discoveredBackends ?? []).every((b) => b.status !== "unknown");
      if (v?.status?.phase === "Ready" && probed && readyAt === undefined) readyAt = Date.now();
      if (process.stdout.isTTY && !untilReady)
        process.stdout.write(`\x1b[2J\x1b[H${table(v, Date.now() - started)}\n`);
      if (readyAt !== undefined && plane?.kubelet && !proxy) {
        process.stdout.write(
          `${table(v, Date.now() - started)}\n\nReady after ${((readyAt - started) / 1000).toFixed(1)}s\n`,
        );
        proxy = await endpointTour(kc, ns, plane, samples, say);
        if (untilReady) return 0;
        print();
        print("Ctrl-C stops everything.");
        await interrupted;
        return 0;
      }
      if (readyAt !== undefined && untilReady) {
        process.stdout.write(
          `${table(v, Date.now() - started)}\n\nReady after ${((readyAt - started) / 1000).toFixed(1)}s\n`,
        );
        return 0;
      }
      if (readyAt === undefined && Date.now() - started > timeoutMs) {
        process.stdout.write(`${table(v, Date.now() - started)}\n\nnot Ready after ${timeoutMs / 1000}s\n`);
        return 1;
      }
      if (!process.stdout.isTTY && !untilReady && readyAt !== undefined && readyAt > Date.now() - 1000)
        process.stdout.write(`${table(v, Date.now() - started)}\n`);
      await Promise.race([new Promise((r) => setTimeout(r, 1000)), interrupted]);
    }
    return 0;
  } finally {
    await cleanup();
  }
}
