// The health monitor: one schedule per discovered backend of each VirtualMCPServer.
//   - policy from spec.config.operational.failureHandling (interval, timeout, threshold,
//     circuit breaker), degraded latency from the monitor's options;
//   - first probes spread at random over min(interval, startSpreadMs): no storm after a
//     restart or when a big group appears; then every interval ± jitter, measured from
//     the previous probe's start (a slow probe does not push the schedule back);
//   - at most `concurrency` probes in flight over the whole process;
//   - auth is resolved just before each probe (a rotated Secret is used at once);
//   - tools/resources/prompts are re-listed when the handshake shows another server (version,
//     serverInfo, capabilities: a rollout), after any failure, and at least every
//     relistIntervalMs; the probes between are a handshake, or a ping of the session the
//     last probe left open (legacy streamable HTTP: one request instead of three); a kept
//     session is ended (DELETE) when its backend leaves the monitor, or the monitor stops;
//   - onTransition(vmcpKey, backend, before, after) when status, circuit state or the
//     backend's capabilities change: the controller enqueues the VirtualMCPServer, and its
//     status collector reads snapshot(vmcpKey). The monitor never writes status itself.
import { STRICT_EGRESS, type EgressPolicy } from "./egress.js";
import { admit, initialBreaker, record, type BreakerState } from "./breaker.js";
import type { ProbeAuth } from "./auth.js";
import {
  endSession as realEndSession,
  probe as realProbe,
  type KeptSession,
  type ProbeOptions,
  type ProbeResult,
  type ProbeTarget,
} from "./probe.js";
import {
  afterProbe,
  isTransition,
  policyFrom,
  unknownHealth,
  whileOpen,
  withBreaker,
  DEFAULT_DEGRADED_LATENCY_MS,
  type BackendHealth,
  type BackendHealthStatus,
  type FailureHandlingLike,
  type HealthPolicy,
} from "./state.js";
import { TokenCache } from "./token.js";

export interface MonitoredBackend extends ProbeTarget {
  /** For messages only. */
  authType?: string | undefined;
}

/** Resolves a backend's outgoing auth (Secret values) right before each probe. */
export type AuthFor = (backend: MonitoredBackend) => ProbeAuth | Promise<ProbeAuth>;

export type TransitionHandler = (
  vmcpKey: string,
  backendName: string,
  before: BackendHealth,
  after: BackendHealth,
) => void;

/** A status the CR already carries (after a controller restart): the starting point. */
export interface PreviousHealth {
  name: string;
  url?: string | undefined;
  status?: string | undefined;
  message?: string | undefined;
  consecutiveFailures?: number | undefined;
  lastHealthCheck?: string | undefined;
}

export interface MonitorOptions {
  onTransition?: TransitionHandler;
  /** Probes in flight at once, process-wide (default 32). */
  concurrency?: number;
  /** ± fraction of the interval (default 0.1). */
  jitter?: number;
  /** First probes spread over min(interval, this) (default 10 s). */
  startSpreadMs?: number;
  /** Where probes may go (default: strict — no loopback, link-local or metadata address). */
  egress?: EgressPolicy;
  /** Probe interval where failureHandling sets none (default 30 s, ToolHive's). */
  defaultIntervalMs?: number;
  /** Slower than this ⇒ degraded (default 5 s, capped at the timeout). */
  degradedLatencyMs?: number;
  /**
   * A backend whose handshake shows the same server is re-listed at least this often
   * (default 5 min; 0 = list at every probe).
   */
  relistIntervalMs?: number;
  /** Injected for tests. */
  probe?: (target: ProbeTarget, opts: ProbeOptions) => Promise<ProbeResult>;
  /** Ends a session a probe left open (tests inject a recorder). */
  endSession?: typeof realEndSession;
  now?: () => number;
  random?: () => number;
  tokens?: TokenCache;
  /** Called when a probe or handler throws (they should not). */
  onError?: (vmcpKey: string, backendName: string, error: unknown) => void;
}

interface Entry {
  vmcpKey: string;
  backend: MonitoredBackend;
  authFor: AuthFor;
  policy: HealthPolicy;
  health: BackendHealth;
  breaker: BreakerState | undefined;
  timer: NodeJS.Timeout | undefined;
  inFlight: Promise<void> | undefined;
  abort: AbortController | undefined;
  removed: boolean;
  /** The last probe that listed: its handshake's fingerprint, and when. */
  listing: { fingerprint: string; at: number } | undefined;
  /** The session the last probe left open, pinged by the next. */
  session: KeptSession | undefined;
}

export const DEFAULT_RELIST_INTERVAL_MS = 5 * 60_000;

const sameTarget = (a: ProbeTarget, b: ProbeTarget): boolean =>
  a.url === b.url && a.transport === b.transport;
const STATUSES: readonly string[] = ["ready", "degraded", "unavailable", "unauthenticated", "unknown"];

