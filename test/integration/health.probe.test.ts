// The MCP probe against real MCP servers on 127.0.0.1 (samples/mcpservers.ts).
import assert from "node:assert/strict";
import { probe, type ProbeOptions } from "../../health/probe.js";
import { TokenCache } from "../../health/token.js";
import {
  startMcpServer,
  startTokenServer,
  unusedPort,
  type McpTestServer,
} from "../../samples/mcpservers.js";

const OPTS: ProbeOptions = { timeoutMs: 2000, degradedLatencyMs: 1000 };

describe("health probe (real MCP servers on 127.0.0.1)", function () {
  this.timeout(20_000);
  const servers: McpTestServer[] = [];
  const start = async (...args: Parameters<typeof startMcpServer>): Promise<McpTestServer> => {
    const s = await startMcpServer(...args);
    servers.push(s);
    return s;
  };
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it("streamable HTTP: handshake, counts, protocol version, and the session is DELETEd", async () => {
    const s = await start({
      flavour: "streamable-http",
      spec: { tools: ["a", "b", "c"], resources: 2, prompts: 1 },
    });
    const r = await probe({ name: "b", url: s.url(), transport: "streamable-http" }, OPTS);
    assert.equal(r.status, "ready", r.message);
    assert.deepEqual(r.counts, { tools: 3, resources: 2, prompts: 1 });
    assert.deepEqual(r.toolNames, ["a", "b", "c"]);
    assert.equal(r.era, "legacy");
    assert.equal(r.protocolVersion, "2025-11-25");
    assert.equal(s.stats.initializes, 1);
    assert.equal(s.stats.deletes, 1);
    assert.equal(s.openSessions(), 0);
  });

  it("a kept session: one ping while the listing stands; other credentials or a 500 end it", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 2 } });
    const t = { name: "k", url: s.url(), transport: "streamable-http" as const };
    const auth = { type: "header" as const, headerName: "x-api-key", value: "one" };
    const first = await probe(t, { ...OPTS, auth, keepSession: true });
    assert.equal(first.status, "ready", first.message);
    assert.ok(first.session && first.fingerprint);
    assert.equal(s.openSessions(), 1, "left open for the caller");
    assert.equal(s.stats.deletes, 0);

    const requests = s.stats.requests;
    const again = {
      ...OPTS,
      auth,
      keepSession: true,
      session: first.session,
      listedFingerprint: first.fingerprint,
    };
    const pinged = await probe(t, again);
    assert.equal(pinged.status, "ready", pinged.message);
    assert.equal(s.stats.requests - requests, 1, "one request: the ping");
    assert.equal(s.stats.pings, 1);
    assert.deepEqual(pinged.session, first.session);
    assert.equal(pinged.capabilitiesKnown, false, "the last listing stands");

    // Without the listing's fingerprint (a listing due), the kept session is not trusted.
    const relisted = await probe(t, { ...again, listedFingerprint: undefined });
    assert.equal(relisted.capabilitiesKnown, true);
    assert.notEqual(relisted.session?.id, first.session.id);
    assert.equal(s.stats.deletes, 1, "the old session ended");

    // Other credentials: a handshake with them, not a ping that an old session would pass.
    const rotated = { ...auth, value: "two" };
    const withNew = await probe(t, { ...again, auth: rotated, session: relisted.session });
    assert.equal(s.stats.pings, 1, "no ping with other credentials");
    assert.notEqual(withNew.session?.id, relisted.session?.id);
    assert.equal(s.openSessions(), 1);

    // A failing backend: the ping's 500 is the probe's result.
    s.setMode("fail");
    const failed = await probe(t, { ...again, auth: rotated, session: withNew.session });
    assert.equal(failed.status, "unavailable");
    assert.equal(failed.message, "HTTP 500 from the backend");
    assert.equal(failed.session, undefined);
  });

  it("SSE: same counts over the HTTP+SSE transport", async () => {
    const s = await start({ flavour: "sse", spec: { tools: 4, resources: 1 } });
    const r = await probe({ name: "s", url: s.url() + "#s", transport: "sse" }, OPTS);
    assert.equal(r.status, "ready", r.message);
    assert.deepEqual(r.counts, { tools: 4, resources: 1, prompts: 0 });
    assert.equal(r.era, "legacy");
  });

  it("stateless 2026-07-28 server: server/discover, no initialize, no session", async () => {
    const s = await start({ flavour: "stateless", spec: { tools: 5, prompts: 2, pageSize: 2 } });
    const r = await probe({ name: "m", url: s.url(), transport: "streamable-http" }, OPTS);
    assert.equal(r.status, "ready", r.message);
    assert.equal(r.era, "stateless");
    assert.equal(r.protocolVersion, "2026-07-28");
    assert.deepEqual(r.counts, { tools: 5, resources: 0, prompts: 2 });
    assert.equal(s.stats.discovers, 1);
    // with the legacy hint the probe tries initialize first, is refused, and falls back
    const again = await probe(
      { name: "m", url: s.url(), transport: "streamable-http" },
      { ...OPTS, eraHint: "legacy" },
    );
    assert.equal(again.status, "ready", again.message);
    assert.equal(again.era, "stateless");
  });

  it("follows nextCursor through every page, and lists only advertised capabilities", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 23, pageSize: 5 } });
    const r = await probe(
      { name: "p", url: s.url(), transport: "streamable-http" },
      { ...OPTS, eraHint: "legacy" },
    );
    assert.equal(r.status, "ready", r.message);
    assert.equal(r.counts.tools, 23);
    assert.equal(new Set(r.toolNames).size, 23);
    // 5 pages of tools; no resources/prompts calls (not advertised) — a call would fail the probe
    assert.deepEqual(r.counts, { tools: 23, resources: 0, prompts: 0 });
  });

  it("a slow backend is degraded; one slower than the deadline is unavailable", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 1, delayMs: 150 } });
    const slow = await probe(
      { name: "slow", url: s.url(), transport: "streamable-http" },
      {
        timeoutMs: 2000,
        degradedLatencyMs: 100,
      },
    );
    assert.equal(slow.status, "degraded", slow.message);
    assert.ok(slow.latencyMs >= 150);
    assert.match(slow.message, /degraded above 100 ms/);
    const late = await probe(
      { name: "slow", url: s.url(), transport: "streamable-http" },
      {
        timeoutMs: 100,
        degradedLatencyMs: 50,
      },
    );
    assert.equal(late.status, "unavailable");
    assert.match(late.message, /no answer within 100 ms/);
    assert.ok(late.latencyMs < 1000);
  });

  it("HTTP 500 and connection refused are unavailable", async () => {
    const s = await start({ flavour: "streamable-http", spec: { tools: 1 } });
    s.setMode("fail");
    const r = await probe({ name: "f", url: s.url(), transport: "streamable-http" }, OPTS);
    assert.equal(r.status, "unavailable");
    assert.equal(r.httpStatus, 500);
    assert.match(r.message, /HTTP 500/);
    const port = await unusedPort();
    const refused = await probe(
      { name: "x", url: `http://127.0.0.1:${port}/mcp`, transport: "streamable-http" },
      OPTS,
    );
    assert.equal(refused.status, "unavailable");
    assert.equal(refused.message, "connection refused");
    const sseRefused = await probe(
      { name: "x", url: `http://127.0.0.1:${port}/sse`, transport: "sse" },
      OPTS,
    );
    assert.equal(sseRefused.status, "unavailable");
  });

  describe("outgoing auth", () => {
    const SECRET = "s3cr3t-header-value";
    it("header injection: right value → ready; wrong value → unauthenticated; none configured → unavailable", async () => {
      const s = await start({
        flavour: "streamable-http",
        spec: { tools: 2, requireHeader: { name: "X-Api-Key", value: SECRET } },
      });
      const t = { name: "a", url: s.url(), transport: "streamable-http" as const };
      const ok = await probe(t, {
        ...OPTS,
        auth: { type: "header", headerName: "X-Api-Key", value: SECRET },
      });
      assert.equal(ok.status, "ready", ok.message);
      assert.equal(ok.counts.tools, 2);
      const wrong = await probe(t, {
        ...OPTS,
        auth: { type: "header", headerName: "X-Api-Key", value: "nope-nope" },
      });
      assert.equal(wrong.status, "unauthenticated");
      assert.equal(wrong.httpStatus, 401);
      assert.match(wrong.message, /header_injection/);
      const none = await probe(t, OPTS);
      assert.equal(none.status, "unavailable");
      assert.match(none.message, /no outgoing auth is configured/);
      for (const r of [ok, wrong, none]) assert.ok(!JSON.stringify(r).includes(SECRET));
    });

    it("bearer token over SSE", async () => {
      const s = await start({
        flavour: "sse",
        spec: { tools: 1, requireHeader: { name: "authorization", value: "Bearer tok-123456" } },
      });
      const t = { name: "a", url: s.url(), transport: "sse" as const };
      assert.equal(
        (await probe(t, { ...OPTS, auth: { type: "bearer", token: "tok-123456" } })).status,
        "ready",
      );
      assert.equal(
        (await probe(t, { ...OPTS, auth: { type: "bearer", token: "tok-bad" } })).status,
        "unauthenticated",
      );
    });

    it("token exchange: client credentials → RFC 8693 exchange → bearer, cached", async () => {
      const idp = await startTokenServer({
        clientId: "probe",
        clientSecret: "client-secret-xyz",
        accessToken: "exchanged-token",
        audience: "backend",
      });
      try {
        const s = await start({
          flavour: "streamable-http",
          spec: { tools: 3, requireHeader: { name: "authorization", value: "Bearer exchanged-token" } },
        });
        const t = { name: "a", url: s.url(), transport: "streamable-http" as const };
        const tokens = new TokenCache();
        const auth = {
          type: "token_exchange" as const,
          tokenUrl: idp.url,
          clientId: "probe",
          clientSecret: "client-secret-xyz",
          audience: "backend",
        };
        const r = await probe(t, { ...OPTS, auth, tokens });
        assert.equal(r.status, "ready", r.message);
        assert.deepEqual(idp.grants, [
          "client_credentials",
          "urn:ietf:params:oauth:grant-type:token-exchange",
        ]);
        await probe(t, { ...OPTS, auth, tokens });
        assert.equal(idp.grants.length, 2, "the token is reused until it nears expiry");
        const bad = await probe(t, { ...OPTS, auth: { ...auth, clientSecret: "wrong-secret" }, tokens });
        assert.equal(bad.status, "unauthenticated");
        assert.match(
          bad.message,
          /token exchange failed: token endpoint answered HTTP 401 \(invalid_client\)/,
        );
        assert.ok(!bad.message.includes("wrong-secret"));
      } finally {
        await idp.stop();
      }
    });

    it("per-user auth the probe cannot hold: a 401 means reachable (unauthenticated)", async () => {
      const s = await start({
        flavour: "streamable-http",
        spec: { tools: 1, requireHeader: { name: "authorization", value: "Bearer user" } },
      });
      const r = await probe(
        { name: "u", url: s.url(), transport: "streamable-http" },
        {
          ...OPTS,
          auth: { type: "unresolvable", authType: "upstream_inject", reason: "per-user credentials" },
        },
      );
      assert.equal(r.status, "unauthenticated");
      assert.match(r.message, /upstream_inject/);
    });
  });
});
