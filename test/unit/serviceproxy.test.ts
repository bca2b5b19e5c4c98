// Which endpoints the local plane's Service proxy sends a new connection to: kube-proxy's choice.
import assert from "node:assert/strict";
import { readyEndpoints } from "../../localcluster/serviceproxy.js";

describe("service proxy: endpoint choice", () => {
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
