// One MCP health probe of one backend, speaking MCP the way a client would:
//   - handshake: the stateless era (2026-07-28: `server/discover`, per-request `_meta`)
//     or the legacy era (`initialize`, a session when the server gives one);
//   - capabilities, then tools/resources/prompts counted through every page (nextCursor),
//     only for capabilities the server advertises, and not again while the handshake shows
//     the server of the last listing (`listedFingerprint`: the monitor re-lists on a schedule);
//   - a clean close (DELETE of the streamable-HTTP session), or the session kept for the
//     caller (`keepSession`), and pinged by the next probe instead of a new handshake while
//     the listing is fresh (`session`): one request instead of three;
//   - the backend's outgoing auth (header / bearer / token exchange), values resolved by
//     the caller; a 401/403 with auth configured is `unauthenticated` (reachable, routable);
//   - its own deadline (AbortSignal) over everything, close included.
// Every transport is spoken directly over node:http with keep-alive (./http.ts): streamable
// HTTP, either era, as one JSON-RPC POST per message; the legacy HTTP+SSE transport as its GET
// stream and POSTs (./sse.ts). Cheaper per probe than @modelcontextprotocol/sdk's client, whose
// 1.32.2 also predates the stateless revision, and than fetch; and every request of a probe
// is checked and pinned by the egress policy the same way.
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { authConfigured, authLabel, scrub, secretValues, type ProbeAuth } from "./auth.js";
import { resolveAll, type EgressPolicy, type Resolver } from "./egress.js";
import { discard, exchange, readEvents, readText, type BodyReader, type HttpContext } from "./http.js";
import { openSse } from "./sse.js";
import { TokenCache, type TokenContext } from "./token.js";
import { checkEgress, errCode, ProbeError, type Wire } from "./wire.js";

export type ProbeStatus = "ready" | "degraded" | "unavailable" | "unauthenticated";
/** `legacy`: initialize + session (≤ 2025-11-25). `stateless`: server/discover (2026-07-28). */
export type ProtocolEra = "legacy" | "stateless";
export const STATELESS_PROTOCOL_VERSION = "2026-07-28";

export interface ProbeTarget {
  name: string;
  url: string;
  transport: "sse" | "streamable-http";
}

export interface ProbeCounts {
  tools: number;
  resources: number;
  prompts: number;
}

export interface ProbeResult {
  status: ProbeStatus;
  /** Handshake + listing, in ms (close excluded). */
  latencyMs: number;
  /** Negotiated (legacy) or chosen (stateless) protocol version. */
  protocolVersion?: string;
  era?: ProtocolEra;
  counts: ProbeCounts;
  /**
   * False when the probe did not list (unavailable, unauthenticated, or the server unchanged
   * since `listedFingerprint`): counts are then 0 and the last listing's stand.
   */
  capabilitiesKnown: boolean;
  toolNames: string[];
  /** Human-readable, secret-free. */
  message: string;
  /** HTTP status that decided the outcome, if any. */
  httpStatus?: number;
  /** Digest of the handshake (version, serverInfo, capabilities), when there was one. */
  fingerprint?: string;
  /** The session left open for the caller (`keepSession`): it pings it next time, or ends it. */
  session?: KeptSession;
}

/**
 * A legacy streamable-HTTP session kept between probes. It answers for the server of its
 * handshake only (`fingerprint`), and for the URL and credentials it was opened with
 * (`boundTo`): other credentials (a rotated Secret) get a new handshake, so they are tested
 * at once, not at the next listing.
 */
export interface KeptSession {
  id: string;
  protocolVersion: string;
  fingerprint: string;
  boundTo: string;
}

export interface ProbeOptions {
  /** Deadline for the whole probe (healthCheckTimeout). */
  timeoutMs: number;
  /** Slower than this (but within the deadline) ⇒ degraded. */
  degradedLatencyMs: number;
  auth?: ProbeAuth;
  /** The era the backend spoke last time: tried first, saving a round trip. */
  eraHint?: ProtocolEra;
  /** Shared token cache (token exchange); one per process is right. */
  tokens?: TokenCache;
  /** Cancels the probe from outside (monitor stopping). */
  signal?: AbortSignal;
  /** Stop following nextCursor after this many pages per list (default 100). */
  maxPages?: number;
  clientInfo?: { name: string; version: string };
  /** Where requests may go (checked on resolved addresses, before each request); unset = anywhere. */
  egress?: EgressPolicy;
  /** Name resolution for the egress check (default: every address of dns.lookup). */
  resolve?: Resolver;
  /**
   * The `fingerprint` of the probe that listed last: when the handshake shows the same
   * server, tools/resources/prompts are not read again. Unset = always list.
   */
  listedFingerprint?: string;
  /** Leave a legacy session open and return it in the result, instead of ending it. */
  keepSession?: boolean;
  /**
   * A session an earlier probe left open: pinged (one request) when it is bound to this
   * probe's URL and credentials and its fingerprint is `listedFingerprint`; on any failure
   * of the ping the probe does the full handshake. Otherwise it is ended.
   */
  session?: KeptSession;
}

