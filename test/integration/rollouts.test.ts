// Rollouts a client does not notice: on real vMCP pods (process kubelet), a client calls a
// tool every 100 ms through the Service (the kubelet's service proxy) while a backend joins
// and leaves the group again and again; every change rolls the pod. With sessionStorage on a
// real redis-server, no call fails and the session goes on over every pod change; without
// it, each rollout ends the session (PodsReady says so) and the client recovers with a new
// one, losing no call to anything else. Prints the figures of both runs, and how long a
// connected client took to see a joined (or left) backend's tools.
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiscoveryV1Api } from "@kubernetes/client-node";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { jsonLogger } from "../../controller/log.js";
import { SESSIONS_IN_POD_MEMORY } from "../../controller/steps.js";
import { serviceProxy, type ProcessKubelet, type ServiceProxy } from "../../localcluster/index.js";
import { deploymentName, serviceName } from "../../program/names.js";
import { startMcpServer, type McpTestServer } from "../../samples/mcpservers.js";
import type { TestController } from "../support/controller.js";
import { conditionOf, kube } from "../support/kube.js";
import { poll } from "../support/poll.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { adminKubeConfig, newNamespace, runPods, startPodsController } from "./fixture.js";

/**
 * Membership changes per run (add, remove, add, …): each one is a pod rollout. Without Redis
 * every change ends the session the same way (and the CI budget is tight), so that run does
 * fewer by default.
 */
const CHANGES = Number(process.env.VMCP_ROLLOUT_CHANGES ?? 10);
const CHANGES_MEMORY = Number(process.env.VMCP_ROLLOUT_CHANGES_MEMORY ?? 4);
const CALL_EVERY_MS = 100;

interface Figures {
  run: string;
  changes: number;
  calls: number;
  /** Calls left unanswered, by reason (see SteadyClient). */
  failed: Record<Failure, number>;
  sessionsLost: number;
  /** Per lost session: ms from its 404 to the next answered call on a new session. */
  recoveryMs: number[];
  resent: number;
  /** Per change: ms from the API write to the connected client's tools/list showing it. */
  toolsSeenMs: number[];
  /** Per change: ms from the API write until the old pod is gone. */
  rolloutMs: number[];
  /** notifications/tools/list_changed the client received. */
  listChanged: number;
  seconds: number;
  firstErrors: string[];
}

/** fetch's own failure (no HTTP status): the connection broke, no answer came. */
const isConnectionReset = (err: unknown): boolean =>
  err instanceof TypeError && /fetch failed/.test(String(err));

const isSessionGone = (err: unknown): boolean =>
  (err as { code?: number }).code === 404 || /session (terminated|not found)/i.test(String(err));

/**
 * Why a call went unanswered. The first two are what docs/rollouts.md says a rollout may
 * cost a client (without Redis the session, and a connection reset at SIGTERM); anything
 * else is a failure of the rollout.
 */
type Failure = "session lost" | "connection reset" | "other";
const failureOf = (err: unknown): Failure =>
  isSessionGone(err) ? "session lost" : isConnectionReset(err) ? "connection reset" : "other";

/** Tries per call: a lost session and a reset may both come before the answer. */
const ATTEMPTS = 4;

/**
 * One MCP client that keeps calling `tool`, recovering as the MCP spec tells a client to:
 * on 404 for its session id it initializes a new session (and sends the call again there:
 * a 404 means the call was not run). A call written on a connection the old pod closed at
 * SIGTERM (Go's graceful shutdown closes idle keep-alive connections) never reached vmcp,
 * so it is sent again, as browsers do on a reused connection. Both are counted.
 */
