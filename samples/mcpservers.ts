// Real MCP servers on 127.0.0.1 (or a given address) for the health tests, the probe and scale benchmarks.
//
// One node:http server hosts any number of MCP endpoints, one per path, each with its own
// tools/resources/prompts, page size, latency and auth requirement. Three flavours:
//   - "streamable-http": the SDK's McpServer + StreamableHTTPServerTransport, stateful
//     (a session per initialize, ended by DELETE);
//   - "sse": McpServer + SSEServerTransport (GET /path opens the stream, POSTs go to
//     /path/messages?sessionId=…);
//   - "stateless": the 2026-07-28 protocol revision (server/discover, per-request _meta,
//     no session). The SDK installed here (1.32.2) does not implement it, so this one is a
//     small hand-written JSON-RPC handler following the spec pages.
// Behaviour can be changed while running: setMode("fail") answers HTTP 500, setDelay()
// slows every list, stop()/start() take the port down and bring it back.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { SSEServerTransport } from "@modelcontextprotocol/sdk/server/sse.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

export type Flavour = "streamable-http" | "sse" | "stateless";
/** ok; fail: every request answers HTTP 500; flap: every other probe (session start) fails. */
export type Mode = "ok" | "fail" | "flap";

export interface EndpointSpec {
  /** Tool names, or how many (named tool_0…). */
  tools?: readonly string[] | number;
  resources?: number;
  prompts?: number;
  /** Items per list page; unset = everything on one page. */
  pageSize?: number;
  /** Added to every list (and discover) answer. */
  delayMs?: number;
  /** Every request must carry this header with exactly this value, else HTTP 401. */
  requireHeader?: { name: string; value: string };
  /** Annotate every tool readOnlyHint: true (what authorization policies can match on). */
  readOnly?: boolean;
}

export interface Stats {
  requests: number;
  /** Legacy sessions opened / ended with DELETE. */
  initializes: number;
  deletes: number;
  /** Pings on a legacy streamable-HTTP session (a probe of a kept session). */
  pings: number;
  discovers: number;
  /** tools/resources/prompts list pages served. */
  listCalls: number;
  /** tools/call requests answered (streamable-http and sse flavours). */
  toolCalls: number;
  unauthorized: number;
}

export interface McpTestServer {
  readonly flavour: Flavour;
  readonly port: number;
  /** URL of the endpoint at `path` (default "/mcp", or "/sse" for the sse flavour). */
  url(path?: string): string;
  stats: Stats;
  /** Legacy sessions currently open. */
  openSessions(): number;
  /** Forgets every session, as a restarted server would (requests on them get 404). */
  dropSessions(): void;
  setMode(mode: Mode): void;
  setDelay(ms: number): void;
  /** Closes the port (connections reset: probes see "connection refused"). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

export interface ServerOptions {
  flavour: Flavour;
  /** Endpoints by path; a single spec is served at the default path. */
  endpoints?: Record<string, EndpointSpec>;
  spec?: EndpointSpec;
  port?: number;
  /** Address to listen on (default 127.0.0.1; a process kubelet's gateway for real pods). */
  host?: string;
}

