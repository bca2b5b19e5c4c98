// One probe exchange over node:http (health/http.ts), against real local servers: redirects
// and where the probe's headers may go, the egress check at every hop and the pinned
// connection, body limits, the SSE early stop, the deadline, and keep-alive; and the token
// requests that go over it.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { EgressPolicy, Resolver } from "../../health/egress.js";
import {
  discard,
  exchange,
  MAX_BODY_BYTES,
  readEvents,
  readText,
  type HttpContext,
  type HttpRequest,
} from "../../health/http.js";
import { TOKEN_EXCHANGE_GRANT, TokenCache, TokenError, type TokenContext } from "../../health/token.js";
import { ProbeError, type Wire } from "../../health/wire.js";

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
  /** The server-side address the request's connection came in on. */
  localAddress: string;
}

interface TestServer {
  url: string;
  port: number;
  seen: Seen[];
  connections: Socket[];
  closedConnections: () => number;
  close: () => Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

async function serve(handler: Handler, host = "127.0.0.1", port = 0): Promise<TestServer> {
  const seen: Seen[] = [];
  const connections: Socket[] = [];
  let closed = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        localAddress: req.socket.localAddress ?? "",
      };
      seen.push(s);
      handler(req, res, s);
    });
  });
  server.on("connection", (socket: Socket) => {
    connections.push(socket);
    socket.on("close", () => closed++);
  });
  await new Promise<void>((r) => server.listen(port, host, () => r()));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}`,
    port: actual,
    seen,
    connections,
    closedConnections: () => closed,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const json = (res: ServerResponse, body: unknown, status = 200): void =>
  void res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

const LOOPBACK: EgressPolicy = { allowLoopback: true };
const toLoopback: Resolver = async () => ["127.0.0.1"];

function context(over: Partial<HttpContext> = {}): HttpContext & { wire: Wire } {
  return {
    headers: {},
    wire: {},
    egress: LOOPBACK,
    resolve: toLoopback,
    signal: new AbortController().signal,
    ...over,
  };
}

const post = (url: string, body = '{"ping":1}'): HttpRequest => ({
  method: "POST",
  url: new URL(url),
  headers: { "content-type": "application/json" },
  body,
});

describe("probe HTTP exchange (health/http.ts, real local servers)", function () {
  this.timeout(20_000);
  const servers: TestServer[] = [];
  const start = async (handler: Handler, host?: string, port?: number): Promise<TestServer> => {
    const s = await serve(handler, host, port);
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  describe("redirects", () => {
    it("follows a same-origin 307 with method, body and headers kept", async () => {
      const s = await start((req, res) =>
        req.url === "/old" ? void res.writeHead(307, { location: "/new" }).end() : json(res, { ok: true }),
      );
      const ctx = context({ headers: { "x-api-key": "k-1" } });
      const reply = await exchange(post(`${s.url}/old`, '{"a":1}'), ctx, readText);
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.body), { ok: true });
      assert.deepEqual(
        s.seen.map((q) => [q.method, q.path, q.body, q.headers["x-api-key"]]),
        [
          ["POST", "/old", '{"a":1}', "k-1"],
          ["POST", "/new", '{"a":1}', "k-1"],
        ],
      );
      assert.equal(ctx.wire.refusedRedirect, undefined);
    });

    it("refuses a redirect to another origin: nothing (no header) reaches it", async () => {
      const other = await start((_req, res) => json(res, {}));
      const s = await start((_req, res) => void res.writeHead(307, { location: `${other.url}/steal` }).end());
      const ctx = context({ headers: { "x-api-key": "never-elsewhere" } });
      await assert.rejects(exchange(post(`${s.url}/mcp`), ctx, readText), ProbeError);
      assert.match(
        ctx.wire.refusedRedirect ?? "",
        new RegExp(`^HTTP 307 to ${other.url.replace(/\./g, "\\.")}`),
      );
      assert.equal(other.seen.length, 0);
      assert.equal(other.connections.length, 0, "not even a connection to the other origin");
    });

    it("refuses a 302 of a POST (it would become a GET) and a loop past 5 hops", async () => {
      const s = await start((req, res) =>
        req.url === "/found"
          ? void res.writeHead(302, { location: "/x" }).end()
          : void res.writeHead(308, { location: "/loop" }).end(),
      );
      const found = context();
      await assert.rejects(exchange(post(`${s.url}/found`), found, readText), ProbeError);
      assert.match(found.wire.refusedRedirect ?? "", /^HTTP 302 for POST/);
      s.seen.length = 0;
      const loop = context();
      await assert.rejects(exchange(post(`${s.url}/loop`), loop, readText), /more than 5 redirects/);
      assert.equal(loop.wire.refusedRedirect, "more than 5 redirects");
      assert.equal(s.seen.length, 6, "the request and 5 followed hops");
    });
  });

  describe("egress and the pinned connection", () => {
    it("checks the policy at every hop: a name that rebinds to the metadata address is refused", async () => {
      const s = await start((req, res) =>
        req.url === "/first" ? void res.writeHead(307, { location: "/second" }).end() : json(res, {}),
      );
      const answers = [["127.0.0.1"], ["169.254.169.254"]];
      const asked: string[] = [];
      const resolve: Resolver = async (host) => {
        asked.push(host);
        return answers.shift() ?? [];
      };
      const ctx = context({ resolve });
      await assert.rejects(
        exchange(post(`http://backend.test:${s.port}/first`), ctx, readText),
        /cloud metadata address/,
      );
      assert.deepEqual(asked, ["backend.test", "backend.test"]);
      assert.match(
        ctx.wire.refusedEgress ?? "",
        /backend\.test is a cloud metadata address \(169\.254\.169\.254\)/,
      );
      assert.deepEqual(
        s.seen.map((q) => q.path),
        ["/first"],
        "nothing sent after the refused hop",
      );
    });

    it("connects to the checked address only, whatever the host name (no DNS of its own)", async () => {
      const s = await start((_req, res) => json(res, { landed: true }));
      // .invalid never resolves (RFC 6761): the request can only land through the checked address
      const reply = await exchange(post(`http://backend.invalid:${s.port}/mcp`), context(), readText);
      assert.deepEqual(JSON.parse(reply.body), { landed: true });
      assert.equal(s.seen[0]?.headers.host, `backend.invalid:${s.port}`);
    });

    it("a pooled socket is not reused for the same host:port checked to another address", async () => {
      const first = await start((_req, res) => json(res, { at: 1 }));
      const second = await start((_req, res) => json(res, { at: 2 }), "127.0.0.2", first.port);
      const url = `http://backend.test:${first.port}/mcp`;
      const at = async (address: string) =>
        JSON.parse((await exchange(post(url), context({ resolve: async () => [address] }), readText)).body);
      assert.deepEqual(await at("127.0.0.1"), { at: 1 });
      assert.deepEqual(await at("127.0.0.2"), { at: 2 }, "the keep-alive socket to 127.0.0.1 was not used");
      assert.deepEqual(await at("127.0.0.1"), { at: 1 });
      assert.equal(first.connections.length, 1, "same pinned address: the socket is reused");
      assert.deepEqual(
        second.seen.map((q) => q.localAddress),
        ["127.0.0.2"],
      );
    });

    it("refuses before connecting when the policy says no; records a refused connection", async () => {
      const s = await start((_req, res) => json(res, {}));
      const strict = context({ egress: { allowLoopback: false } });
      await assert.rejects(exchange(post(s.url), strict, readText), /loopback/);
      assert.equal(s.connections.length, 0);
      const port = s.port;
      await s.close();
      servers.splice(servers.indexOf(s), 1);
      const refused = context();
      await assert.rejects(exchange(post(`http://127.0.0.1:${port}/`), refused, readText));
      assert.equal(refused.wire.networkCode, "ECONNREFUSED");
    });
  });

  describe("bodies", () => {
    it("refuses a JSON body over 16 MiB, with or without a Content-Length", async () => {
      const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
      const s = await start((req, res) => {
        if (req.url === "/sized") res.writeHead(200, { "content-length": big.length }).end(big);
        else {
          res.writeHead(200, { "content-type": "application/json" });
          for (let i = 0; i < 17; i++) res.write(Buffer.alloc(1024 * 1024, 0x20));
          res.end("{}");
        }
      });
      for (const path of ["/sized", "/chunked"])
        await assert.rejects(
          exchange(post(`${s.url}${path}`), context(), readText),
          (e: unknown) => e instanceof ProbeError && /over 16 MiB/.test(e.message),
          path,
        );
      const fits = await start(
        (_req, res) => void res.writeHead(200).end(Buffer.alloc(MAX_BODY_BYTES, 0x20)),
      );
      assert.equal((await exchange(post(fits.url), context(), readText)).body.length, MAX_BODY_BYTES);
    });

    it("reads an SSE body up to the awaited event only; a stream left open loses its connection", async () => {
      const s = await start((req, res) => {
        if (req.url !== "/sse") return json(res, { plain: true });
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('event: message\ndata: {"id":6}\n\n');
        res.write('event: message\ndata: {"id"');
        res.write(':7,"result":{"é":1}}\r\n\r\n'); // split mid-event; CRLF line ends
        // the stream stays open: a server may keep it for later messages
      });
      const matches: string[] = [];
      const reply = await exchange(post(`${s.url}/sse`), context(), (res) =>
        readEvents(res, (data) => {
          matches.push(data);
          const m = JSON.parse(data) as { id: number };
          return m.id === 7 ? m : undefined;
        }),
      );
      assert.deepEqual(reply.body, { id: 7, result: { é: 1 } });
      assert.equal(matches.length, 2);
      await until(() => s.closedConnections() === 1, "the SSE connection is closed");
      await exchange(post(`${s.url}/plain`), context(), readText);
      assert.equal(s.connections.length, 2, "the SSE socket did not go back to the pool");
    });

    it("an SSE stream the server ends after its answer keeps its connection for the next request", async () => {
      const s = await start((req, res) => {
        if (req.url !== "/sse") return json(res, { plain: true });
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('data: {"id":1,"result":{}}\n\n');
        setTimeout(() => res.end(), 20); // as MCP servers do once every answer is sent
      });
      const reply = await exchange(post(`${s.url}/sse`), context(), (res) =>
        readEvents(res, (data) => JSON.parse(data) as unknown),
      );
      assert.deepEqual(reply.body, { id: 1, result: {} });
      await new Promise((r) => setTimeout(r, 60));
      await exchange(post(`${s.url}/plain`), context(), readText);
      assert.equal(s.connections.length, 1, "the second request went over the SSE answer's socket");
      assert.equal(s.closedConnections(), 0);
    });

    it("an SSE stream that ends without the event gives undefined", async () => {
      const s = await start((_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end('data: {"id":1}\n\ndata: {"id":2}');
      });
      const seen: string[] = [];
      const reply = await exchange(post(s.url), context(), (res) =>
        readEvents(res, (data) => void seen.push(data)),
      );
      assert.equal(reply.body, undefined);
      assert.deepEqual(seen, ['{"id":1}', '{"id":2}'], "the last event, without a blank line, is read too");
    });
  });

  describe("deadline and keep-alive", () => {
    it("the signal ends a server that never answers, and one that never finishes its body", async () => {
      const s = await start((req, res) => {
        if (req.url === "/body") res.writeHead(200, { "content-type": "application/json" }).write("{");
        // /silent: no answer at all
      });
      for (const path of ["/silent", "/body"]) {
        const ctl = new AbortController();
        const deadline = new Error("probe deadline");
        setTimeout(() => ctl.abort(deadline), 200);
        const started = performance.now();
        await assert.rejects(
          exchange(post(`${s.url}${path}`), context({ signal: ctl.signal }), readText),
          (e: unknown) => e === deadline,
          path,
        );
        assert.ok(performance.now() - started < 2000, `${path} ended by the signal`);
      }
      await until(() => s.closedConnections() === 2, "both connections are closed");
    });

    it("reuses one connection for the requests of a probe (keep-alive), and drains small bodies", async () => {
      const s = await start((req, res) =>
        req.url === "/notify" ? void res.writeHead(202).end() : json(res, { n: s.seen.length }),
      );
      const ctx = context();
      await exchange(post(`${s.url}/rpc`), ctx, readText);
      assert.equal((await exchange(post(`${s.url}/notify`), ctx, discard)).status, 202);
      await exchange(post(`${s.url}/rpc`), ctx, readText);
      await exchange({ method: "DELETE", url: new URL(`${s.url}/rpc`), headers: {} }, ctx, discard);
      assert.equal(s.seen.length, 4);
      assert.equal(s.connections.length, 1, "four requests, one connection");
    });

    it("does not wait for a body it drops that keeps streaming", async () => {
      const s = await start((_req, res) => {
        res.writeHead(202, { "content-type": "text/event-stream" });
        res.write(": still here\n\n"); // and never ends
      });
      const started = performance.now();
      assert.equal((await exchange(post(s.url), context(), discard)).status, 202);
      assert.ok(performance.now() - started < 1000);
      await until(() => s.closedConnections() === 1, "its connection is closed, not pooled");
    });

    it("a response slower than the 1 s free-socket timeout still arrives", async () => {
      const s = await start((_req, res) => void setTimeout(() => json(res, { late: true }), 1300));
      const reply = await exchange(post(s.url), context(), readText);
      assert.deepEqual(JSON.parse(reply.body), { late: true });
    });

    it("records statuses the way the probe classifies them", async () => {
      const s = await start((req, res) => json(res, {}, Number(req.url?.slice(1))));
      const ctx = context();
      await exchange(post(`${s.url}/500`), ctx, readText);
      await exchange(post(`${s.url}/403`), ctx, discard);
      await exchange({ method: "DELETE", url: new URL(`${s.url}/404`), headers: {} }, ctx, discard);
      assert.deepEqual(ctx.wire, { errorStatus: 500, authStatus: 403 });
    });
  });
});

