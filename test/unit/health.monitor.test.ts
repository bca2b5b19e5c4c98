// The monitor's scheduling and state machine with a scripted probe (no network).
import assert from "node:assert/strict";
import { HealthMonitor, type MonitoredBackend } from "../../health/monitor.js";
import type { ProbeOptions, ProbeResult, ProbeTarget } from "../../health/probe.js";
import { down, listed, until } from "./probefakes.js";
import { afterProbe, policyFrom, summarize, unknownHealth, type BackendHealth } from "../../health/state.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ok = (tools = 1): ProbeResult => listed(Array.from({ length: tools }, (_, i) => `t${i}`));
const backend = (name: string): MonitoredBackend => ({
  name,
  url: `http://x/${name}`,
  transport: "streamable-http",
});
const none = () => ({ type: "none" as const });

describe("health state (pure)", () => {
  const policy = policyFrom({ unhealthyThreshold: 3 });
  it("policyFrom: ToolHive defaults, durations parsed, breaker only when enabled", () => {
    assert.deepEqual(policyFrom(undefined), {
      intervalMs: 30_000,
      timeoutMs: 10_000,
      unhealthyThreshold: 3,
      degradedLatencyMs: 5000,
    });
    const p = policyFrom({
      healthCheckInterval: "1m",
      healthCheckTimeout: "2s",
      circuitBreaker: { enabled: true, failureThreshold: 4, timeout: "90s" },
    });
    assert.equal(p.intervalMs, 60_000);
    assert.equal(p.degradedLatencyMs, 2000, "never above the timeout");
    assert.deepEqual(p.breaker, { failureThreshold: 4, openTimeoutMs: 90_000 });
  });

  it("a failure changes status only at the threshold; a success resets at once", () => {
    let h: BackendHealth = { ...unknownHealth("a", "u"), status: "ready" };
    h = afterProbe(h, down, policy, 1000, undefined);
    assert.equal(h.status, "ready");
    assert.equal(h.consecutiveFailures, 1);
    assert.match(h.message, /failure 1 of 3/);
    h = afterProbe(h, down, policy, 2000, undefined);
    h = afterProbe(h, down, policy, 3000, undefined);
    assert.equal(h.status, "unavailable");
    assert.equal(h.lastHealthCheck, "1970-01-01T00:00:03Z");
    h = afterProbe(h, ok(2), policy, 4000, undefined);
    assert.equal(h.status, "ready");
    assert.equal(h.consecutiveFailures, 0);
    assert.deepEqual(h.counts, { tools: 2, resources: 0, prompts: 0 });
  });

  it("unauthenticated keeps the last known counts", () => {
    let h = afterProbe(unknownHealth("a", "u"), ok(3), policy, 1, undefined);
    h = afterProbe(h, { ...down, status: "unauthenticated", message: "401" }, policy, 2, undefined);
    assert.equal(h.status, "unauthenticated");
    assert.equal(h.counts?.tools, 3);
  });

  it("summarize: phases and backendCount", () => {
    const s = (...st: BackendHealth["status"][]) => summarize(st.map((status) => ({ status })));
    assert.equal(s().phase, "Ready");
    assert.equal(s("unknown", "unknown").phase, "Pending");
    assert.deepEqual(
      [s("ready", "unauthenticated").phase, s("ready", "unauthenticated").backendCount],
      ["Ready", 2],
    );
    assert.equal(s("ready", "unknown").phase, "Ready", "unchecked backends do not block Ready");
    assert.equal(s("ready", "degraded").phase, "Degraded");
    assert.equal(s("ready", "unavailable").phase, "Degraded");
    assert.equal(s("ready", "unavailable").backendCount, 1);
    assert.equal(s("unavailable", "unavailable").phase, "Failed");
    assert.equal(summarize([{ status: "unavailable" }], "best_effort").phase, "Degraded");
  });
});