function names(spec: EndpointSpec): string[] {
  const t = spec.tools ?? 0;
  return typeof t === "number" ? Array.from({ length: t }, (_, i) => `tool_${i}`) : [...t];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pageOf<T>(items: readonly T[], cursor: string | undefined, size: number | undefined) {
  const start = cursor ? Number(cursor) : 0;
  const end = size ? Math.min(items.length, start + size) : items.length;
  return { items: items.slice(start, end), nextCursor: end < items.length ? String(end) : undefined };
}

function lists(spec: EndpointSpec) {
  const tools = names(spec).map((name) => ({
    name,
    description: `test tool ${name}`,
    inputSchema: { type: "object" as const },
    ...(spec.readOnly ? { annotations: { readOnlyHint: true } } : {}),
  }));
  const resources = Array.from({ length: spec.resources ?? 0 }, (_, i) => ({
    uri: `test://resource/${i}`,
    name: `resource_${i}`,
  }));
  const prompts = Array.from({ length: spec.prompts ?? 0 }, (_, i) => ({ name: `prompt_${i}` }));
  return { tools, resources, prompts };
}

/** An McpServer exposing the spec: real tools/resources/prompts, paginated lists. */
function mcpServerFor(spec: EndpointSpec, delay: () => number, stats: Stats): McpServer {
  const mcp = new McpServer({ name: "test-backend", version: "1.0.0" });
  const l = lists(spec);
  for (const t of l.tools)
    mcp.registerTool(t.name, { description: t.description, annotations: t.annotations }, async () => {
      stats.toolCalls++;
      return { content: [{ type: "text", text: t.name }] };
    });
  for (const r of l.resources)
    mcp.registerResource(r.name, r.uri, {}, async (uri) => ({ contents: [{ uri: uri.href, text: r.name }] }));
  for (const p of l.prompts)
    mcp.registerPrompt(p.name, {}, async () => ({
      messages: [{ role: "user", content: { type: "text", text: p.name } }],
    }));
  // The SDK lists everything at once; replace the list handlers with paginated, slowable ones.
  const s = mcp.server;
  if (l.tools.length)
    s.setRequestHandler(ListToolsRequestSchema, async (req) => {
      stats.listCalls++;
      await sleep(delay());
      const p = pageOf(l.tools, req.params?.cursor, spec.pageSize);
      return { tools: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
    });
  if (l.resources.length)
    s.setRequestHandler(ListResourcesRequestSchema, async (req) => {
      stats.listCalls++;
      await sleep(delay());
      const p = pageOf(l.resources, req.params?.cursor, spec.pageSize);
      return { resources: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
    });
  if (l.prompts.length)
    s.setRequestHandler(ListPromptsRequestSchema, async (req) => {
      stats.listCalls++;
      await sleep(delay());
      const p = pageOf(l.prompts, req.params?.cursor, spec.pageSize);
      return { prompts: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
    });
  return mcp;
}

/** Enough of a JSON-RPC message (or batch) to tell its method. */
type JsonRpcLike = { method?: string };

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** The 2026-07-28 stateless revision: one POST per request, no session. */
async function statelessHandler(
  req: IncomingMessage,
  res: ServerResponse,
  spec: EndpointSpec,
  delay: number,
  stats: Stats,
): Promise<void> {
  if (req.method !== "POST") return void res.writeHead(405).end();
  let msg: { id?: unknown; method?: string; params?: Record<string, unknown> };
  try {
    msg = JSON.parse(await readBody(req)) as typeof msg;
  } catch {
    return json(res, 400, { jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
  }
  const id = msg.id ?? null;
  const meta = (msg.params?._meta ?? {}) as Record<string, unknown>;
  const version = meta["io.modelcontextprotocol/protocolVersion"] ?? req.headers["mcp-protocol-version"];
  if (version !== "2026-07-28")
    return json(res, 400, {
      jsonrpc: "2.0",
      id,
      error: { code: -32004, message: "unsupported protocol version", data: { supported: ["2026-07-28"] } },
    });
  const l = lists(spec);
  const cursor = typeof msg.params?.cursor === "string" ? msg.params.cursor : undefined;
  const result = (key: string, items: readonly unknown[]) => {
    const p = pageOf(items, cursor, spec.pageSize);
    return { resultType: "complete", [key]: p.items, ...(p.nextCursor ? { nextCursor: p.nextCursor } : {}) };
  };
  await sleep(delay);
  switch (msg.method) {
    case "server/discover":
      stats.discovers++;
      return json(res, 200, {
        jsonrpc: "2.0",
        id,
        result: {
          resultType: "complete",
          supportedVersions: ["2026-07-28"],
          capabilities: {
            ...(l.tools.length ? { tools: {} } : {}),
            ...(l.resources.length ? { resources: {} } : {}),
            ...(l.prompts.length ? { prompts: {} } : {}),
          },
          serverInfo: { name: "test-backend-stateless", version: "1.0.0" },
        },
      });
    case "tools/list":
      stats.listCalls++;
      return json(res, 200, { jsonrpc: "2.0", id, result: result("tools", l.tools) });
    case "resources/list":
      stats.listCalls++;
      return json(res, 200, { jsonrpc: "2.0", id, result: result("resources", l.resources) });
    case "prompts/list":
      stats.listCalls++;
      return json(res, 200, { jsonrpc: "2.0", id, result: result("prompts", l.prompts) });
    default:
      return json(res, 404, { jsonrpc: "2.0", id, error: { code: -32601, message: "method not found" } });
  }
}

export async function startMcpServer(opts: ServerOptions): Promise<McpTestServer> {
  const defaultPath = opts.flavour === "sse" ? "/sse" : "/mcp";
  const host = opts.host ?? "127.0.0.1";
  const endpoints = opts.endpoints ?? { [defaultPath]: opts.spec ?? {} };
  const stats: Stats = {
    requests: 0,
    initializes: 0,
    deletes: 0,
    pings: 0,
    discovers: 0,
    listCalls: 0,
    toolCalls: 0,
    unauthorized: 0,
  };
  let mode: Mode = "ok";
  let extraDelay = 0;
  const streamable = new Map<string, StreamableHTTPServerTransport>();
  const sse = new Map<string, SSEServerTransport>();

  let flaps = 0;
  /**
   * The first request of a probe: a sessionless POST (initialize / server/discover), a ping
   * on a kept session, or the SSE GET.
   */
  const isProbeStart = (req: IncomingMessage, message: JsonRpcLike | undefined): boolean =>
    opts.flavour === "sse"
      ? req.method === "GET"
      : req.method === "POST" &&
        (req.headers["mcp-session-id"]
          ? message?.method === "ping"
          : opts.flavour === "stateless"
            ? req.headers["mcp-method"] === "server/discover"
            : true);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.requests++;
    // A streamable POST's message is read here (the transport takes it parsed): it tells a ping.
    const message =
      opts.flavour === "streamable-http" && req.method === "POST"
        ? (JSON.parse(await readBody(req)) as JsonRpcLike)
        : undefined;
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    let path = url.pathname;
    if (opts.flavour === "sse" && path.endsWith("/messages")) path = path.slice(0, -"/messages".length);
    const spec = endpoints[path];
    if (!spec) return void res.writeHead(404).end("no such endpoint");
    if (mode === "fail")
      return void res.writeHead(500, { "content-type": "text/plain" }).end("backend failure");
    if (mode === "flap" && isProbeStart(req, message) && flaps++ % 2 === 0)
      return void res.writeHead(500, { "content-type": "text/plain" }).end("backend failure (flapping)");
    if (
      spec.requireHeader &&
      req.headers[spec.requireHeader.name.toLowerCase()] !== spec.requireHeader.value
    ) {
      stats.unauthorized++;
      return void res.writeHead(401, { "www-authenticate": 'Bearer realm="test"' }).end("unauthorized");
    }
    const delay = (spec.delayMs ?? 0) + extraDelay;

    switch (opts.flavour) {
      case "stateless":
        return statelessHandler(req, res, spec, delay, stats);
      case "sse": {
        if (req.method === "GET" && url.pathname === path) {
          const transport = new SSEServerTransport(`${path}/messages`, res);
          sse.set(transport.sessionId, transport);
          transport.onclose = () => sse.delete(transport.sessionId);
          stats.initializes++;
          await mcpServerFor(spec, () => delay, stats).connect(transport);
          return;
        }
        if (req.method === "POST") {
          const transport = sse.get(url.searchParams.get("sessionId") ?? "");
          if (!transport) return void res.writeHead(404).end("unknown session");
          return transport.handlePostMessage(req, res);
        }
        return void res.writeHead(405).end();
      }
      case "streamable-http": {
        const sid = req.headers["mcp-session-id"];
        if (typeof sid === "string") {
          const transport = streamable.get(sid);
          if (!transport)
            return json(res, 404, {
              jsonrpc: "2.0",
              id: null,
              error: { code: -32001, message: "no such session" },
            });
          if (req.method === "DELETE") stats.deletes++;
          if (message?.method === "ping") stats.pings++;
          return transport.handleRequest(req, res, message);
        }
        if (req.method !== "POST") return void res.writeHead(405).end();
        if (message?.method !== "initialize")
          return json(res, 400, {
            jsonrpc: "2.0",
            id: null,
            error: { code: -32000, message: "Bad Request: Mcp-Session-Id header is required" },
          });
        stats.initializes++;
        const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => void streamable.set(id, transport),
          onsessionclosed: (id) => void streamable.delete(id),
        });
        transport.onclose = () => {
          if (transport.sessionId) streamable.delete(transport.sessionId);
        };
        await mcpServerFor(spec, () => delay, stats).connect(transport);
        return transport.handleRequest(req, res, message);
      }
    }
  };

  let server: Server | undefined;
  let port = opts.port ?? 0;
  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(e));
      });
    });
    s.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, host, () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  await listen();

  return {
    flavour: opts.flavour,
    get port() {
      return port;
    },
    url: (path = defaultPath) => `http://${host}:${port}${path}`,
    stats,
    openSessions: () => streamable.size + sse.size,
    dropSessions: () => {
      streamable.clear();
      sse.clear();
    },
    setMode: (m) => void (mode = m),
    setDelay: (ms) => void (extraDelay = ms),
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      await Promise.allSettled([...streamable.values(), ...sse.values()].map((t) => t.close()));
      streamable.clear();
      sse.clear();
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    async start() {
      if (!server) await listen();
    },
  };
}

