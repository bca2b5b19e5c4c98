// Credentials stay where they belong: a backend or a token endpoint that redirects to a
// second server (which records everything it receives) gets nothing of the probe's
// credentials sent there, and the egress policy refuses destinations before anything is sent.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { probe, type ProbeOptions } from "../../health/probe.js";
import { STRICT_EGRESS } from "../../health/egress.js";
import { TokenCache } from "../../health/token.js";

const OPTS: ProbeOptions = { timeoutMs: 3000, degradedLatencyMs: 2000 };

interface Recorded {
  method: string;
  headers: IncomingMessage["headers"];
  body: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

describe("health probe: redirects and credentials", function () {
  this.timeout(20_000);
  const received: Recorded[] = [];
  let recorder: Server;
  let recorderUrl: string;
  let redirector: Server;
  let redirectorUrl: string;
  let status = 302;

  before(async () => {
    recorder = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({
          method: req.method ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    recorderUrl = await listen(recorder);
    redirector = createServer((req, res) => {
      req.resume();
      res.writeHead(status, { location: `${recorderUrl}${req.url ?? "/"}?stolen=1` }).end();
    });
    redirectorUrl = await listen(redirector);
  });
  beforeEach(() => {
    received.length = 0;
  });
  after(async () => {
    await close(recorder);
    await close(redirector);
  });

  for (const code of [301, 302, 303, 307, 308]) {
    it(`HTTP ${code} to another origin: not followed, the injected header stays home`, async () => {
      status = code;
      const r = await probe(
        { name: "b", url: `${redirectorUrl}/mcp`, transport: "streamable-http" },
        { ...OPTS, auth: { type: "header", headerName: "X-API-Key", value: "key-value-never-elsewhere" } },
      );
      assert.equal(r.status, "unavailable");
      assert.match(r.message, new RegExp(`redirected: HTTP ${code} to ${recorderUrl.replace(/\./g, "\\.")}`));
      assert.doesNotMatch(r.message, /stolen|key-value/, "only the target's origin is named");
      assert.equal(received.length, 0, `the other origin received ${JSON.stringify(received)}`);
    });
  }

  it("over SSE too: the bearer token is not sent to the redirect target", async () => {
    status = 307;
    const r = await probe(
      { name: "s", url: `${redirectorUrl}/sse`, transport: "sse" },
      { ...OPTS, auth: { type: "bearer", token: "bearer-never-elsewhere" } },
    );
    assert.equal(r.status, "unavailable");
    assert.match(r.message, /redirected: HTTP 307/);
    assert.equal(received.length, 0);
  });

  it("a token endpoint's 307 does not resend the client secret and subject token", async () => {
    status = 307;
    const r = await probe(
      { name: "t", url: `${recorderUrl}/mcp`, transport: "streamable-http" },
      {
        ...OPTS,
        tokens: new TokenCache(),
        auth: {
          type: "token_exchange",
          tokenUrl: `${redirectorUrl}/token`,
          clientId: "probe-client",
          clientSecret: "client-secret-never-elsewhere",
          subjectToken: "subject-token-never-elsewhere",
        },
      },
    );
    assert.match(
      r.message,
      /token exchange failed: token endpoint redirected \(HTTP 307 to http:\/\/127\.0\.0\.1/,
    );
    // The probe then goes on without credentials to the backend itself (the recorder here):
    // what it received must hold neither secret.
    const everything = JSON.stringify(received);
    assert.doesNotMatch(everything, /never-elsewhere/);
    assert.ok(received.every((q) => q.headers.authorization === undefined));
  });

  it("egress policy: a loopback backend is not probed under the strict policy; nothing is sent", async () => {
    const r = await probe(
      { name: "l", url: `${recorderUrl}/mcp`, transport: "streamable-http" },
      {
        ...OPTS,
        egress: STRICT_EGRESS,
        auth: { type: "header", headerName: "X-API-Key", value: "key-value-never-elsewhere" },
      },
    );
    assert.equal(r.status, "unavailable");
    assert.match(r.message, /^not probed: 127\.0\.0\.1 is a loopback address/);
    assert.equal(received.length, 0);
  });

  it("egress policy: a name resolving to the metadata address is refused even with loopback allowed", async () => {
    const r = await probe(
      { name: "m", url: "http://metadata.test/latest", transport: "streamable-http" },
      {
        ...OPTS,
        egress: { allowLoopback: true },
        resolve: async () => ["169.254.169.254"],
        auth: { type: "bearer", token: "bearer-never-elsewhere" },
      },
    );
    assert.match(r.message, /^not probed: metadata\.test is a cloud metadata address \(169\.254\.169\.254\)/);
  });

  it("egress policy: a token endpoint on loopback is refused before the client secret is sent", async () => {
    status = 307;
    const viaToken = await probe(
      { name: "t", url: `${redirectorUrl}/mcp`, transport: "streamable-http" },
      {
        ...OPTS,
        egress: STRICT_EGRESS,
        tokens: new TokenCache(),
        auth: {
          type: "token_exchange",
          tokenUrl: `${recorderUrl}/token`,
          clientSecret: "client-secret-never-elsewhere",
          clientId: "c",
        },
      },
    );
    assert.match(viaToken.message, /^not probed: 127\.0\.0\.1 is a loopback address/);
    assert.equal(received.length, 0);
  });
});