describe("health monitor (scripted probe)", function () {
  this.timeout(10_000);
  let monitor: HealthMonitor | undefined;
  afterEach(async () => {
    await monitor?.stop();
    monitor = undefined;
  });

  it("status changes after unhealthyThreshold failures, with exactly one transition each way", async () => {
    let healthy = true;
    const transitions: string[] = [];
    monitor = new HealthMonitor({
      probe: async () => (healthy ? ok() : down),
      startSpreadMs: 0,
      onTransition: (key, name, before, after) =>
        transitions.push(`${key}/${name}:${before.status}->${after.status}`),
    });
    monitor.update("ns/v", [backend("a")], { healthCheckInterval: "20ms", unhealthyThreshold: 3 }, none);
    await until(() => monitor!.snapshot("ns/v")?.[0]?.status === "ready");
    healthy = false;
    await until(() => monitor!.snapshot("ns/v")?.[0]?.consecutiveFailures === 2);
    assert.equal(monitor.snapshot("ns/v")?.[0]?.status, "ready");
    await until(() => monitor!.snapshot("ns/v")?.[0]?.status === "unavailable");
    healthy = true;
    await until(() => monitor!.snapshot("ns/v")?.[0]?.status === "ready");
    assert.deepEqual(transitions, [
      "ns/v/a:unknown->ready",
      "ns/v/a:ready->unavailable",
      "ns/v/a:unavailable->ready",
    ]);
  });

  it("bounded concurrency across all servers", async () => {
    let inFlight = 0;
    let peak = 0;
    monitor = new HealthMonitor({
      concurrency: 3,
      startSpreadMs: 0,
      probe: async () => {
        peak = Math.max(peak, ++inFlight);
        await sleep(15);
        inFlight--;
        return ok();
      },
    });
    const many = Array.from({ length: 12 }, (_, i) => backend(`b${i}`));
    monitor.update("ns/one", many.slice(0, 6), { healthCheckInterval: "30ms" }, none);
    monitor.update("ns/two", many.slice(6), { healthCheckInterval: "30ms" }, none);
    await until(() =>
      [...monitor!.snapshot("ns/one")!, ...monitor!.snapshot("ns/two")!].every((h) => h.status === "ready"),
    );
    assert.equal(peak, 3);
  });

  it("spreads the first probes over min(interval, startSpreadMs)", async () => {
    const firstAt = new Map<string, number>();
    const t0 = Date.now();
    let r = 0;
    monitor = new HealthMonitor({
      startSpreadMs: 200,
      random: () => ((r = (r + 0.37) % 1), r),
      jitter: 0,
      probe: async (t: ProbeTarget) => {
        if (!firstAt.has(t.name)) firstAt.set(t.name, Date.now() - t0);
        return ok();
      },
    });
    monitor.update(
      "ns/v",
      Array.from({ length: 8 }, (_, i) => backend(`b${i}`)),
      { healthCheckInterval: "10s" },
      none,
    );
    await until(() => firstAt.size === 8);
    const times = [...firstAt.values()].sort((a, b) => a - b);
    assert.ok(times[times.length - 1]! - times[0]! >= 100, `spread ${JSON.stringify(times)}`);
    assert.ok(times[times.length - 1]! < 400);
  });

  it("update: removed backends stop, a new URL starts from unknown, auth is resolved per probe", async () => {
    const probed: string[] = [];
    monitor = new HealthMonitor({
      startSpreadMs: 0,
      probe: async (t: ProbeTarget, o: ProbeOptions) => {
        probed.push(`${t.name}@${t.url}:${o.auth?.type === "bearer" ? o.auth.token : o.auth?.type}`);
        return ok();
      },
    });
    const fh = { healthCheckInterval: "20ms" };
    monitor.update("ns/v", [backend("a"), backend("b")], fh, () => ({ type: "none" }));
    await until(() => monitor!.snapshot("ns/v")!.every((h) => h.status === "ready"));
    // Each resolution hands out a new token: a probe that reused an earlier resolution
    // (once per backend, once per update) would repeat one.
    let issued = 0;
    monitor.update("ns/v", [{ ...backend("a"), url: "http://y/a" }], fh, () => ({
      type: "bearer",
      token: `t${++issued}`,
    }));
    const snap = monitor.snapshot("ns/v")!;
    assert.deepEqual(
      snap.map((h) => [h.name, h.url, h.status]),
      [["a", "http://y/a", "unknown"]],
    );
    probed.length = 0;
    await until(() => probed.length >= 3);
    const seen = probed.slice();
    assert.ok(
      seen.every((p) => /^a@http:\/\/y\/a:t\d+$/.test(p)),
      seen.join(","),
    );
    assert.equal(new Set(seen).size, seen.length, `one resolution per probe: ${seen.join(",")}`);
    monitor.remove("ns/v");
    assert.equal(monitor.snapshot("ns/v"), undefined);
  });

  it("circuit breaker: opens, sends nothing while open, one trial when half-open, closes", async () => {
    let healthy = false;
    let calls = 0;
    const states: string[] = [];
    monitor = new HealthMonitor({
      startSpreadMs: 0,
      probe: async () => (calls++, healthy ? ok() : down),
      onTransition: (_k, _n, before, after) => {
        if (before.circuitBreakerState !== after.circuitBreakerState)
          states.push(after.circuitBreakerState ?? "-");
      },
    });
    monitor.update(
      "ns/v",
      [backend("a")],
      {
        healthCheckInterval: "10ms",
        unhealthyThreshold: 5,
        circuitBreaker: { enabled: true, failureThreshold: 2, timeout: "150ms" },
      },
      none,
    );
    await until(() => monitor!.snapshot("ns/v")![0]!.circuitBreakerState === "open");
    const h = monitor.snapshot("ns/v")![0]!;
    assert.equal(h.status, "unavailable", "an open circuit is unavailable before unhealthyThreshold");
    assert.match(h.message, /circuit open after 2 consecutive failures/);
    const atOpen = calls;
    await sleep(100);
    assert.equal(calls, atOpen, "nothing is sent while open");
    healthy = true;
    await until(() => monitor!.snapshot("ns/v")![0]!.circuitBreakerState === "closed");
    assert.equal(monitor.snapshot("ns/v")![0]!.status, "ready");
    assert.deepEqual(states, ["open", "half-open", "closed"]);
  });

  it("stop() aborts probes in flight and schedules nothing more", async () => {
    let calls = 0;
    let aborted = false;
    monitor = new HealthMonitor({
      startSpreadMs: 0,
      probe: (_t, o) =>
        new Promise((resolve) => {
          calls++;
          o.signal?.addEventListener("abort", () => ((aborted = true), resolve(down)));
        }),
    });
    monitor.update("ns/v", [backend("a")], { healthCheckInterval: "10ms" }, none);
    await until(() => calls === 1);
    await monitor.stop();
    assert.ok(aborted);
    await sleep(40);
    assert.equal(calls, 1);
  });

  it("seeds from the previous status after a restart (no flip to unknown)", () => {
    monitor = new HealthMonitor({ startSpreadMs: 10_000, probe: async () => ok() });
    monitor.update("ns/v", [backend("a")], undefined, none, [
      {
        name: "a",
        url: "http://x/a",
        status: "unavailable",
        consecutiveFailures: 4,
        message: "connection refused",
      },
    ]);
    const h = monitor.snapshot("ns/v")![0]!;
    assert.equal(h.status, "unavailable");
    assert.equal(h.consecutiveFailures, 4);
  });

  it("re-lists only for another server, after a failure, or when the listing is older than relistIntervalMs", async () => {
    // The real probe's contract: the lists are skipped when the handshake matches listedFingerprint.
    const server = { fingerprint: "v1", tools: 2, up: true };
    const asked: (string | undefined)[] = [];
    let transitions = 0;
    const start = (relistIntervalMs: number): HealthMonitor =>
      new HealthMonitor({
        startSpreadMs: 0,
        relistIntervalMs,
        onTransition: () => void transitions++,
        probe: async (_t: ProbeTarget, o: ProbeOptions) => {
          asked.push(o.listedFingerprint);
          if (!server.up) return down;
          const listed = o.listedFingerprint !== server.fingerprint;
          return listed
            ? { ...ok(server.tools), fingerprint: server.fingerprint }
            : { ...ok(0), capabilitiesKnown: false, toolNames: [], fingerprint: server.fingerprint };
        },
      });
    monitor = start(60_000);
    monitor.update("ns/v", [backend("a")], { healthCheckInterval: "10ms", unhealthyThreshold: 1 }, none);
    await until(() => asked.length >= 5);
    assert.equal(asked[0], undefined);
    assert.deepEqual(asked.slice(1, 5), ["v1", "v1", "v1", "v1"]);
    assert.equal(monitor.snapshot("ns/v")?.[0]?.counts?.tools, 2, "unlisted probes keep the last counts");
    assert.deepEqual(monitor.snapshot("ns/v")?.[0]?.toolNames, ["t0", "t1"]);
    assert.equal(transitions, 1, "unknown → ready only");

    server.fingerprint = "v2"; // a rollout: another server behind the same URL
    server.tools = 3;
    await until(() => monitor!.snapshot("ns/v")?.[0]?.counts?.tools === 3);

    server.up = false;
    await until(() => monitor!.snapshot("ns/v")?.[0]?.status === "unavailable");
    const before = asked.length;
    server.up = true;
    await until(() => monitor!.snapshot("ns/v")?.[0]?.status === "ready");
    assert.equal(
      asked.slice(before).find((f) => f !== undefined),
      undefined,
      "the recovering probe lists",
    );
    await monitor.stop();

    asked.length = 0;
    monitor = start(0);
    monitor.update("ns/w", [backend("b")], { healthCheckInterval: "10ms" }, none);
    await until(() => asked.length >= 3);
    assert.deepEqual(
      asked.slice(0, 3),
      [undefined, undefined, undefined],
      "relistIntervalMs 0: every probe lists",
    );
  });
});