const DEFAULT_CLIENT = { name: "vmcp-operator-health", version: "0.1.0" };
const defaultTokens = new TokenCache();

class WrongEra extends ProbeError {}
class HttpStatusError extends ProbeError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Listed {
  toolNames: string[];
  resources: number;
  prompts: number;
}

interface Listing {
  era: ProtocolEra;
  protocolVersion: string | undefined;
  /** Undefined when the lists were not read (the server is unchanged since `listedFingerprint`). */
  listed: Listed | undefined;
  fingerprint: string;
  close: () => Promise<void>;
  /** The session left open (`keepSession`). */
  session?: KeptSession;
}

/**
 * What the handshake says about the server — protocol version, serverInfo, capabilities —
 * in a short digest: another digest means another server (a new version rolled out) and
 * lists worth reading again.
 */
function fingerprintOf(version: string | undefined, info: unknown, caps: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify([version ?? "", info ?? null, caps ?? null]))
    .digest("base64url")
    .slice(0, 22);
}

/** The DELETE that ends a session gets its own short deadline, even after the probe's expired. */
const CLOSE_TIMEOUT_MS = 2000;

function short(text: string, max = 200): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

async function authHeaders(
  auth: ProbeAuth,
  tokens: TokenCache,
  ctx: TokenContext,
): Promise<{ headers: Record<string, string>; note?: string }> {
  switch (auth.type) {
    case "header":
      return { headers: { [auth.headerName]: auth.value } };
    case "bearer":
      return { headers: { authorization: `Bearer ${auth.token}` } };
    case "token_exchange":
      try {
        const token = await tokens.get(auth, ctx);
        return { headers: { authorization: `Bearer ${token}` } };
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        // Go on without credentials: the backend's answer still tells whether it is up.
        return { headers: {}, note: `token exchange failed: ${(e as Error).message}` };
      }
    case "unresolvable":
      return { headers: {}, note: `${auth.authType}: ${auth.reason}` };
    case "none":
      return { headers: {} };
  }
}

async function pages<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor?: string | undefined }>,
  maxPages: number,
): Promise<T[]> {
  const out: T[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const p = await fetchPage(cursor);
    out.push(...p.items);
    if (!p.nextCursor || seen.has(p.nextCursor)) break;
    seen.add(p.nextCursor);
    cursor = p.nextCursor;
  }
  return out;
}

// ---- legacy HTTP+SSE ----------------------------------------------------------------------

/**
 * HTTP+SSE (a GET stream for the answers, POSTs for the messages: ./sse.ts): initialize,
 * the initialized notification, the lists, and the stream closed (which ends the session).
 */
