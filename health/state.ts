// Pure health bookkeeping: the policy from spec.config.operational.failureHandling, one
// backend's health after a probe, what counts as a transition, and the phase summary.
import { parseDurationMs } from "../api/vmcpconfig.js";
import type { BreakerConfig, BreakerState, CircuitState } from "./breaker.js";
import type { ProbeCounts, ProbeResult, ProtocolEra } from "./probe.js";

export type BackendHealthStatus = "ready" | "degraded" | "unavailable" | "unauthenticated" | "unknown";

/** Routable: the vMCP sends traffic there. Degraded backends are slow but serve. */
export const ROUTABLE: readonly BackendHealthStatus[] = ["ready", "degraded", "unauthenticated"];
export const isRoutable = (s: BackendHealthStatus): boolean => ROUTABLE.includes(s);

/** spec.config.operational.failureHandling, as written (durations are Go strings). */
export interface FailureHandlingLike {
  healthCheckInterval?: string | undefined;
  healthCheckTimeout?: string | undefined;
  unhealthyThreshold?: number | undefined;
  partialFailureMode?: "fail" | "best_effort" | undefined;
  circuitBreaker?:
    | { enabled?: boolean | undefined; failureThreshold?: number | undefined; timeout?: string | undefined }
    | undefined;
}

export interface HealthPolicy {
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  degradedLatencyMs: number;
  /** Present when the circuit breaker is enabled. */
  breaker?: BreakerConfig;
}

export const DEFAULT_DEGRADED_LATENCY_MS = 5000;

function ms(value: string | undefined, fallback: number): number {
  if (!value) return fallback;
  const v = parseDurationMs(value);
  return v !== undefined && v > 0 ? v : fallback;
}

/**
 * ToolHive's defaults: 30s interval, 10s timeout, threshold 3, breaker off (5 failures,
 * 60s). The CRD has no degraded-latency field: ToolHive fixes it at 5s; here it is a
 * monitor option (default 5s), never above the timeout.
 */
export function policyFrom(
  fh: FailureHandlingLike | undefined,
  degradedLatencyMs = DEFAULT_DEGRADED_LATENCY_MS,
  defaultIntervalMs = 30_000,
): HealthPolicy {
  const intervalMs = ms(fh?.healthCheckInterval, defaultIntervalMs);
  // A backend is never probed twice at once: the next probe is scheduled after the
  // previous one ends, so a timeout above the interval only stretches the cadence.
  const timeoutMs = ms(fh?.healthCheckTimeout, 10_000);
  const cb = fh?.circuitBreaker;
  return {
    intervalMs,
    timeoutMs,
    // 0 means unset, as in vmcp (which fills in its default).
    unhealthyThreshold: Math.max(1, fh?.unhealthyThreshold || 3),
    degradedLatencyMs: Math.min(degradedLatencyMs, timeoutMs),
    ...(cb?.enabled
      ? {
          breaker: {
            failureThreshold: Math.max(1, cb.failureThreshold ?? 5),
            openTimeoutMs: ms(cb.timeout, 60_000),
          },
        }
      : {}),
  };
}

/**
 * What status.discoveredBackends[] reports of one backend's health (timestamps RFC 3339);
 * controller/status.ts BackendStatus is this plus what the builder configured.
 */
export interface BackendHealthReport {
  status: BackendHealthStatus;
  lastHealthCheck?: string;
  consecutiveFailures: number;
  /** Only when the circuit breaker is enabled. */
  circuitBreakerState?: CircuitState;
  circuitLastChanged?: string;
  message: string;
}

/** One backend's health as the monitor keeps it. */
export interface BackendHealth extends BackendHealthReport {
  name: string;
  url: string;
  /** Last known capability counts (kept while a backend is unreachable or needs auth). */
  counts?: ProbeCounts;
  toolNames?: string[];
  latencyMs?: number;
  protocolVersion?: string;
  era?: ProtocolEra;
}

export function unknownHealth(name: string, url: string): BackendHealth {
  return { name, url, status: "unknown", consecutiveFailures: 0, message: "not checked yet" };
}

const iso = (t: number): string => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");

/** The health with the breaker's state (or without circuit fields when the breaker is off). */
export function withBreaker(h: BackendHealth, breaker: BreakerState | undefined): BackendHealth {
  if (!breaker) {
    const { circuitBreakerState: _s, circuitLastChanged: _c, ...rest } = h;
    return rest;
  }
  return { ...h, circuitBreakerState: breaker.state, circuitLastChanged: iso(breaker.lastChanged) };
}

