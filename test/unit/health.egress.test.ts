// Where probes may go (health/egress.ts), which credentials may go where
// (program/outgoingauth.ts, the allowed-hosts annotation), and what a failed probe may say
// (classifyFailure: our words, never the backend's).
import assert from "node:assert/strict";
import { addressClass, egressRefusal, STRICT_EGRESS } from "../../health/egress.js";
import { classifyFailure } from "../../health/probe.js";
import type { AnyObject } from "../../program/inputs.js";
import { ALLOWED_HOSTS_ANNOTATION, ALLOW_HTTP_TOKEN_URL_ANNOTATION } from "../../program/outgoingauth.js";
import { buildFor, example } from "./helpers.js";

const u = (s: string): URL => new URL(s);

describe("probe egress policy", () => {
  it("classifies loopback, link-local, metadata and unspecified addresses (v4, v6, v4-mapped)", () => {
    assert.equal(addressClass("127.0.0.1"), "loopback");
    assert.equal(addressClass("127.8.9.10"), "loopback");
    assert.equal(addressClass("::1"), "loopback");
    assert.equal(addressClass("::ffff:127.0.0.1"), "loopback");
    assert.equal(addressClass("169.254.169.254"), "metadata");
    assert.equal(addressClass("::ffff:169.254.169.254"), "metadata");
    assert.equal(addressClass("fd00:ec2::254"), "metadata");
    assert.equal(addressClass("100.100.100.200"), "metadata");
    assert.equal(addressClass("169.254.10.1"), "link-local");
    assert.equal(addressClass("fe80::1"), "link-local");
    assert.equal(addressClass("0.0.0.0"), "unspecified");
    assert.equal(addressClass("10.0.0.7"), "other");
    assert.equal(addressClass("2001:db8::1"), "other");
  });

  it("never probes metadata or link-local addresses, even with loopback allowed", () => {
    const open = { allowLoopback: true };
    assert.match(egressRefusal(u("http://metadata.internal/"), ["169.254.169.254"], open) ?? "", /metadata/);
    assert.match(egressRefusal(u("http://x/"), ["10.1.1.1", "fe80::2"], open) ?? "", /link-local/);
  });

  it("refuses loopback unless allowed, and the API server by address+port or by its in-cluster name", () => {
    assert.match(
      egressRefusal(u("http://127.0.0.1:8080/mcp"), ["127.0.0.1"], STRICT_EGRESS) ?? "",
      /loopback/,
    );
    assert.equal(
      egressRefusal(u("http://127.0.0.1:8080/mcp"), ["127.0.0.1"], { allowLoopback: true }),
      undefined,
    );
    const policy = { allowLoopback: true, apiServer: "https://127.0.0.1:6443" };
    assert.match(egressRefusal(u("https://127.0.0.1:6443/api"), ["127.0.0.1"], policy) ?? "", /API server/);
    assert.equal(
      egressRefusal(u("http://127.0.0.1:8080/mcp"), ["127.0.0.1"], policy),
      undefined,
      "other port",
    );
    const inCluster = { allowLoopback: false, apiServer: "https://10.96.0.1:443" };
    assert.match(
      egressRefusal(u("https://kubernetes.default.svc/api"), ["10.96.0.1"], inCluster) ?? "",
      /API server/,
    );
    assert.match(
      egressRefusal(u("https://kubernetes.default.svc.cluster.local/api"), ["10.96.0.1"], inCluster) ?? "",
      /API server/,
    );
    assert.match(egressRefusal(u("https://api.alias/"), ["10.96.0.1"], inCluster) ?? "", /API server/);
    assert.equal(egressRefusal(u("https://mcp.team-a.svc:8080/mcp"), ["10.96.3.4"], inCluster), undefined);
  });
});