async function legacySse(
  url: URL,
  ctx: HttpContext,
  maxPages: number,
  clientInfo: { name: string; version: string },
  listedFingerprint: string | undefined,
): Promise<Listing> {
  const sse = await openSse(url, ctx);
  const close = async (): Promise<void> => sse.close();
  try {
    const call = async (method: string, params: Record<string, unknown>) => {
      const rpc = await sse.request(method, params);
      if (rpc.error) throw new ProbeError(`${method}: MCP error ${Number(rpc.error.code)}`);
      return rpc.result ?? {};
    };
    const result = await call("initialize", {
      protocolVersion: LEGACY_PROTOCOL_VERSIONS[0],
      capabilities: {},
      clientInfo,
    });
    const protocolVersion = typeof result.protocolVersion === "string" ? result.protocolVersion : "";
    if (!LEGACY_PROTOCOL_VERSIONS.includes(protocolVersion))
      throw new ProbeError("initialize: the server chose a protocol version this probe does not speak");
    sse.setHeader("mcp-protocol-version", protocolVersion);
    await sse.notify("notifications/initialized");
    const caps = (result.capabilities ?? {}) as Record<string, unknown>;
    const fingerprint = fingerprintOf(protocolVersion, result.serverInfo, caps);
    const listed = await listIfNew(fingerprint, listedFingerprint, caps, maxPages, call);
    return { era: "legacy", protocolVersion, listed, fingerprint, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// ---- streamable HTTP, both eras: plain JSON-RPC POSTs -----------------------------------
// One POST per message over node:http (./http.ts), the answer read from a JSON or an SSE
// body. The SDK's client costs more per probe than the exchange itself (a transport, a
// validated copy of every message), and so does fetch: docs/benchmarks.md has the figures.

interface RpcResponse {
  result?: Record<string, unknown>;
  error?: { code?: number; message?: string };
}

function pick(message: unknown, id: number): RpcResponse | undefined {
  for (const c of [message].flat())
    if (c && typeof c === "object" && (c as { id?: unknown }).id === id) return c as RpcResponse;
  return undefined;
}

/** A backend's JSON, or undefined for text that is not JSON (then there is no answer in it). */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The JSON-RPC response with `id` from a JSON body, or from an SSE body read only until that
 * response has come (a server may keep the stream open); undefined when there is none.
 */
async function readRpc(res: IncomingMessage, id: number): Promise<RpcResponse | undefined> {
  if ((res.headers["content-type"] ?? "").includes("text/event-stream"))
    return readEvents(res, (data) => pick(parsed(data), id));
  const text = await readText(res);
  return text ? pick(parsed(text), id) : undefined;
}

interface Exchange {
  status: number;
  headers: IncomingHttpHeaders;
  /** Undefined when the body holds no JSON-RPC response with the request's id (or no JSON). */
  rpc: RpcResponse | undefined;
}

const ok = (status: number): boolean => status >= 200 && status < 300;

/** POSTs of JSON-RPC messages to one endpoint, with the headers of the moment (session, version). */
function poster(url: URL, ctx: HttpContext, headers: () => Record<string, string>) {
  let nextId = 0;
  const send = <T>(body: unknown, extra: Record<string, string>, read: BodyReader<T>) =>
    exchange(
      {
        method: "POST",
        url,
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers(),
          ...extra,
        },
        body: JSON.stringify(body),
      },
      ctx,
      read,
    );
  return {
    request: async (
      method: string,
      params: Record<string, unknown>,
      extra: Record<string, string> = {},
    ): Promise<Exchange> => {
      const id = nextId++;
      const denied = (status: number | undefined) => status === 401 || status === 403;
      const reply = await send({ jsonrpc: "2.0", id, method, params }, extra, (res) =>
        denied(res.statusCode) ? discard(res) : readRpc(res, id),
      );
      if (denied(reply.status)) throw new HttpStatusError(reply.status, `HTTP ${reply.status}`);
      return { status: reply.status, headers: reply.headers, rpc: reply.body };
    },
    /** The status a notification was answered with. */
    notify: async (method: string): Promise<number> =>
      (await send({ jsonrpc: "2.0", method }, {}, discard)).status,
  };
}

/** The result of a successful exchange; throws (with our words only) otherwise. */
function resultOf(method: string, { status, rpc }: Exchange): Record<string, unknown> {
  if (!ok(status)) throw new HttpStatusError(status, `HTTP ${status} for ${method}`);
  if (!rpc) throw new ProbeError(`${method}: no JSON-RPC response in the body`);
  if (rpc.error) throw new ProbeError(`${method}: MCP error ${Number(rpc.error.code)}`);
  return rpc.result ?? {};
}

/** Every page of one list (`tools`, `resources`, `prompts`): a page without its array is not MCP. */
function lister(
  call: (method: string, params: Record<string, unknown>) => Promise<Record<string, unknown>>,
  maxPages: number,
) {
  return (method: string, key: string): Promise<unknown[]> =>
    pages(async (cursor) => {
      const r = await call(method, cursor ? { cursor } : {});
      if (!Array.isArray(r[key])) throw new ProbeError(`${method}: the result has no ${key} list`);
      return {
        items: r[key] as unknown[],
        nextCursor: typeof r.nextCursor === "string" ? r.nextCursor : undefined,
      };
    }, maxPages);
}

function toolNamesOf(tools: unknown[]): string[] {
  return tools.map((t) => {
    const name = (t as { name?: unknown } | null)?.name;
    if (typeof name !== "string") throw new ProbeError("tools/list: a tool without a name");
    return name;
  });
}

async function listAll(
  caps: Record<string, unknown>,
  list: (method: string, key: string) => Promise<unknown[]>,
): Promise<Listed> {
  const [tools, resources, prompts] = await Promise.all([
    caps.tools ? list("tools/list", "tools") : [],
    caps.resources ? list("resources/list", "resources") : [],
    caps.prompts ? list("prompts/list", "prompts") : [],
  ]);
  return { toolNames: toolNamesOf(tools), resources: resources.length, prompts: prompts.length };
}

/** The lists over JSON-RPC, unless the handshake shows the server as already listed. */
function listIfNew(
  fingerprint: string,
  listedFingerprint: string | undefined,
  caps: Record<string, unknown>,
  maxPages: number,
  call: (method: string, params: Record<string, unknown>) => Promise<Record<string, unknown>>,
): Promise<Listed | undefined> {
  return fingerprint === listedFingerprint
    ? Promise.resolve(undefined)
    : listAll(caps, lister(call, maxPages));
}

/** The legacy protocol versions a probe accepts (the SDK's list, 1.32.2): newest first. */
export const LEGACY_PROTOCOL_VERSIONS = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
  "2024-11-05",
  "2024-10-07",
];

/**
 * Legacy streamable HTTP: initialize (a session, when the server gives one), the initialized
 * notification, the lists, and a DELETE of the session. The standalone GET stream is never
 * opened (only POSTs and the DELETE are sent): a probe needs no server-initiated message.
 */
async function legacyStreamable(
  url: URL,
  ctx: HttpContext,
  maxPages: number,
  clientInfo: { name: string; version: string },
  listedFingerprint: string | undefined,
  /** The binding of a session to keep (`keepSession`), or undefined to end it. */
  keepAs: string | undefined,
): Promise<Listing> {
  let session: string | undefined;
  let protocolVersion: string | undefined;
  const http = poster(url, ctx, () => ({
    ...(session ? { "mcp-session-id": session } : {}),
    ...(protocolVersion ? { "mcp-protocol-version": protocolVersion } : {}),
  }));
  const close = (): Promise<void> => deleteSession(url, ctx, session, protocolVersion);
  try {
    const init = await http.request("initialize", {
      protocolVersion: LEGACY_PROTOCOL_VERSIONS[0],
      capabilities: {},
      clientInfo,
    });
    const sessionId = init.headers["mcp-session-id"];
    session = typeof sessionId === "string" ? sessionId : undefined;
    // A server that does not know initialize (400/404/405, "method not found") may be a stateless-era one.
    if ([400, 404, 405].includes(init.status) || init.rpc?.error?.code === -32601)
      throw new WrongEra(`initialize refused (${init.status})`);
    const result = resultOf("initialize", init);
    const version = typeof result.protocolVersion === "string" ? result.protocolVersion : "";
    if (!LEGACY_PROTOCOL_VERSIONS.includes(version))
      throw new ProbeError("initialize: the server chose a protocol version this probe does not speak");
    protocolVersion = version;
    const notified = await http.notify("notifications/initialized");
    if (!ok(notified)) throw new HttpStatusError(notified, `HTTP ${notified} for notifications/initialized`);
    const caps = (result.capabilities ?? {}) as Record<string, unknown>;
    const fingerprint = fingerprintOf(protocolVersion, result.serverInfo, caps);
    const listed = await listIfNew(fingerprint, listedFingerprint, caps, maxPages, async (method, params) =>
      resultOf(method, await http.request(method, params)),
    );
    if (keepAs !== undefined && session) {
      const kept = { id: session, protocolVersion, fingerprint, boundTo: keepAs };
      return {
        era: "legacy",
        protocolVersion,
        listed,
        fingerprint,
        close: async () => undefined,
        session: kept,
      };
    }
    return { era: "legacy", protocolVersion, listed, fingerprint, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** Ends a session (DELETE), best effort, under its own deadline: even after the probe's expired. */
async function deleteSession(
  url: URL,
  ctx: HttpContext,
  session: string | undefined,
  protocolVersion: string | undefined,
): Promise<void> {
  if (!session) return;
  const headers = {
    "mcp-session-id": session,
    ...(protocolVersion ? { "mcp-protocol-version": protocolVersion } : {}),
  };
  // Its own deadline, cleared once done (AbortSignal.timeout would fire later anyway and
  // build a DOMException per probe: a measurable share of a probe's CPU).
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error("close deadline")), CLOSE_TIMEOUT_MS);
  // (its own wire too: what the close meets says nothing of the backend's health)
  await exchange({ method: "DELETE", url, headers }, { ...ctx, wire: {}, signal: ctl.signal }, discard)
    .catch(() => undefined)
    .finally(() => clearTimeout(timer));
}

/**
 * A ping on a kept session: the server of the last listing still answers, session and
 * credentials included. Undefined when the session is gone (404, as the protocol says, or
 * 400 from servers that answer so) or the ping is not answered with a result: the probe then
 * does a handshake, which decides. Any other failure (a status, the network, the deadline,
 * a refusal) is the probe's result, as for a handshake.
 */
async function pingSession(url: URL, ctx: HttpContext, kept: KeptSession): Promise<Listing | undefined> {
  const http = poster(url, ctx, () => ({
    "mcp-session-id": kept.id,
    "mcp-protocol-version": kept.protocolVersion,
  }));
  const reply = await http.request("ping", {});
  if (reply.status === 400 || reply.status === 404) {
    delete ctx.wire.errorStatus; // the session's end, not the backend's failure
    return undefined;
  }
  if (!ok(reply.status)) throw new HttpStatusError(reply.status, `HTTP ${reply.status} for ping`);
  if (!reply.rpc?.result) return undefined;
  return {
    era: "legacy",
    protocolVersion: kept.protocolVersion,
    listed: undefined,
    fingerprint: kept.fingerprint,
    close: async () => undefined,
    session: kept,
  };
}

/**
 * Ends a session a probe left open (`keepSession`): its DELETE, with the backend's current
 * credentials, checked and pinned like a probe's request; best effort, within 2 s.
 */
export async function endSession(
  target: ProbeTarget,
  session: KeptSession,
  opts: Pick<ProbeOptions, "auth" | "tokens" | "egress" | "resolve">,
): Promise<void> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error("close deadline")), CLOSE_TIMEOUT_MS);
  try {
    const url = new URL(target.url);
    url.hash = "";
    const resolve = opts.resolve ?? resolveAll;
    const { egress } = opts;
    const auth = opts.auth ?? { type: "none" };
    const prepared = await authHeaders(auth, opts.tokens ?? defaultTokens, {
      signal: ctl.signal,
      egress,
      resolve,
    });
    const ctx = { headers: prepared.headers, wire: {}, egress, resolve, signal: ctl.signal };
    await deleteSession(url, ctx, session.id, session.protocolVersion);
  } catch {
    // best effort: the backend's own session expiry is the fallback
  } finally {
    clearTimeout(timer);
  }
}

