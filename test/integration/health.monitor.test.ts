// The health monitor probing real MCP servers on 127.0.0.1, with short intervals.
import assert from "node:assert/strict";
import { aggregateCapabilities } from "../../health/capabilities.js";
import { HealthMonitor, type MonitoredBackend } from "../../health/monitor.js";
import { isRoutable, summarize, type BackendHealth } from "../../health/state.js";
import { startMcpServer, type McpTestServer } from "../../samples/mcpservers.js";

/** The test servers listen on 127.0.0.1, which the monitor refuses by default. */
const LOOPBACK = { egress: { allowLoopback: true } };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - start;
}

describe("health monitor against real MCP servers", function () {
  this.timeout(30_000);
  const servers: McpTestServer[] = [];
  let monitor: HealthMonitor | undefined;
  const start = async (...args: Parameters<typeof startMcpServer>): Promise<McpTestServer> => {
    const s = await startMcpServer(...args);
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    await monitor?.stop();
    monitor = undefined;
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it("a mixed group: ready, degraded, failing, auth ok, auth wrong; SSE, streamable and stateless", async () => {
    const healthy = await start({
      flavour: "streamable-http",
      spec: { tools: ["search", "fetch"], resources: 1 },
    });
    const slow = await start({ flavour: "sse", spec: { tools: ["read"], delayMs: 1200 } });
    const failing = await start({ flavour: "streamable-http", spec: { tools: 3 } });
    failing.setMode("fail");
    const guarded = await start({
      flavour: "stateless",
      spec: { tools: ["fetch"], prompts: 2, requireHeader: { name: "x-api-key", value: "k-123456" } },
    });
    const backends: MonitoredBackend[] = [
      { name: "healthy", url: healthy.url(), transport: "streamable-http" },
      { name: "slow", url: slow.url(), transport: "sse" },
      { name: "failing", url: failing.url(), transport: "streamable-http" },
      { name: "guarded", url: guarded.url(), transport: "streamable-http" },
      { name: "wrongkey", url: guarded.url(), transport: "streamable-http" },
    ];
    // Every probe lists (relistIntervalMs 0): the slow server is slow in its list answers, and a
    // handshake-only probe of it, a later one under load, would be fast and read ready.
    monitor = new HealthMonitor({
      ...LOOPBACK,
      degradedLatencyMs: 800,
      startSpreadMs: 50,
      relistIntervalMs: 0,
    });
    monitor.update(
      "ns/mixed",
      backends,
      { healthCheckInterval: "300ms", healthCheckTimeout: "3s", unhealthyThreshold: 2 },
      (b) =>
        b.name === "guarded"
          ? { type: "header", headerName: "x-api-key", value: "k-123456" }
          : b.name === "wrongkey"
            ? { type: "header", headerName: "x-api-key", value: "k-wrong" }
            : { type: "none" },
    );
    const byName = (): Record<string, BackendHealth> =>
      Object.fromEntries(monitor!.snapshot("ns/mixed")!.map((h) => [h.name, h]));
    await until(() => Object.values(byName()).every((h) => h.status !== "unknown"), 8000, "all checked");
    const h = byName();
    assert.equal(h.healthy?.status, "ready");
    assert.equal(h.slow?.status, "degraded", h.slow?.message);
    assert.equal(h.failing?.status, "unavailable");
    assert.match(h.failing!.message, /HTTP 500/);
    assert.ok(h.failing!.consecutiveFailures >= 2);
    assert.equal(h.guarded?.status, "ready", h.guarded?.message);
    assert.equal(h.guarded?.era, "stateless");
    assert.equal(h.wrongkey?.status, "unauthenticated");
    assert.ok(
      !JSON.stringify(monitor.snapshot("ns/mixed")).includes("k-123456"),
      "no secret in the snapshot",
    );

    const summary = summarize(Object.values(h));
    assert.equal(summary.phase, "Degraded");
    assert.equal(summary.backendCount, 4);

    // What a client sees: tools of routable backends with known lists, prefixed, filtered.
    const visible = aggregateCapabilities(
      Object.values(h)
        .filter((b) => isRoutable(b.status) && b.toolNames)
        .map((b) => ({
          name: b.name,
          toolNames: b.toolNames!,
          resources: b.counts!.resources,
          prompts: b.counts!.prompts,
        })),
      { tools: [{ workload: "healthy", filter: ["search"] }] },
    );
    assert.deepEqual(
      visible.tools.map((t) => t.name),
      ["guarded_fetch", "healthy_search", "slow_read"],
    );
    assert.deepEqual(visible.counts, { tools: 3, resources: 1, prompts: 2 });
  });

  it("flapping: every other probe fails; the threshold is never reached, the status never flips", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 1 } });
    const transitions: string[] = [];
    monitor = new HealthMonitor({
      ...LOOPBACK,
      startSpreadMs: 0,
      onTransition: (_k, _n, b, a) => transitions.push(`${b.status}->${a.status}`),
    });
    monitor.update(
      "ns/flap",
      [{ name: "f", url: s.url(), transport: "streamable-http" }],
      { healthCheckInterval: "30ms", unhealthyThreshold: 2 },
      () => ({ type: "none" }),
    );
    await until(() => monitor!.snapshot("ns/flap")![0]!.status === "ready", 5000, "first check");
    s.setMode("flap");
    let maxFailures = 0;
    const before = s.stats.initializes;
    while (s.stats.initializes - before < 12) {
      maxFailures = Math.max(maxFailures, monitor.snapshot("ns/flap")![0]!.consecutiveFailures);
      await sleep(5);
    }
    assert.equal(maxFailures, 1, "failures were seen, never two in a row");
    assert.deepEqual(transitions, ["unknown->ready"]);
  });

  it("a backend stopped mid-run: Degraded within interval × threshold, circuit opens, half-opens, closes; Ready again", async () => {
    const a = await start({ flavour: "streamable-http", spec: { tools: ["x", "y"] } });
    const b = await start({ flavour: "sse", spec: { tools: ["z"] } });
    const events: string[] = [];
    monitor = new HealthMonitor({
      ...LOOPBACK,
      startSpreadMs: 20,
      onTransition: (_k, name, before, after) => {
        // one transition may carry both; the circuit is listed first
        if (before.circuitBreakerState !== after.circuitBreakerState)
          events.push(`${name}:circuit ${after.circuitBreakerState}`);
        if (before.status !== after.status) events.push(`${name}:${before.status}->${after.status}`);
      },
    });
    const interval = 100;
    const threshold = 3;
    monitor.update(
      "ns/v",
      [
        { name: "a", url: a.url(), transport: "streamable-http" },
        { name: "b", url: b.url(), transport: "sse" },
      ],
      {
        healthCheckInterval: `${interval}ms`,
        healthCheckTimeout: "2s",
        unhealthyThreshold: threshold,
        circuitBreaker: { enabled: true, failureThreshold: 4, timeout: "300ms" },
      },
      () => ({ type: "none" }),
    );
    const phase = (): string => summarize(monitor!.snapshot("ns/v")!).phase;
    await until(() => monitor!.snapshot("ns/v")!.every((h) => h.status === "ready"), 5000, "both checked");
    assert.equal(phase(), "Ready");

    await a.stop();
    const toDegraded = await until(() => phase() === "Degraded", 3000, "Degraded after stop");
    // threshold probes at interval (+10 % jitter), one interval of phase offset, and slack
    // for a loaded CI machine
    assert.ok(toDegraded <= interval * 1.1 * (threshold + 1) + 400, `took ${toDegraded} ms`);
    await until(() => events.includes("a:circuit open"), 3000, "circuit opens");
    const probesWhileOpen = a.stats.requests;
    await until(() => events.includes("a:circuit half-open"), 3000, "half-open trial");
    await a.start(); // same port
    await until(() => events.includes("a:circuit closed") && phase() === "Ready", 3000, "closed again");
    assert.equal(a.stats.requests > probesWhileOpen, true);

    const aEvents = events.filter((e) => e.startsWith("a:"));
    const order = [
      "a:unknown->ready",
      "a:ready->unavailable",
      "a:circuit open",
      "a:circuit half-open",
      "a:circuit closed",
      "a:unavailable->ready",
    ];
    let at = -1;
    for (const e of order) {
      const i = aEvents.indexOf(e, at + 1);
      assert.ok(i > at, `${e} after ${order[order.indexOf(e) - 1]} in ${JSON.stringify(aEvents)}`);
      at = i;
    }
    assert.ok(
      !events.some((e) => e.startsWith("b:") && e !== "b:unknown->ready" && !e.startsWith("b:circuit")),
    );
    assert.deepEqual(monitor.snapshot("ns/v")!.find((h) => h.name === "a")!.counts, {
      tools: 2,
      resources: 0,
      prompts: 0,
    });
  });

  it("pagination: a backend with several pages of tools is counted in full", async () => {
    const s = await start({
      flavour: "streamable-http",
      spec: { tools: 57, resources: 12, prompts: 9, pageSize: 10 },
    });
    monitor = new HealthMonitor({ ...LOOPBACK, startSpreadMs: 0 });
    monitor.update(
      "ns/p",
      [{ name: "big", url: s.url(), transport: "streamable-http" }],
      { healthCheckInterval: "1s" },
      () => ({
        type: "none",
      }),
    );
    await until(() => monitor!.snapshot("ns/p")![0]!.status === "ready", 2000, "checked");
    assert.deepEqual(monitor.snapshot("ns/p")![0]!.counts, { tools: 57, resources: 12, prompts: 9 });
    assert.equal(s.openSessions(), 1, "the session is kept for the next probe");
    await monitor.stop();
    assert.equal(s.stats.deletes, 1, "and ended when the monitor stops");
    assert.equal(s.openSessions(), 0);
  });

  it("a kept session: pinged between listings, a new one when it expires, the credentials change or the listing is due; ended on removal", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 2 } });
    let key = "k1";
    monitor = new HealthMonitor({ ...LOOPBACK, startSpreadMs: 0, jitter: 0, relistIntervalMs: 600 });
    const backend = { name: "b", url: s.url(), transport: "streamable-http" as const };
    monitor.update("ns/s", [backend], { healthCheckInterval: "50ms" }, () => ({
      type: "header",
      headerName: "x-api-key",
      value: key,
    }));
    const h = () => monitor!.snapshot("ns/s")![0]!;
    await until(() => s.stats.pings >= 3, 3000, "pings on the kept session");
    assert.equal(s.stats.initializes, 1, "one handshake, then pings");
    assert.equal(s.openSessions(), 1);
    assert.equal(h().status, "ready");
    assert.deepEqual(h().counts, { tools: 2, resources: 0, prompts: 0 });

    // The server forgets its sessions (a restart): the ping's 404 leads to a new handshake.
    const initsBefore = s.stats.initializes;
    s.dropSessions();
    await until(() => s.stats.initializes === initsBefore + 1, 3000, "a new handshake after the 404");
    const failuresSeen = h().consecutiveFailures;
    assert.equal(failuresSeen, 0, "an expired session is not a failure");
    assert.equal(h().status, "ready");

    // Rotated credentials: tested at once by a handshake (the old session is ended).
    const deletesBefore = s.stats.deletes;
    key = "k2";
    const initsRotated = s.stats.initializes;
    await until(() => s.stats.initializes > initsRotated, 3000, "a handshake with the new credentials");
    await until(() => s.stats.deletes > deletesBefore, 3000, "the old session ended");
    assert.equal(s.openSessions(), 1);

    // The listing is due every 600 ms: a handshake with the lists, the old session ended.
    const lists = s.stats.listCalls;
    await until(() => s.stats.listCalls > lists, 3000, "a re-listing");
    await until(() => s.openSessions() === 1, 3000, "one session open after the re-listing");

    monitor.remove("ns/s");
    await until(() => s.openSessions() === 0, 3000, "the session ended on removal");
  });
});