class SteadyClient {
  private client: Client | undefined;
  /** Every session this client initialized, in order. */
  readonly sessions: string[] = [];
  calls = 0;
  /** Calls left unanswered after every try, by the reason of the last try. */
  readonly failed: Record<Failure, number> = { "session lost": 0, "connection reset": 0, other: 0 };
  sessionsLost = 0;
  /** Calls sent again after a connection reset before any answer. */
  resent = 0;
  /** Per lost session: ms from its 404 to the next answered call (on a new session). */
  readonly recoveryMs: number[] = [];
  listChanged = 0;
  lastAnsweredAt = 0;
  errors: string[] = [];
  private lostAt: number[] = [];
  private running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly tool: string,
  ) {}

  /** Initializes a session; on failure nothing is left open. */
  async connect(): Promise<void> {
    const client = new Client({ name: "rollouts-test", version: "1.0.0" });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void this.listChanged++);
    const transport = new StreamableHTTPClientTransport(new URL(this.url));
    // The GET stream for server notifications is cut on every pod change and reconnects by
    // itself; what counts here is whether calls and the session survive.
    transport.onerror = () => undefined;
    try {
      await client.connect(transport, { timeout: 10_000 });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
    this.client = client;
    this.sessions.push(transport.sessionId ?? "");
  }

  /** Losses not (yet) followed by an answered call. */
  get unrecovered(): number {
    return this.lostAt.length;
  }

  get failedCalls(): number {
    return Object.values(this.failed).reduce((a, b) => a + b, 0);
  }

  async toolNames(): Promise<string[]> {
    if (!this.client) throw new Error("between sessions");
    return (await this.client.listTools(undefined, { timeout: 10_000 })).tools.map((t) => t.name);
  }

  private async callOnce(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.client) await this.connect();
        const r = await this.client!.callTool({ name: this.tool, arguments: {} }, undefined, {
          timeout: 10_000,
        });
        const text = (r.content as { text?: string }[])[0]?.text;
        if (r.isError || text !== "ping") throw new Error(`unexpected answer ${JSON.stringify(r.content)}`);
        return;
      } catch (err) {
        const why = failureOf(err);
        if (why === "session lost" && this.client) {
          this.sessionsLost++;
          this.lostAt.push(Date.now());
          await this.client.close().catch(() => undefined);
          this.client = undefined;
        } else if (why === "connection reset") this.resent++;
        if (why === "other" || attempt === ATTEMPTS) throw err;
      }
    }
  }

  start(): void {
    this.running = true;
    this.done = (async () => {
      while (this.running) {
        const began = Date.now();
        this.calls++;
        try {
          await this.callOnce();
          this.lastAnsweredAt = Date.now();
          for (const t of this.lostAt) this.recoveryMs.push(this.lastAnsweredAt - t);
          this.lostAt = [];
        } catch (err) {
          this.failed[failureOf(err)]++;
          if (this.errors.length < 5) this.errors.push(`${new Date().toISOString()} ${String(err)}`);
        }
        await new Promise((r) => setTimeout(r, Math.max(0, CALL_EVERY_MS - (Date.now() - began))));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
    await this.client?.close().catch(() => undefined);
    this.client = undefined;
  }
}

describe("rollouts on real pods: a steady client while backends join and leave", function () {
  this.timeout(900_000);
  let kubelet: ProcessKubelet;
  let base: McpTestServer;
  let extra: McpTestServer;
  let redis: RedisServer;
  const figures: Figures[] = [];

  before(async () => {
    kubelet = await runPods();
    const host = kubelet.gateway; // pods reach the host here (the bridge address)
    base = await startMcpServer({ flavour: "streamable-http", host, spec: { tools: ["ping"] } });
    extra = await startMcpServer({ flavour: "streamable-http", host, spec: { tools: ["echo"] } });
    redis = await startRedis([host, "127.0.0.1"]);
  });

  after(async () => {
    const secs = (ms: number[]) => ms.map((m) => (m / 1000).toFixed(1)).join(", ");
    for (const f of figures) {
      const failed = Object.values(f.failed).reduce((a, b) => a + b, 0);
      const why = Object.entries(f.failed)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${n} ${k}`)
        .join(", ");
      console.log(
        `      rollout figures (${f.run}): ${f.changes} membership changes in ${f.seconds} s, ${f.calls} calls every ${CALL_EVERY_MS} ms, ` +
          `${failed} failed${why ? ` (${why})` : ""}, ${f.sessionsLost} sessions lost` +
          `${f.recoveryMs.length ? ` (next call answered on a new session after ${secs(f.recoveryMs)} s)` : ""}, ` +
          `${f.resent} sent again after a connection reset; new tools seen on tools/list after ` +
          `${secs(f.toolsSeenMs)} s; old pod gone after ${secs(f.rolloutMs)} s; list_changed notifications: ${f.listChanged}`,
      );
    }
    await Promise.all([base?.stop(), extra?.stop(), redis?.stop()]);
  });

  /** Runs the churn against a fresh namespace, controller and VirtualMCPServer; returns the figures. */
  async function churn(run: string, changes: number, sessionStorage: Record<string, unknown> | undefined) {
    const ns = await newNamespace(`rollouts-${run}`);
    const controllerLog = join(tmpdir(), `vmcp-${ns}-controller.log`);
    const k = kube(adminKubeConfig, () => ns);
    let controller: TestController | undefined;
    let proxy: ServiceProxy | undefined;
    let steady: SteadyClient | undefined;
    let done = false;
    try {
      await k.readyGroup("tools");
      await k.entry("base", "tools", base.url());
      await k.create("VirtualMCPServer", "gw", {
        groupRef: { name: "tools" },
        incomingAuth: { type: "anonymous" },
        ...(sessionStorage ? { sessionStorage } : {}),
        config: {
          aggregation: {
            conflictResolution: "prefix",
            conflictResolutionConfig: { prefixFormat: "{workload}_" },
          },
          // Lenient: the sample backends share 2 loaded cores with everything else, and a
          // backend vmcp marks unhealthy drops out of the tool list (a failed call here).
          operational: { failureHandling: { healthCheckInterval: "10s", healthCheckTimeout: "5s" } },
        },
      });
      // The figures are the output here; the controller's log goes to a file.
      controller = await startPodsController(
        `rollouts-${run}`,
        ns,
        jsonLogger({ write: (line) => appendFileSync(controllerLog, `${line}\n`) }),
      );
      /**
       * The rollout is over: one pod of the current template, ready and available, and the old
       * one gone (while it drains, a client's open connection may still reach the old config).
       */
      const rolledOut = async () => {
        await poll(
          `${run}: Deployment rolled out`,
          async () => {
            const d = await k.apps().readNamespacedDeployment({ namespace: ns, name: deploymentName("gw") });
            const s = d.status ?? {};
            return (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
              s.updatedReplicas === 1 &&
              s.readyReplicas === 1 &&
              s.availableReplicas === 1 &&
              s.replicas === 1
              ? true
              : undefined;
          },
          240_000,
          250,
        );
        await poll(
          `${run}: the old pod gone`,
          async () => {
            const pods = await k
              .core()
              .listNamespacedPod({ namespace: ns, labelSelector: "toolhive-name=gw" });
            return pods.items.length === 1 ? true : undefined;
          },
          240_000,
          250,
        );
      };
      await poll(
        `${run}: gw Ready with 1 tool`,
        async () => {
          const s = await k.statusOf("gw");
          return s.phase === "Ready" && s.capabilities?.tools === 1 ? true : undefined;
        },
        240_000,
        500,
      );
      await rolledOut();
      proxy = await serviceProxy(adminKubeConfig(), ns, serviceName("gw"), 4483);
      steady = new SteadyClient(`${proxy.url}/mcp`, "base_ping");
      await steady.connect();
      steady.start();
      const started = Date.now();
      const toolsSeenMs: number[] = [];
      const rolloutMs: number[] = [];
      for (let i = 0; i < changes; i++) {
        const joining = i % 2 === 0;
        const t0 = Date.now();
        if (joining) await k.entry("extra", "tools", extra.url());
        else await k.remove("MCPServerEntry", "extra");
        const client = steady;
        await poll(
          `${run} change ${i + 1}: the connected client's tools/list ${joining ? "shows" : "drops"} extra_echo`,
          async () => ((await client.toolNames()).includes("extra_echo") === joining ? true : undefined),
          240_000,
          200,
        );
        toolsSeenMs.push(Date.now() - t0);
        await rolledOut();
        const over = Date.now();
        rolloutMs.push(over - t0);
        // The client goes on after this rollout: a call answered once only the new pod is left.
        await poll(
          `${run} change ${i + 1}: a call answered after the rollout`,
          () => (client.lastAnsweredAt > over ? true : undefined),
          30_000,
          100,
        );
      }
      const seconds = Math.round((Date.now() - started) / 1000);
      await steady.stop();
      const pods = conditionOf(await k.statusOf("gw"), "PodsReady");
      const f: Figures = {
        run,
        changes,
        calls: steady.calls,
        failed: { ...steady.failed },
        resent: steady.resent,
        sessionsLost: steady.sessionsLost,
        recoveryMs: [...steady.recoveryMs],
        toolsSeenMs,
        rolloutMs,
        listChanged: steady.listChanged,
        seconds,
        firstErrors: steady.errors,
      };
      figures.push(f);
      done = true;
      return { figures: f, podsReady: pods, sessions: steady.sessions, unrecovered: steady.unrecovered };
    } finally {
      if (!done) {
        // What the pods and the Service's endpoints were when it went wrong, and the client's errors.
        const pods = await k.core().listNamespacedPod({ namespace: ns, labelSelector: "toolhive-name=gw" });
        const slices = await adminKubeConfig()
          .makeApiClient(DiscoveryV1Api)
          .listNamespacedEndpointSlice({ namespace: ns });
        console.log(
          `      ${run} failed; controller log ${controllerLog}; pods: ${JSON.stringify(
            pods.items.map((p) => [
              p.metadata?.name,
              p.status?.podIP,
              p.status?.phase,
              p.metadata?.deletionTimestamp,
              p.status?.conditions?.find((c) => c.type === "Ready")?.status,
            ]),
          )}; endpoints: ${JSON.stringify(slices.items.flatMap((x) => x.endpoints ?? []).map((e) => [e.addresses, e.conditions]))}; ` +
            `calls ${steady?.calls}, failed ${JSON.stringify(steady?.failed)}, lost ${steady?.sessionsLost}; errors: ${steady?.errors.join(" | ")}`,
        );
      }
      await steady?.stop();
      await proxy?.close();
      await controller?.stop();
    }
  }

  it(`with sessionStorage on Redis: ${CHANGES} rollouts, no failed call, one session throughout`, async () => {
    const r = await churn("redis", CHANGES, { provider: "redis", address: redis.address });
    assert.deepEqual(
      r.figures.failed,
      { "session lost": 0, "connection reset": 0, other: 0 },
      `failed calls: ${r.figures.firstErrors.join("\n")}`,
    );
    assert.equal(r.figures.sessionsLost, 0);
    assert.equal(r.sessions.length, 1, "the session started on the first pod is the one in use");
    assert.ok(r.figures.calls >= CHANGES * 10, `${r.figures.calls} calls`);
    assert.equal(
      r.figures.listChanged,
      0,
      "vmcp sends no list_changed for a new pod's tools (docs/rollouts.md)",
    );
    // What vmcp keeps in Redis for that session: a JSON map of metadata, nothing live
    // (backend connections are rebuilt by the pod that serves the next request).
    const key = `thv:vmcp:session:${r.sessions[0]}`;
    const raw = await redis.command(`GET ${key}`);
    const stored = JSON.parse(raw.slice(raw.indexOf("\r\n") + 2).trim()) as Record<string, string>;
    const ttl = (await redis.command(`TTL ${key}`)).replace(/[:\r\n]/g, "");
    console.log(`      Redis ${key} (TTL ${ttl} s) holds: ${Object.keys(stored).sort().join(", ")}`);
    assert.ok("vmcp.backend.ids" in stored && "vmcp.identity.binding" in stored, Object.keys(stored).join());
    assert.doesNotMatch(r.podsReady?.message ?? "", /sessions live in pod memory/);
  });

  it(`without sessionStorage: ${CHANGES_MEMORY} rollouts each end the session, the client goes on with a new one; PodsReady says so`, async () => {
    const r = await churn("memory", CHANGES_MEMORY, undefined);
    const f = r.figures;
    // What docs/rollouts.md promises without Redis: the session ends, nothing else does.
    assert.equal(f.failed.other, 0, `calls failed for another reason: ${f.firstErrors.join("\n")}`);
    assert.ok(
      f.sessionsLost >= CHANGES_MEMORY,
      `every rollout ended the in-memory session: ${f.sessionsLost} lost`,
    );
    // Each loss was followed by a new session (initialize) and an answered call on it.
    assert.equal(r.unrecovered, 0, "the last lost session was followed by an answered call");
    assert.equal(f.recoveryMs.length, f.sessionsLost);
    assert.equal(new Set(r.sessions).size, f.sessionsLost + 1, `sessions: ${r.sessions.join(", ")}`);
    assert.ok(f.calls >= CHANGES_MEMORY * 10, `${f.calls} calls`);
    assert.equal(r.podsReady?.status, "True");
    assert.ok(r.podsReady?.message?.endsWith(SESSIONS_IN_POD_MEMORY), r.podsReady?.message);
  });
});