/** What a kept session is bound to: the backend's URL and the probe's credentials. */
function bindingOf(url: URL, headers: Record<string, string>): string {
  return createHash("sha256")
    .update(JSON.stringify([url.href, Object.entries(headers).sort()]))
    .digest("base64url");
}

/** The stateless era (2026-07-28): server/discover, per-request `_meta`, no session. */
async function stateless(
  url: URL,
  ctx: HttpContext,
  maxPages: number,
  clientInfo: { name: string; version: string },
  listedFingerprint: string | undefined,
): Promise<Listing> {
  const http = poster(url, ctx, () => ({ "mcp-protocol-version": STATELESS_PROTOCOL_VERSION }));
  const meta = {
    "io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": clientInfo,
  };
  const call = (method: string, params: Record<string, unknown>) =>
    http.request(method, { ...params, _meta: meta }, { "mcp-method": method });

  const first = await call("server/discover", {});
  // Legacy servers reject a sessionless request (400), do not route it (404), or refuse
  // the method (405, -32601); a stateless server answers with supportedVersions.
  const code = first.rpc?.error?.code;
  if (code !== -32004 && code !== -32001 && [400, 404, 405].includes(first.status))
    throw new WrongEra(`server/discover: HTTP ${first.status}`);
  if (code === -32601) throw new WrongEra("server/discover: method not found");
  const discovered = resultOf("server/discover", first);
  const versions = Array.isArray(discovered.supportedVersions)
    ? (discovered.supportedVersions as unknown[])
    : [];
  if (!versions.includes(STATELESS_PROTOCOL_VERSION))
    throw new WrongEra(`server/discover does not offer ${STATELESS_PROTOCOL_VERSION}`);
  const caps = (discovered.capabilities ?? {}) as Record<string, unknown>;
  const fingerprint = fingerprintOf(STATELESS_PROTOCOL_VERSION, discovered.serverInfo, caps);
  const listed = await listIfNew(fingerprint, listedFingerprint, caps, maxPages, async (method, params) =>
    resultOf(method, await call(method, params)),
  );
  return {
    era: "stateless",
    protocolVersion: STATELESS_PROTOCOL_VERSION,
    listed,
    fingerprint,
    close: async () => undefined, // no session to end
  };
}