/**
 * Health after one probe. Successes (ready, degraded, unauthenticated) apply at once;
 * a failure changes the status only at the `unhealthyThreshold`-th consecutive one (or
 * when the breaker opens: the vMCP stops routing there).
 */
export function afterProbe(
  prev: BackendHealth,
  result: ProbeResult,
  policy: HealthPolicy,
  now: number,
  breaker: BreakerState | undefined,
): BackendHealth {
  const base = { ...prev, lastHealthCheck: iso(now), latencyMs: result.latencyMs };
  if (result.status !== "unavailable") {
    const known = result.capabilitiesKnown
      ? { counts: result.counts, toolNames: result.toolNames }
      : { counts: prev.counts, toolNames: prev.toolNames };
    const next: BackendHealth = {
      ...base,
      ...known,
      status: result.status,
      consecutiveFailures: 0,
      message: result.message,
      ...(result.protocolVersion ? { protocolVersion: result.protocolVersion } : {}),
      ...(result.era ? { era: result.era } : {}),
    };
    if (!known.counts) delete next.counts;
    if (!known.toolNames) delete next.toolNames;
    return withBreaker(next, breaker);
  }
  const failures = prev.consecutiveFailures + 1;
  const open = breaker?.state === "open";
  const down = failures >= policy.unhealthyThreshold || open;
  const message = down
    ? open
      ? `${result.message}; circuit open after ${breaker.failures} consecutive failures`
      : result.message
    : `${result.message} (failure ${failures} of ${policy.unhealthyThreshold} before unavailable)`;
  return withBreaker(
    { ...base, status: down ? "unavailable" : prev.status, consecutiveFailures: failures, message },
    breaker,
  );
}

/** A probe refused by an open breaker: nothing was sent. */
export function whileOpen(prev: BackendHealth, breaker: BreakerState, retryInMs: number): BackendHealth {
  return withBreaker(
    {
      ...prev,
      status: "unavailable",
      message: `circuit open: not probed; next trial in ${Math.ceil(retryInMs / 1000)}s`,
    },
    breaker,
  );
}

/** Worth a reconcile: status, circuit state, or what the backend advertises changed. */
export function isTransition(before: BackendHealth, after: BackendHealth): boolean {
  return (
    before.status !== after.status ||
    before.circuitBreakerState !== after.circuitBreakerState ||
    before.counts?.tools !== after.counts?.tools ||
    before.counts?.resources !== after.counts?.resources ||
    before.counts?.prompts !== after.counts?.prompts ||
    (before.toolNames ?? []).join("\n") !== (after.toolNames ?? []).join("\n")
  );
}

export interface HealthSummary {
  phase: "Pending" | "Ready" | "Degraded" | "Failed";
  /** Routable backends (ready, degraded, unauthenticated). */
  backendCount: number;
  /** Reason for the Ready condition (ToolHive's names). */
  reason: "AllBackendsRoutable" | "SomeBackendsUnhealthy" | "NoRoutableBackends" | "BackendsPending";
  message: string;
}

/**
 * Phase from backend health: all routable → Ready (a degraded one makes it Degraded);
 * some not → Degraded; none → Failed (partialFailureMode fail) or Degraded (best_effort).
 * Backends not checked yet are left out, unless no backend was checked (Pending).
 */
export function summarize(
  backends: readonly Pick<BackendHealth, "status">[],
  partialFailureMode: "fail" | "best_effort" = "fail",
): HealthSummary {
  const count = (s: BackendHealthStatus) => backends.filter((b) => b.status === s).length;
  const routable = backends.filter((b) => isRoutable(b.status)).length;
  const unknown = count("unknown");
  const checked = backends.length - unknown;
  const detail = `${routable}/${backends.length} routable (${count("ready")} ready, ${count("degraded")} degraded, ${count("unauthenticated")} unauthenticated, ${count("unavailable")} unavailable, ${unknown} unknown)`;
  if (!backends.length)
    return { phase: "Ready", backendCount: 0, reason: "AllBackendsRoutable", message: "no backends" };
  if (!checked) return { phase: "Pending", backendCount: 0, reason: "BackendsPending", message: detail };
  if (!routable)
    return {
      phase: partialFailureMode === "best_effort" ? "Degraded" : "Failed",
      backendCount: 0,
      reason: "NoRoutableBackends",
      message: detail,
    };
  if (routable === checked && !count("degraded"))
    return { phase: "Ready", backendCount: routable, reason: "AllBackendsRoutable", message: detail };
  return { phase: "Degraded", backendCount: routable, reason: "SomeBackendsUnhealthy", message: detail };
}
