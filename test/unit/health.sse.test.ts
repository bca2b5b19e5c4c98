// The legacy HTTP+SSE transport of the probe (health/sse.ts) against hand-written servers on
// 127.0.0.1: where its requests go (the checked address, the stream's origin only), how the
// stream is read (events split anywhere, CRLF), and what a broken stream does to a request.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HttpContext } from "../../health/http.js";
import { openSse, SseStatusError } from "../../health/sse.js";
import { ProbeError } from "../../health/wire.js";

interface Seen {
  method: string;
  path: string;
  body: string;
}

/** A server whose GET /sse is handled by `stream`; POSTs are recorded and answered on the stream. */
async function sseServer(
  stream: (res: ServerResponse, origin: string) => void,
  onPost?: (seen: Seen, streamRes: ServerResponse | undefined, res: ServerResponse) => void,
): Promise<{ port: number; origin: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let open: ServerResponse | undefined;
  let origin = "";
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s = { method: req.method ?? "", path: req.url ?? "", body: Buffer.concat(chunks).toString() };
      seen.push(s);
      if (req.method === "GET") {
        open = res;
        return stream(res, origin);
      }
      if (onPost) return onPost(s, open, res);
      res.writeHead(202).end();
      const msg = JSON.parse(s.body) as { id?: number };
      if (msg.id !== undefined)
        open?.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { ok: msg.id } })}\n\n`,
        );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  return {
    port,
    origin,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const sseHead = (res: ServerResponse): void =>
  void res.writeHead(200, { "content-type": "text/event-stream" });

function context(over: Partial<HttpContext> = {}): HttpContext {
  return {
    headers: {},
    wire: {},
    egress: { allowLoopback: true },
    resolve: async () => ["127.0.0.1"],
    signal: new AbortController().signal,
    ...over,
  };
}

describe("probe HTTP+SSE transport (health/sse.ts, real local servers)", function () {
  this.timeout(10_000);
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  it("stream and messages go to the checked address; answers are matched by id, events split anywhere", async () => {
    const s = await sseServer((res) => {
      sseHead(res);
      res.write("event: endp");
      res.write("oint\r\ndata: /messages?sessionId=abc\r");
      res.write("\n\r\n: a comment\n\n");
    });
    closers.push(s.close);
    // .invalid never resolves (RFC 6761): the requests can only land through the checked address
    const sse = await openSse(new URL(`http://backend.invalid:${s.port}/sse`), context());
    const [a, b] = await Promise.all([sse.request("tools/list", {}), sse.request("prompts/list", {})]);
    assert.deepEqual([a.result, b.result], [{ ok: 0 }, { ok: 1 }]);
    await sse.notify("notifications/initialized");
    sse.close();
    assert.deepEqual(
      s.seen.map((q) => `${q.method} ${q.path}`),
      [
        "GET /sse",
        "POST /messages?sessionId=abc",
        "POST /messages?sessionId=abc",
        "POST /messages?sessionId=abc",
      ],
    );
  });

  it("an endpoint on another origin is refused: no message is sent there", async () => {
    const other = await sseServer((res) => void res.writeHead(404).end());
    closers.push(other.close);
    const s = await sseServer((res) => {
      sseHead(res);
      res.write(`event: endpoint\ndata: ${other.origin}/steal\n\n`);
    });
    closers.push(s.close);
    await assert.rejects(
      openSse(new URL(`${s.origin}/sse`), context()),
      (e: unknown) => e instanceof ProbeError && /another origin/.test(e.message),
    );
    assert.equal(other.seen.length, 0);
  });

  it("a stream that ends fails the request waiting on it; a GET refused is its status", async () => {
    const s = await sseServer(
      (res) => {
        sseHead(res);
        res.write("event: endpoint\ndata: /messages\n\n");
      },
      (_seen, stream, res) => {
        res.writeHead(202).end();
        stream?.end(); // the answer never comes: the stream ends instead
      },
    );
    closers.push(s.close);
    const sse = await openSse(new URL(`${s.origin}/sse`), context());
    await assert.rejects(sse.request("initialize", {}), /the event stream (ended|closed)/);

    const refused = await sseServer((res) => void res.writeHead(503).end("down"));
    closers.push(refused.close);
    const ctx = context();
    await assert.rejects(
      openSse(new URL(`${refused.origin}/sse`), ctx),
      (e: unknown) => e instanceof SseStatusError && e.status === 503,
    );
    assert.equal(ctx.wire.errorStatus, 503);
  });

  it("the probe's deadline ends a stream that never names its endpoint", async () => {
    const s = await sseServer((res) => sseHead(res));
    closers.push(s.close);
    const started = performance.now();
    await assert.rejects(openSse(new URL(`${s.origin}/sse`), context({ signal: AbortSignal.timeout(300) })));
    assert.ok(performance.now() - started < 2000);
  });
});