/**
 * An OAuth token endpoint for token exchange tests: client_credentials issues
 * `subject-<n>`; the RFC 8693 exchange of a subject token it issued returns
 * `accessToken` (what the backend accepts). Client auth: HTTP Basic.
 */
export interface TokenServer {
  url: string;
  grants: string[];
  stop(): Promise<void>;
}

export async function startTokenServer(opts: {
  clientId: string;
  clientSecret: string;
  accessToken: string;
  audience?: string;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Subject tokens issued elsewhere that it exchanges too (e.g. a test OIDC issuer's). */
  acceptSubject?: (token: string) => boolean;
}): Promise<TokenServer> {
  const host = opts.host ?? "127.0.0.1";
  const grants: string[] = [];
  let n = 0;
  const issued = new Set<string>();
  const expected = "Basic " + Buffer.from(`${opts.clientId}:${opts.clientSecret}`).toString("base64");
  const server = createServer((req, res) => {
    void (async () => {
      const form = new URLSearchParams(await readBody(req));
      const grant = form.get("grant_type") ?? "";
      grants.push(grant);
      if (req.headers.authorization !== expected) return json(res, 401, { error: "invalid_client" });
      if (grant === "client_credentials") {
        const t = `subject-${++n}`;
        issued.add(t);
        return json(res, 200, { access_token: t, token_type: "Bearer", expires_in: 300 });
      }
      if (grant === "urn:ietf:params:oauth:grant-type:token-exchange") {
        const subject = form.get("subject_token") ?? "";
        if (!issued.has(subject) && !opts.acceptSubject?.(subject))
          return json(res, 400, { error: "invalid_grant" });
        if (opts.audience && form.get("audience") !== opts.audience)
          return json(res, 400, { error: "invalid_target" });
        return json(res, 200, {
          access_token: opts.accessToken,
          issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
          token_type: "Bearer",
          expires_in: 300,
        });
      }
      return json(res, 400, { error: "unsupported_grant_type" });
    })();
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/token`,
    grants,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
