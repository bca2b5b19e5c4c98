// The local plane's Service proxy (localcluster/serviceproxy.ts): which endpoints count as
// ready (kube-proxy's choice: terminating ones only when none is ready), and where a new
// connection goes, with and without ClientIP session affinity.
import assert from "node:assert/strict";
import { pickEndpoint, readyEndpoints } from "../../localcluster/serviceproxy.js";

describe("service proxy: endpoints and affinity", () => {
  const a = { address: "10.245.1.2", port: 4483 };
  const b = { address: "10.245.1.3", port: 4483 };

  it("takes ready (or unset) endpoints of every slice, at the slice's port", () => {
    const slices = [
      {
        ports: [{ port: 4483 }],
        endpoints: [
          { addresses: [b.address], conditions: { ready: true } },
          { addresses: ["10.245.1.9"], conditions: { ready: false } },
        ],
      },
      { endpoints: [{ addresses: [a.address] }] },
    ];
    assert.deepEqual(readyEndpoints(slices, 4483), [a, b]);
  });

  it("without affinity, connections take the endpoints in turn", () => {
    const picks = [0, 1, 2].map((turn) => pickEndpoint([a, b], turn, 0, undefined));
    assert.deepEqual(
      picks.map((p) => p.endpoint),
      [a, b, a],
    );
    assert.ok(picks.every((p) => p.pin === undefined));
  });

  it("with ClientIP affinity, a client stays on its pod while it is ready and the pin fresh", () => {
    const first = pickEndpoint([a, b], 0, 1_000, { timeoutMs: 60_000, pinned: undefined });
    assert.deepEqual(first.endpoint, a);
    const again = pickEndpoint([a, b], 1, 2_000, { timeoutMs: 60_000, pinned: first.pin });
    assert.deepEqual(again.endpoint, a, "the turn would have chosen b");
    assert.equal(again.pin?.until, 62_000, "traffic renews the pin");
    // the pinned pod is gone (rolled): the next in turn, and the pin moves there
    const moved = pickEndpoint([b], 2, 3_000, { timeoutMs: 60_000, pinned: again.pin });
    assert.deepEqual(moved.endpoint, b);
    assert.equal(moved.pin?.address, b.address);
    // an expired pin no longer holds
    const expired = pickEndpoint([a, b], 1, 100_000, { timeoutMs: 60_000, pinned: first.pin });
    assert.deepEqual(expired.endpoint, b);
  });

  it("no ready endpoint: nothing to connect to", () => {
    assert.equal(pickEndpoint([], 0, 0, undefined).endpoint, undefined);
  });

  const ep = (address: string, conditions: Record<string, boolean>) => ({ addresses: [address], conditions });

  it("sends new connections to ready endpoints only, terminating ones left out", () => {
    const slices = [
      {
        ports: [{ port: 4483 }],
        endpoints: [
          ep("10.245.0.3", { ready: false, serving: true, terminating: true }),
          ep("10.245.0.2", { ready: true, serving: true, terminating: false }),
          ep("10.245.0.4", { ready: false, serving: false, terminating: false }),
        ],
      },
    ];
    assert.deepEqual(readyEndpoints(slices, 4483), [{ address: "10.245.0.2", port: 4483 }]);
  });

  it("falls back to endpoints still serving while they terminate when none is ready", () => {
    const slices = [
      {
        ports: [{ port: 4483 }],
        endpoints: [
          ep("10.245.0.3", { ready: false, serving: true, terminating: true }),
          ep("10.245.0.4", { ready: false, serving: false, terminating: false }),
        ],
      },
    ];
    assert.deepEqual(readyEndpoints(slices, 4483), [{ address: "10.245.0.3", port: 4483 }]);
    assert.deepEqual(readyEndpoints([{ endpoints: [ep("10.245.0.4", { ready: false })] }], 4483), []);
  });
});
