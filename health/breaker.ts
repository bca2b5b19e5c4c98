// Per-backend circuit breaker: a pure state machine over an injected clock.
//
//   closed ──(failureThreshold consecutive failures)──▶ open
//   open ──(openTimeoutMs elapsed; the next admission is the trial)──▶ half-open
//   half-open ──(trial succeeds)──▶ closed
//   half-open ──(trial fails)──▶ open (timer restarts)
//
// While open, nothing is sent to the backend. Half-open admits exactly one trial probe;
// further admissions are refused until that trial reports.

export type CircuitState = "closed" | "open" | "half-open";

export interface BreakerConfig {
  failureThreshold: number;
  openTimeoutMs: number;
}

export interface BreakerState {
  state: CircuitState;
  /** Consecutive failures counted towards opening (closed state). */
  failures: number;
  /** When `state` last changed (ms since epoch, from the injected clock). */
  lastChanged: number;
  /** half-open: a trial is in flight. */
  trialInFlight: boolean;
}

export function initialBreaker(now: number): BreakerState {
  return { state: "closed", failures: 0, lastChanged: now, trialInFlight: false };
}

export interface Admission {
  allowed: boolean;
  next: BreakerState;
  /** ms until an open breaker lets a trial through (when refused because open). */
  retryInMs?: number;
}

/** May a probe go out now? Moves open → half-open once the timeout has elapsed. */
export function admit(s: BreakerState, cfg: BreakerConfig, now: number): Admission {
  switch (s.state) {
    case "closed":
      return { allowed: true, next: s };
    case "open": {
      const due = s.lastChanged + cfg.openTimeoutMs;
      if (now < due) return { allowed: false, next: s, retryInMs: due - now };
      return {
        allowed: true,
        next: { state: "half-open", failures: s.failures, lastChanged: now, trialInFlight: true },
      };
    }
    case "half-open":
      if (s.trialInFlight) return { allowed: false, next: s };
      return { allowed: true, next: { ...s, trialInFlight: true } };
  }
}

/** Record the outcome of an admitted probe. */
export function record(s: BreakerState, cfg: BreakerConfig, ok: boolean, now: number): BreakerState {
  switch (s.state) {
    case "closed": {
      if (ok) return s.failures === 0 ? s : { ...s, failures: 0 };
      const failures = s.failures + 1;
      if (failures >= cfg.failureThreshold)
        return { state: "open", failures, lastChanged: now, trialInFlight: false };
      return { ...s, failures };
    }
    case "half-open":
      return ok
        ? { state: "closed", failures: 0, lastChanged: now, trialInFlight: false }
        : { state: "open", failures: s.failures + 1, lastChanged: now, trialInFlight: false };
    case "open":
      // An outcome that arrives while open (a probe admitted before the breaker opened):
      // keep the breaker open, but count it.
      return ok ? s : { ...s, failures: s.failures + 1 };
  }
}
