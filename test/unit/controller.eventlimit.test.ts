// The transition Events' rate limit: one per key per window, the held-back ones counted.
import assert from "node:assert/strict";
import { EventLimiter } from "../../controller/eventlimit.js";

describe("controller event limiter", () => {
  it("lets one Event per key through per window and counts the ones held back", () => {
    let now = 0;
    const limiter = new EventLimiter(60_000, () => now);
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: true, suppressed: 0 });
    assert.deepEqual(
      limiter.take("ns/gw|BackendUnavailable|b"),
      { allowed: true, suppressed: 0 },
      "per backend",
    );
    now = 30_000;
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: false });
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: false });
    now = 60_000;
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: true, suppressed: 2 });
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: false });
    limiter.forget("ns/gw|");
    assert.deepEqual(limiter.take("ns/gw|BackendUnavailable|a"), { allowed: true, suppressed: 0 });
  });
});