export class HealthMonitor {
  private readonly servers = new Map<string, Map<string, Entry>>();
  /** Session ends (and probes of dropped entries) still running: stop() waits for them. */
  private readonly ending = new Set<Promise<void>>();
  private readonly waiters: (() => void)[] = [];
  private running = 0;
  private stopped = false;
  private readonly concurrency: number;
  private readonly jitter: number;
  private readonly startSpreadMs: number;
  private readonly degradedLatencyMs: number;
  private readonly relistIntervalMs: number;
  private readonly probeFn: NonNullable<MonitorOptions["probe"]>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly tokens: TokenCache;

  constructor(private readonly opts: MonitorOptions = {}) {
    this.concurrency = Math.max(1, opts.concurrency ?? 32);
    this.jitter = Math.min(0.5, Math.max(0, opts.jitter ?? 0.1));
    this.startSpreadMs = opts.startSpreadMs ?? 10_000;
    this.degradedLatencyMs = opts.degradedLatencyMs ?? DEFAULT_DEGRADED_LATENCY_MS;
    this.relistIntervalMs = opts.relistIntervalMs ?? DEFAULT_RELIST_INTERVAL_MS;
    this.probeFn = opts.probe ?? realProbe;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.tokens = opts.tokens ?? new TokenCache(this.now);
  }

  /**
   * The backends of one VirtualMCPServer (`namespace/name`), after each reconcile.
   * New backends are scheduled, gone ones cancelled, a changed URL/transport starts over
   * from `unknown`; the policy and auth resolver are replaced.
   */
  update(
    vmcpKey: string,
    backends: readonly MonitoredBackend[],
    failureHandling: FailureHandlingLike | undefined,
    authFor: AuthFor,
    previous?: readonly PreviousHealth[],
  ): void {
    if (this.stopped) return;
    const policy = policyFrom(failureHandling, this.degradedLatencyMs, this.opts.defaultIntervalMs);
    const entries = this.servers.get(vmcpKey) ?? new Map<string, Entry>();
    this.servers.set(vmcpKey, entries);
    const wanted = new Map(backends.map((b) => [b.name, b] as const));
    for (const [name, e] of entries) {
      const b = wanted.get(name);
      if (!b || !sameTarget(b, e.backend)) this.drop(entries, name);
    }
    for (const b of backends) {
      const e = entries.get(b.name);
      if (e) {
        const reschedule = e.policy.intervalMs !== policy.intervalMs;
        e.backend = b;
        e.authFor = authFor;
        if (!policy.breaker) e.breaker = undefined;
        else if (!e.breaker) e.breaker = initialBreaker(this.now());
        e.health = withBreaker(e.health, e.breaker);
        e.policy = policy;
        if (reschedule && !e.inFlight) this.schedule(e, this.spread(policy));
        continue;
      }
      const entry: Entry = {
        vmcpKey,
        backend: b,
        authFor,
        policy,
        health: this.seed(
          b,
          previous?.find((p) => p.name === b.name),
        ),
        breaker: policy.breaker ? initialBreaker(this.now()) : undefined,
        timer: undefined,
        inFlight: undefined,
        abort: undefined,
        removed: false,
        listing: undefined,
        session: undefined,
      };
      if (entry.breaker) entry.health = withBreaker(entry.health, entry.breaker);
      entries.set(b.name, entry);
      this.schedule(entry, this.spread(policy));
    }
    if (!entries.size) this.servers.delete(vmcpKey);
  }

  /** The VirtualMCPServer is gone: stop probing its backends. */
  remove(vmcpKey: string): void {
    const entries = this.servers.get(vmcpKey);
    if (!entries) return;
    for (const name of [...entries.keys()]) this.drop(entries, name);
    this.servers.delete(vmcpKey);
  }

