// redirectStep: which redirects a probe follows (same origin, request kept) and which it
// reports instead.
import assert from "node:assert/strict";
import { redirectStep } from "../../health/wire.js";

const from = new URL("https://mcp.team-a.svc:8443/mcp");

describe("probe redirect policy (redirectStep)", () => {
  it("passes every non-redirect status through", () => {
    for (const s of [200, 202, 304, 401, 404, 500])
      assert.deepEqual(redirectStep(from, "POST", s, null), { kind: "response" });
  });

  it("follows 307/308 within the origin, and 301/302/303 for a GET", () => {
    for (const s of [307, 308]) {
      const step = redirectStep(from, "POST", s, "/v2/mcp");
      assert.equal(step.kind, "follow");
      assert.equal(step.kind === "follow" && step.url.href, "https://mcp.team-a.svc:8443/v2/mcp");
    }
    assert.equal(redirectStep(from, "GET", 302, "/sse").kind, "follow");
  });

  it("refuses another origin: host, port or scheme (https → http too)", () => {
    for (const location of [
      "https://evil.example/mcp",
      "https://mcp.team-a.svc:9443/mcp",
      "http://mcp.team-a.svc:8443/mcp",
      "//169.254.169.254/latest/meta-data",
    ]) {
      const step = redirectStep(from, "POST", 307, location);
      assert.equal(step.kind, "refuse", location);
      assert.doesNotMatch(step.kind === "refuse" ? step.reason : "", /meta-data|\/mcp(\s|$|\?)/);
    }
  });

  it("refuses a 301/302/303 of a POST (it would become a GET) and a missing Location", () => {
    assert.equal(redirectStep(from, "POST", 302, "/other").kind, "refuse");
    assert.equal(redirectStep(from, "POST", 303, "/other").kind, "refuse");
    assert.equal(redirectStep(from, "GET", 302, null).kind, "refuse");
  });
});