describe("allowed-hosts annotation of an MCPExternalAuthConfig", () => {
  const withAllowed = (name: string, hosts: string) =>
    example("external-auth").map((o) =>
      o.kind === "MCPExternalAuthConfig" && o.metadata?.name === name
        ? { ...o, metadata: { ...o.metadata, annotations: { [ALLOWED_HOSTS_ANNOTATION]: hosts } } }
        : o,
    );

  it("leaves the credential's backend out, with a problem naming the config, the host and the rule", () => {
    const b = buildFor(withAllowed("search-api-key", "api.search.example.com"), "saas-gateway");
    assert.ok(b.auth.excluded.has("search"));
    const problem = b.auth.problems.find((p) => p.scope === "search");
    assert.equal(problem?.reason, "AuthHostNotAllowed");
    assert.match(
      problem?.message ?? "",
      /search-api-key allows its credential only to api\.search\.example\.com/,
    );
    assert.match(problem?.message ?? "", /search\.example\.com/);
    assert.ok(!b.desired?.configYaml.includes("search.example.com/mcp"), "the vMCP does not get it either");
  });

  it("checks the token endpoint of a token exchange too, and accepts *.suffix patterns", () => {
    const idpOutside = buildFor(withAllowed("jira-token-exchange", "*.jira.example.com"), "saas-gateway");
    assert.equal(idpOutside.auth.problems.find((p) => p.scope === "jira")?.reason, "AuthHostNotAllowed");
    const both = buildFor(
      withAllowed("jira-token-exchange", "*.jira.example.com, idp.example.com"),
      "saas-gateway",
    );
    assert.ok(!both.auth.excluded.has("jira"), JSON.stringify(both.auth.problems));
  });
});

describe("token exchange over plain http", () => {
  const withTokenUrl = (tokenUrl: string, annotations?: Record<string, string>): AnyObject[] =>
    example("external-auth").map((o) =>
      o.kind === "MCPExternalAuthConfig" && o.metadata?.name === "jira-token-exchange"
        ? {
            ...o,
            metadata: { ...o.metadata, ...(annotations ? { annotations } : {}) },
            spec: {
              ...o.spec,
              tokenExchange: { ...(o.spec as { tokenExchange: object }).tokenExchange, tokenUrl },
            },
          }
        : o,
    ) as AnyObject[];

  it("leaves the backend out unless the token endpoint is https or loopback", () => {
    const clear = buildFor(withTokenUrl("http://idp.example.com/oauth2/token"), "saas-gateway");
    assert.ok(clear.auth.excluded.has("jira"));
    const problem = clear.auth.problems.find((p) => p.scope === "jira");
    assert.equal(problem?.reason, "AuthInsecureTokenUrl");
    assert.match(problem?.message ?? "", /plain http.*client secret.*allow-http-token-url/);
    assert.ok(
      !clear.desired?.configYaml.includes("http://idp.example.com"),
      "the vMCP does not get it either",
    );
    for (const ok of [
      "https://idp.example.com/oauth2/token",
      "http://127.0.0.1:9000/token",
      "http://localhost/t",
    ])
      assert.ok(!buildFor(withTokenUrl(ok), "saas-gateway").auth.excluded.has("jira"), ok);
  });

  it("accepts plain http when the MCPExternalAuthConfig says so", () => {
    const allowed = buildFor(
      withTokenUrl("http://idp.auth.svc:8080/token", { [ALLOW_HTTP_TOKEN_URL_ANNOTATION]: "true" }),
      "saas-gateway",
    );
    assert.ok(!allowed.auth.excluded.has("jira"), JSON.stringify(allowed.auth.problems));
  });
});

describe("classifyFailure", () => {
  const ctx = { authConfigured: false, authLabel: "none", timeoutMs: 100, cancelled: false };

  it("keeps the backend's own error text out of the message", () => {
    const sdkError = Object.assign(new Error("Error POSTing (HTTP 500): <html>evil text</html>"), {
      code: -32603,
    });
    const f = classifyFailure(sdkError, {}, ctx);
    assert.equal(f.message, "MCP error -32603");
    assert.equal(
      classifyFailure(new Error("anything the backend said"), {}, ctx).message,
      "the backend did not speak MCP as expected",
    );
  });

  it("puts a refused destination first, then auth, deadline, HTTP status and network codes", () => {
    assert.match(
      classifyFailure(new Error(), { refusedEgress: "x is link-local", authStatus: 401 }, ctx).message,
      /^not probed: x is link-local/,
    );
    assert.equal(
      classifyFailure(new Error(), { authStatus: 401 }, { ...ctx, authConfigured: true }).status,
      "unauthenticated",
    );
    assert.equal(classifyFailure(new Error(), { aborted: true }, ctx).message, "no answer within 100 ms");
    assert.equal(classifyFailure(new Error(), { errorStatus: 502 }, ctx).httpStatus, 502);
    assert.equal(
      classifyFailure(Object.assign(new Error(), { code: "ECONNREFUSED" }), {}, ctx).message,
      "connection refused",
    );
  });
});