// ---- failure classification (pure) -----------------------------------------------------

export interface FailureFacts {
  authStatus?: number | undefined;
  errorStatus?: number | undefined;
  networkCode?: string | undefined;
  refusedRedirect?: string | undefined;
  refusedEgress?: string | undefined;
  /** The probe's own deadline or the caller's signal fired. */
  aborted?: boolean;
}

export interface Failure {
  status: ProbeStatus;
  message: string;
  httpStatus?: number;
}

/**
 * What a failed probe means. The message is ours — statuses, codes and our own words —
 * never the backend's text: a backend's author must not be able to write into status.
 */
export function classifyFailure(
  error: unknown,
  facts: FailureFacts,
  ctx: { authConfigured: boolean; authLabel: string; timeoutMs: number; cancelled: boolean },
): Failure {
  if (facts.refusedEgress !== undefined)
    return { status: "unavailable", message: `not probed: ${facts.refusedEgress}` };
  if (facts.refusedRedirect !== undefined)
    return { status: "unavailable", message: `redirected: ${facts.refusedRedirect}` };
  const authStatus =
    facts.authStatus ??
    (error instanceof HttpStatusError && error.status >= 401 && error.status <= 403
      ? error.status
      : undefined);
  if (authStatus !== undefined)
    return ctx.authConfigured
      ? {
          status: "unauthenticated",
          message: `reachable, but HTTP ${authStatus} with the configured ${ctx.authLabel} credentials`,
          httpStatus: authStatus,
        }
      : {
          status: "unavailable",
          message: `HTTP ${authStatus}: the backend requires authentication and no outgoing auth is configured for it`,
          httpStatus: authStatus,
        };
  if (facts.aborted)
    return {
      status: "unavailable",
      message: ctx.cancelled ? "probe cancelled" : `no answer within ${ctx.timeoutMs} ms`,
    };
  const httpStatus = facts.errorStatus ?? (error instanceof HttpStatusError ? error.status : undefined);
  if (httpStatus !== undefined)
    return { status: "unavailable", message: `HTTP ${httpStatus} from the backend`, httpStatus };
  const code = facts.networkCode ?? errCode(error);
  if (code === "ECONNREFUSED") return { status: "unavailable", message: "connection refused" };
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return { status: "unavailable", message: "host not found" };
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET")
    return { status: "unavailable", message: "connection reset" };
  if (error instanceof ProbeError) return { status: "unavailable", message: short(error.message) };
  const mcpCode = (error as { code?: unknown } | undefined)?.code;
  if (typeof mcpCode === "number") return { status: "unavailable", message: `MCP error ${mcpCode}` };
  if (code !== undefined) return { status: "unavailable", message: `network error ${code}` };
  return { status: "unavailable", message: "the backend did not speak MCP as expected" };
}

