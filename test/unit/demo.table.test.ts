// The demo's live table says what a person needs to read at a glance.
import assert from "node:assert/strict";
import type { VirtualMCPServer } from "../../api/index.js";
import { table } from "../../cli/demo.js";

describe("vmcpctl demo table", () => {
  it("labels a backend without outgoing auth 'none', not 'unauthenticated' (a health status)", () => {
    const v = {
      metadata: { name: "demo", namespace: "ns" },
      status: {
        discoveredBackends: [
          { name: "wiki", status: "ready", authType: "unauthenticated", url: "http://a" },
          { name: "tracker", status: "unauthenticated", authType: "header_injection", url: "http://b" },
        ],
      },
    } as unknown as VirtualMCPServer;
    const rows = table(v, 0)
      .split("\n")
      .filter((line) => /^ {2}(wiki|tracker) /.test(line))
      .map((line) => line.trim().split(/\s+/));
    assert.deepEqual(rows, [
      ["wiki", "ready", "-", "none", "http://a"],
      ["tracker", "unauthenticated", "-", "header_injection", "http://b"],
    ]);
  });
});