  /** Per-backend health, sorted by name; undefined when the key is not monitored. */
  snapshot(vmcpKey: string): BackendHealth[] | undefined {
    const entries = this.servers.get(vmcpKey);
    if (!entries) return undefined;
    return [...entries.values()]
      .map((e) => structuredClone(e.health))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Keys currently monitored. */
  keys(): string[] {
    return [...this.servers.keys()].sort();
  }

  /** Stops every schedule, aborts probes in flight, ends the kept sessions, and waits for all. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const entries of this.servers.values())
      for (const name of [...entries.keys()]) this.drop(entries, name);
    this.servers.clear();
    for (const w of this.waiters.splice(0)) w();
    await Promise.allSettled([...this.ending]);
  }

  // ---- internals ----------------------------------------------------------------------

  private seed(b: MonitoredBackend, prev: PreviousHealth | undefined): BackendHealth {
    const h = unknownHealth(b.name, b.url);
    if (!prev || (prev.url && prev.url !== b.url) || !prev.status || !STATUSES.includes(prev.status))
      return h;
    return {
      ...h,
      status: prev.status as BackendHealthStatus,
      consecutiveFailures: prev.consecutiveFailures ?? 0,
      message: prev.message ?? "carried over from the last status",
      ...(prev.lastHealthCheck ? { lastHealthCheck: prev.lastHealthCheck } : {}),
    };
  }

  private drop(entries: Map<string, Entry>, name: string): void {
    const e = entries.get(name);
    if (!e) return;
    e.removed = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = undefined;
    e.abort?.abort();
    entries.delete(name);
    // A probe in flight ends its own session (run); an idle entry's is ended here.
    if (e.inFlight) this.track(e.inFlight);
    else this.end(e, e.session);
  }

  /** Ends a kept session in the background; stop() waits for every one. */
  private end(e: Entry, session: KeptSession | undefined): void {
    e.session = undefined;
    if (!session) return;
    const endFn = this.opts.endSession ?? realEndSession;
    this.track(
      (async () => {
        const auth = await e.authFor(e.backend);
        await endFn(e.backend, session, {
          auth,
          tokens: this.tokens,
          egress: this.opts.egress ?? STRICT_EGRESS,
        });
      })(),
    );
  }

  private track(work: Promise<unknown>): void {
    const p = work.then(
      () => undefined,
      () => undefined,
    );
    this.ending.add(p);
    void p.finally(() => this.ending.delete(p));
  }

  private spread(policy: HealthPolicy): number {
    return this.random() * Math.min(policy.intervalMs, this.startSpreadMs);
  }

  private nextDelay(policy: HealthPolicy, elapsed: number): number {
    const j = 1 + this.jitter * (2 * this.random() - 1);
    return Math.max(0, policy.intervalMs * j - elapsed);
  }

  private schedule(e: Entry, delayMs: number): void {
    if (e.removed || this.stopped) return;
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.inFlight = this.run(e).finally(() => {
        e.inFlight = undefined;
      });
    }, delayMs);
    e.timer.unref();
  }

  private async acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.running++;
  }

  private release(): void {
    this.running--;
    this.waiters.shift()?.();
  }

  private transition(e: Entry, next: BackendHealth): void {
    const before = e.health;
    e.health = next;
    if (e.removed || !isTransition(before, next)) return;
    try {
      this.opts.onTransition?.(e.vmcpKey, e.backend.name, structuredClone(before), structuredClone(next));
    } catch (err) {
      this.opts.onError?.(e.vmcpKey, e.backend.name, err);
    }
  }

  private async run(e: Entry): Promise<void> {
    const started = this.now();
    if (e.breaker && e.policy.breaker) {
      const a = admit(e.breaker, e.policy.breaker, started);
      if (!a.allowed) {
        e.breaker = a.next;
        if (e.breaker.state === "open") this.transition(e, whileOpen(e.health, e.breaker, a.retryInMs ?? 0));
        this.schedule(e, a.retryInMs ?? e.policy.intervalMs);
        return;
      }
      const was = e.breaker.state;
      e.breaker = a.next;
      if (was !== e.breaker.state) this.transition(e, withBreaker(e.health, e.breaker)); // half-open trial
    }
    await this.acquire();
    if (e.removed || this.stopped) {
      this.release();
      return;
    }
    const abort = new AbortController();
    e.abort = abort;
    let result: ProbeResult;
    // Skip the lists only while the last listing is fresh and the backend has stayed up since.
    const listed = e.listing;
    const fresh =
      listed !== undefined &&
      started - listed.at < this.relistIntervalMs &&
      (e.health.status === "ready" || e.health.status === "degraded");
    try {
      const auth = await e.authFor(e.backend);
      result = await this.probeFn(
        { name: e.backend.name, url: e.backend.url, transport: e.backend.transport },
        {
          timeoutMs: e.policy.timeoutMs,
          degradedLatencyMs: e.policy.degradedLatencyMs,
          auth,
          tokens: this.tokens,
          signal: abort.signal,
          egress: this.opts.egress ?? STRICT_EGRESS,
          ...(e.health.era ? { eraHint: e.health.era } : {}),
          ...(fresh ? { listedFingerprint: listed.fingerprint } : {}),
          keepSession: true,
          ...(e.session ? { session: e.session } : {}),
        },
      );
      // The probe pinged the kept session, or ended it and maybe left a new one.
      e.session = result.session;
    } catch (err) {
      this.opts.onError?.(e.vmcpKey, e.backend.name, err);
      result = {
        status: "unavailable",
        latencyMs: 0,
        counts: { tools: 0, resources: 0, prompts: 0 },
        capabilitiesKnown: false,
        toolNames: [],
        message: "probe could not run (auth resolution failed)",
      };
    } finally {
      e.abort = undefined;
      this.release();
    }
    if (e.removed || this.stopped) return this.end(e, e.session);
    const now = this.now();
    if (result.capabilitiesKnown && result.fingerprint)
      e.listing = { fingerprint: result.fingerprint, at: now };
    else if (result.status === "unavailable" || result.status === "unauthenticated") e.listing = undefined;
    if (e.breaker && e.policy.breaker)
      e.breaker = record(e.breaker, e.policy.breaker, result.status !== "unavailable", now);
    this.transition(e, afterProbe(e.health, result, e.policy, now, e.breaker));
    const open = e.breaker?.state === "open" && e.policy.breaker;
    this.schedule(e, open ? e.policy.breaker!.openTimeoutMs : this.nextDelay(e.policy, now - started));
  }
}