// ---- the probe ---------------------------------------------------------------------------

const NO_COUNTS: ProbeCounts = { tools: 0, resources: 0, prompts: 0 };

export async function probe(target: ProbeTarget, opts: ProbeOptions): Promise<ProbeResult> {
  const auth = opts.auth ?? { type: "none" };
  const secrets = secretValues(auth);
  const maxPages = opts.maxPages ?? 100;
  const clientInfo = opts.clientInfo ?? DEFAULT_CLIENT;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error("probe deadline")), opts.timeoutMs);
  const onOuterAbort = (): void => ctl.abort(new Error("probe cancelled"));
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const signal = ctl.signal;
  const wire: Wire = {};
  const started = performance.now();
  let note: string | undefined;
  let latencyMs = 0;
  let endOld: (() => Promise<void>) | undefined;
  try {
    const url = new URL(target.url);
    url.hash = "";
    // One lookup per host per probe: every request of the probe (and each redirect hop) is checked.
    const lookups = new Map<string, Promise<string[]>>();
    const resolve: Resolver = (host) => {
      let hit = lookups.get(host);
      if (!hit) lookups.set(host, (hit = (opts.resolve ?? resolveAll)(host)));
      return hit;
    };
    // A token endpoint the policy refuses makes the probe's result (nothing sent anywhere),
    // rather than a probe without credentials; the token request checks again and pins.
    if (auth.type === "token_exchange") await checkEgress(new URL(auth.tokenUrl), wire, opts.egress, resolve);
    const prepared = await authHeaders(auth, opts.tokens ?? defaultTokens, {
      signal,
      egress: opts.egress,
      resolve,
    });
    note = prepared.note;
    const last = opts.listedFingerprint;
    let listing: Listing;
    if (target.transport === "sse") {
      // HTTP+SSE is a legacy-only transport
      const ctx: HttpContext = { headers: prepared.headers, wire, egress: opts.egress, resolve, signal };
      listing = await legacySse(url, ctx, maxPages, clientInfo, last);
    } else {
      const ctx: HttpContext = { headers: prepared.headers, wire, egress: opts.egress, resolve, signal };
      const binding = bindingOf(url, prepared.headers);
      // A kept session is pinged while it answers for this probe's URL, credentials and
      // listing; otherwise (or when the ping fails) it is ended and a handshake decides.
      const kept = opts.session;
      if (kept) endOld = () => deleteSession(url, ctx, kept.id, kept.protocolVersion);
      const pinged =
        kept && kept.boundTo === binding && kept.fingerprint === last
          ? await pingSession(url, ctx, kept)
          : undefined;
      if (pinged) endOld = undefined;
      const keepAs = opts.keepSession ? binding : undefined;
      const runLegacy = () => legacyStreamable(url, ctx, maxPages, clientInfo, last, keepAs);
      const runStateless = () => stateless(url, ctx, maxPages, clientInfo, last);
      const [first, second] =
        opts.eraHint === "legacy" ? [runLegacy, runStateless] : [runStateless, runLegacy];
      if (pinged) listing = pinged;
      else
        try {
          listing = await first();
        } catch (e) {
          if (!(e instanceof WrongEra)) throw e;
          delete wire.errorStatus; // the first era's refusal is not the backend's failure
          listing = await second();
        }
    }
    latencyMs = Math.round(performance.now() - started);
    await listing.close();
    await endOld?.();
    const degraded = latencyMs > opts.degradedLatencyMs;
    const listed = listing.listed;
    const counts = listed
      ? { tools: listed.toolNames.length, resources: listed.resources, prompts: listed.prompts }
      : { ...NO_COUNTS };
    const summary = listed
      ? `${counts.tools} tools, ${counts.resources} resources, ${counts.prompts} prompts`
      : "same server as at the last listing";
    return {
      status: degraded ? "degraded" : "ready",
      latencyMs,
      protocolVersion: listing.protocolVersion,
      era: listing.era,
      counts,
      capabilitiesKnown: listed !== undefined,
      toolNames: listed?.toolNames ?? [],
      fingerprint: listing.fingerprint,
      ...(listing.session ? { session: listing.session } : {}),
      message: scrub(
        degraded
          ? `slow: answered in ${latencyMs} ms (degraded above ${opts.degradedLatencyMs} ms); ${summary}`
          : `${summary} (${latencyMs} ms, MCP ${listing.protocolVersion ?? "?"})`,
        secrets,
      ),
    };
  } catch (e) {
    latencyMs = latencyMs || Math.round(performance.now() - started);
    await endOld?.();
    const failure = classifyFailure(
      e,
      { ...wire, ...(signal.aborted ? { aborted: true } : {}) },
      {
        authConfigured: authConfigured(auth),
        authLabel: authLabel(auth),
        timeoutMs: opts.timeoutMs,
        cancelled: opts.signal?.aborted === true,
      },
    );
    return {
      status: failure.status,
      latencyMs,
      counts: { ...NO_COUNTS },
      capabilitiesKnown: false,
      toolNames: [],
      message: scrub(note ? `${failure.message}; ${note}` : failure.message, secrets),
      ...(failure.httpStatus !== undefined ? { httpStatus: failure.httpStatus } : {}),
    };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onOuterAbort);
  }
}
