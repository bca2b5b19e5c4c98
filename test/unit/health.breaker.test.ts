import assert from "node:assert/strict";
import {
  admit,
  initialBreaker,
  record,
  type BreakerConfig,
  type BreakerState,
} from "../../health/breaker.js";

const CFG: BreakerConfig = { failureThreshold: 3, openTimeoutMs: 1000 };

/** Admit then record, as the monitor does. */
function step(s: BreakerState, ok: boolean, now: number): BreakerState {
  const a = admit(s, CFG, now);
  assert.ok(a.allowed, `probe refused in state ${s.state}`);
  return record(a.next, CFG, ok, now);
}

describe("health circuit breaker", () => {
  it("stays closed below the failure threshold; a success resets the count", () => {
    let s = initialBreaker(0);
    s = step(s, false, 1);
    s = step(s, false, 2);
    assert.equal(s.state, "closed");
    assert.equal(s.failures, 2);
    s = step(s, true, 3);
    assert.equal(s.failures, 0);
    assert.equal(s.lastChanged, 0, "no state change, no timestamp change");
  });

  it("opens after failureThreshold consecutive failures and refuses probes until the timeout", () => {
    let s = initialBreaker(0);
    for (let t = 1; t <= 3; t++) s = step(s, false, t);
    assert.equal(s.state, "open");
    assert.equal(s.lastChanged, 3);
    const refused = admit(s, CFG, 500);
    assert.equal(refused.allowed, false);
    assert.equal(refused.retryInMs, 503);
    assert.equal(refused.next, s);
  });

  it("half-open admits exactly one trial; success closes", () => {
    let s = initialBreaker(0);
    for (let t = 1; t <= 3; t++) s = step(s, false, t);
    const trial = admit(s, CFG, 1003);
    assert.ok(trial.allowed);
    assert.equal(trial.next.state, "half-open");
    assert.equal(trial.next.lastChanged, 1003);
    assert.equal(admit(trial.next, CFG, 1004).allowed, false, "a second probe waits for the trial");
    const closed = record(trial.next, CFG, true, 1010);
    assert.deepEqual(closed, { state: "closed", failures: 0, lastChanged: 1010, trialInFlight: false });
  });

  it("a failed trial re-opens and restarts the timer", () => {
    let s = initialBreaker(0);
    for (let t = 1; t <= 3; t++) s = step(s, false, t);
    const trial = admit(s, CFG, 2000);
    s = record(trial.next, CFG, false, 2001);
    assert.equal(s.state, "open");
    assert.equal(s.lastChanged, 2001);
    assert.equal(admit(s, CFG, 2500).allowed, false);
    assert.equal(admit(s, CFG, 3001).next.state, "half-open");
  });

  it("failureThreshold 1 opens on the first failure", () => {
    const s = record(initialBreaker(0), { failureThreshold: 1, openTimeoutMs: 10 }, false, 5);
    assert.equal(s.state, "open");
  });
});