describe("token requests over the probe's HTTP client (health/token.ts)", function () {
  this.timeout(20_000);
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const idp = async (handler?: Handler): Promise<TestServer> => {
    const s = await serve(
      handler ??
        ((_req, res, seen) => {
          const grant = new URLSearchParams(seen.body).get("grant_type");
          json(res, {
            access_token: grant === TOKEN_EXCHANGE_GRANT ? "exchanged" : "subject",
            expires_in: 300,
          });
        }),
    );
    servers.push(s);
    return s;
  };
  const ctx = (over: Partial<TokenContext> = {}): TokenContext => ({
    signal: new AbortController().signal,
    egress: LOOPBACK,
    resolve: toLoopback,
    ...over,
  });
  const secret = { clientId: "probe", clientSecret: "client-secret-never-elsewhere" };

  it("exchanges at the checked address only: a name that never resolves still lands there", async () => {
    const s = await idp();
    const asked: string[] = [];
    const resolve: Resolver = async (host) => (asked.push(host), ["127.0.0.1"]);
    const token = await new TokenCache().get(
      { tokenUrl: `http://idp.invalid:${s.port}/token`, ...secret },
      ctx({ resolve }),
    );
    assert.equal(token, "exchanged");
    assert.deepEqual(
      s.seen.map((q) => new URLSearchParams(q.body).get("grant_type")),
      ["client_credentials", TOKEN_EXCHANGE_GRANT],
    );
    assert.deepEqual(asked, ["idp.invalid", "idp.invalid"], "each request checked");
    assert.equal(
      s.seen[0]?.headers.authorization,
      `Basic ${Buffer.from("probe:client-secret-never-elsewhere").toString("base64")}`,
    );
  });

  it("refuses a token endpoint that resolves to the metadata address: nothing is sent", async () => {
    const s = await idp();
    await assert.rejects(
      new TokenCache().get(
        { tokenUrl: `http://idp.test:${s.port}/token`, ...secret },
        ctx({ resolve: async () => ["169.254.169.254"] }),
      ),
      /cloud metadata address/,
    );
    assert.equal(s.connections.length, 0);
  });

  it("never follows a redirect, not even to its own origin; names the target's origin only", async () => {
    const s = await idp((req, res, seen) =>
      req.url === "/token"
        ? void res.writeHead(307, { location: "/elsewhere?code=abc" }).end()
        : json(res, { access_token: seen.body }),
    );
    await assert.rejects(
      new TokenCache().get(
        { tokenUrl: `${s.url}/token`, ...secret, subjectToken: "subject-never-elsewhere" },
        ctx(),
      ),
      (e: unknown) =>
        e instanceof TokenError &&
        e.httpStatus === 307 &&
        e.message ===
          `token endpoint redirected (HTTP 307 to ${s.url}); not followed: the request carries credentials`,
    );
    assert.deepEqual(
      s.seen.map((q) => q.path),
      ["/token"],
    );
  });

  it("names the OAuth error code of a refusal, never the rest of the body", async () => {
    const s = await idp((_req, res) =>
      json(res, { error: "invalid_client", error_description: "secret-echo" }, 401),
    );
    await assert.rejects(
      new TokenCache().get({ tokenUrl: `${s.url}/token`, ...secret }, ctx()),
      (e: unknown) =>
        e instanceof TokenError && e.message === "token endpoint answered HTTP 401 (invalid_client)",
    );
  });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), what);
}
