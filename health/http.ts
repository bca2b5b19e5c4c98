// One HTTP exchange of a probe over node:http / node:https, with keep-alive: every request a
// probe sends (streamable HTTP of either era, the HTTP+SSE stream and its POSTs, token
// requests). A probe is a handful of small requests, where `fetch` (undici, web streams,
// DOMException per abort) cost more CPU than the exchange itself (docs/benchmarks.md).
// Guarantees:
//   - redirects are followed by hand, same origin only (`redirectStep`), at most MAX_REDIRECTS,
//     or not at all (`redirects: "none"`); so the probe's headers (credentials) never reach
//     another origin;
//   - the egress policy is checked at every hop on resolved addresses, and the connection goes
//     only to those addresses (a pinned `lookup`): DNS answering differently between check and
//     connect (rebinding) cannot take it elsewhere;
//   - the probe's signal covers the request and the reading of the body;
//   - a body is read to MAX_BODY_BYTES at most; an SSE body only up to the event wanted.
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequestArgs,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import { isIPv6, type LookupFunction } from "node:net";
import { StringDecoder } from "node:string_decoder";
import type { EgressPolicy, Resolver } from "./egress.js";
import { checkEgress, errCode, followed, ProbeError, recordStatus, redirectStep, type Wire } from "./wire.js";

/** A JSON or SSE body larger than this is not a probe's answer. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** A body the probe does not read (a redirect's, a notification's) of at most this length is drained, the socket kept. */
const DISCARD_BYTES = 64 * 1024;

// Pool sizing. A probe sends its 3–6 requests back to back (the three lists in parallel), and
// the next probe of that backend comes a probe interval (30 s) later. So a socket is worth
// keeping for milliseconds, not for the interval: 1,000 backends would otherwise hold 1,000
// idle connections (and their server-side slots). `timeout` closes a free socket after 1 s —
// also well under the keep-alive timeouts of common servers (Node 5 s, uvicorn 5 s), so a
// socket the server is about to close is not picked (and Node shortens it further to a
// server's `Keep-Alive: timeout=` hint). On a socket in use it only emits an unheeded
// 'timeout': the probe's own deadline governs requests. maxSockets 4 per backend covers the
// parallel lists; maxFreeSockets 2 is what a probe's next request can use; maxTotalSockets
// bounds the process (the monitor runs 32 probes at once by default: ≈100 sockets) and
// queues beyond it, under each request's deadline.
const POOL = { keepAlive: true, timeout: 1000, maxSockets: 4, maxFreeSockets: 2, maxTotalSockets: 512 };

/** Request options with the addresses the egress check allowed, as one key. */
interface Pinned {
  pinned?: string;
}

// The agent pools sockets by getName() (host:port, and TLS options for https), which knows
// nothing of the pinned lookup: a socket opened to an address checked for one request would
// serve a later request to the same host:port whose check resolved other addresses (or ran
// under another policy). The pinned set is part of the name, so a pooled socket is only
// reused by a request pinned to exactly the same addresses.
const pinnedName = (name: string, options: Pinned | undefined): string =>
  options?.pinned === undefined ? name : `${name}|pinned:${options.pinned}`;

class PinnedHttpAgent extends HttpAgent {
  override getName(options?: ClientRequestArgs & Pinned): string {
    return pinnedName(super.getName(options), options);
  }
}

class PinnedHttpsAgent extends HttpsAgent {
  override getName(options?: RequestOptions & Pinned): string {
    return pinnedName(super.getName(options), options);
  }
}

const agents = { "http:": new PinnedHttpAgent(POOL), "https:": new PinnedHttpsAgent(POOL) };

/** Answers name resolution from the checked addresses only: the connection goes nowhere else. */
function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const all = addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }));
  return (_host, options, callback) => {
    const fit =
      options.family === 4 || options.family === 6 ? all.filter((a) => a.family === options.family) : all;
    if (fit.length === 0) {
      const e = Object.assign(new Error("no checked address of the requested family"), { code: "ENOTFOUND" });
      callback(e, "", 0);
    } else if (options.all) callback(null, fit);
    else callback(null, fit[0]!.address, fit[0]!.family);
  };
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

export interface HttpContext {
  /** Sent with every request (the probe's outgoing auth), over the request's own headers. */
  headers: Record<string, string>;
  wire: Wire;
  egress: EgressPolicy | undefined;
  resolve: Resolver;
  /** Covers every hop: connect, request, and the reading of the body. */
  signal: AbortSignal;
  /**
   * "none": a redirect is the reply, for the caller to refuse (a token request carries a
   * client secret and a subject token that no redirect may take along). Default: same origin.
   */
  redirects?: "same-origin" | "none";
}

export interface Reply<T> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
}

/** Reads (or drops) the body of the response the request ended with. */
export type BodyReader<T> = (res: IncomingMessage) => Promise<T>;

/**
 * One request, redirects followed by the probe's rule, its body read by `read` under the
 * signal. Statuses, network errors and refusals are recorded in `ctx.wire`.
 */
export async function exchange<T>(
  request: HttpRequest,
  ctx: HttpContext,
  read: BodyReader<T>,
): Promise<Reply<T>> {
  const headers: OutgoingHttpHeaders = { ...request.headers, ...ctx.headers };
  if (request.body !== undefined) headers["content-length"] = Buffer.byteLength(request.body);
  let url = request.url;
  for (let hop = 0; ; hop++) {
    const pinned = await checkEgress(url, ctx.wire, ctx.egress, ctx.resolve);
    let res: IncomingMessage;
    try {
      res = await send(url, request.method, headers, request.body, pinned, ctx.signal);
    } catch (e) {
      ctx.wire.networkCode ??= errCode(e);
      throw e;
    }
    const status = res.statusCode ?? 0;
    const step =
      ctx.redirects === "none"
        ? ({ kind: "response" } as const)
        : redirectStep(url, request.method, status, res.headers.location ?? null);
    if (step.kind === "response") {
      recordStatus(ctx.wire, request.method, status);
      try {
        return { status, headers: res.headers, body: await read(res) };
      } catch (e) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        ctx.wire.networkCode ??= errCode(e);
        throw e;
      }
    }
    await discard(res);
    url = followed(ctx.wire, step, hop);
  }
}

/** Sends one request; resolves with the response, its body unread. The signal destroys it, body included. */
function send(
  url: URL,
  method: string,
  headers: OutgoingHttpHeaders,
  body: string | undefined,
  pinned: readonly string[] | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const scheme = url.protocol;
    if (scheme !== "http:" && scheme !== "https:")
      return reject(new ProbeError(`${scheme.replace(/:$/, "")} is not an HTTP URL`));
    const options: ClientRequestArgs & Pinned = {
      method,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: agents[scheme],
      ...(pinned ? { lookup: pinnedLookup(pinned), pinned: pinned.join(",") } : {}),
    };
    const req = (scheme === "https:" ? httpsRequest : httpRequest)(options);
    // One listener per request (no AbortSignal.any, no DOMException): destroying the request
    // ends its socket, so a response still being read fails too.
    const onAbort = (): void => void req.destroy(signal.reason ?? new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    req.once("close", () => signal.removeEventListener("abort", onAbort));
    req.once("response", resolve);
    req.on("error", reject);
    req.end(body);
  });
}

const tooLarge = (): ProbeError => new ProbeError(`response body over ${MAX_BODY_BYTES / 1024 / 1024} MiB`);
const cutShort = (): Error =>
  Object.assign(new Error("the connection closed before the body ended"), { code: "ECONNRESET" });

/** The whole body as text; over MAX_BODY_BYTES the connection is dropped and a ProbeError thrown. */
export function readText(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    if (Number(res.headers["content-length"]) > MAX_BODY_BYTES) {
      res.destroy();
      return reject(tooLarge());
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      res.destroy();
      reject(tooLarge());
    });
    res.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.once("error", reject);
    // (an Error, its stack included, only when the body really was cut: not at every close)
    res.once("close", () => res.complete || reject(cutShort()));
  });
}

/**
 * How long a stream may take to end after the event wanted: a server that closes the stream
 * once it has answered (most do, the MCP SDKs included) gives the socket back to the pool; one
 * that keeps it open loses it then. The probe does not wait for it either way.
 */
const STREAM_END_GRACE_MS = 100;

/** The rest of a stream after its answer: drained until it ends (socket kept) or cut after the grace. */
function linger(res: IncomingMessage): void {
  if (res.complete) return;
  const cut = setTimeout(() => res.destroy(), STREAM_END_GRACE_MS);
  cut.unref();
  let size = 0;
  res.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > DISCARD_BYTES) res.destroy();
  });
  res.once("close", () => clearTimeout(cut));
}

/** One SSE event: its type ("message" unless the event names one) and its data lines joined. */
export interface SseEvent {
  type: string;
  data: string;
}

/**
 * Parses a text/event-stream body as it arrives (events split anywhere; LF, CRLF or CR line
 * ends), handing each event with data to `onEvent` until that returns true: the rest of the
 * stream is then the caller's, and `onEnd` is not called. Otherwise `onEnd` once: at the end
 * (a last event without its blank line counted), or with the error when the body was cut short
 * or grew past MAX_BODY_BYTES (the connection dropped).
 */
export function readSse(
  res: IncomingMessage,
  onEvent: (e: SseEvent) => boolean | void,
  onEnd: (err?: Error) => void,
): void {
  const decoder = new StringDecoder("utf8");
  let buffer = "";
  let size = 0;
  let type = "";
  let data: string[] = [];
  let done = false;
  const end = (err?: Error): void => {
    if (done) return;
    done = true;
    onEnd(err);
  };
  /** One line; true when `onEvent` took the stream. */
  const line = (l: string): boolean => {
    if (l === "") {
      const event = data.length ? { type: type || "message", data: data.join("\n") } : undefined;
      type = "";
      data = [];
      return event !== undefined && onEvent(event) === true;
    }
    if (l.startsWith(":")) return false;
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    const value = colon < 0 ? "" : l.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    return false;
  };
  const lines = (): boolean => {
    for (let at = buffer.search(/[\r\n]/); at >= 0; at = buffer.search(/[\r\n]/)) {
      // a CR that ends the text so far may be the first half of a CRLF: wait for more
      if (buffer[at] === "\r" && at === buffer.length - 1) return false;
      const eol = buffer.startsWith("\r\n", at) ? 2 : 1;
      const l = buffer.slice(0, at);
      buffer = buffer.slice(at + eol);
      if (line(l)) return true;
    }
    return false;
  };
  res.on("data", (chunk: Buffer) => {
    if (done) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      res.destroy();
      return end(tooLarge());
    }
    buffer += decoder.write(chunk);
    if (lines()) done = true;
  });
  res.once("end", () => {
    if (done) return;
    buffer += decoder.end();
    if (buffer.endsWith("\r")) buffer += "\n"; // nothing more can come: a final CR ends its line
    if (lines() || line(buffer) || line("")) done = true;
    else end();
  });
  res.once("error", (e) => end(e));
  // (an Error, its stack included, only when the body really was cut: not at every close)
  res.once("close", () => done || res.complete || end(cutShort()));
}

/**
 * An SSE body read event by event until `match` returns something for one's data; the rest
 * of the stream is left to `linger`. Undefined when the stream ends without a match.
 */
export function readEvents<T>(
  res: IncomingMessage,
  match: (data: string) => T | undefined,
): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    readSse(
      res,
      ({ data }) => {
        const hit = data ? match(data) : undefined;
        if (hit === undefined) return false;
        resolve(hit);
        linger(res);
        return true;
      },
      (err) => (err ? reject(err) : resolve(undefined)),
    );
  });
}

/**
 * Drops a body the probe does not need. One already complete (an empty chunked body, as
 * `writeHead(202).end()` sends, arrives with the headers) or short of known length is
 * drained, so the socket goes back to the pool; any other (a stream, a long chunked body)
 * is cut, with its socket, rather than waited for.
 */
export function discard(res: IncomingMessage): Promise<undefined> {
  return new Promise((resolve) => {
    const length = Number(res.headers["content-length"]);
    const drain = res.complete || res.statusCode === 204 || res.statusCode === 304 || length <= DISCARD_BYTES;
    res.once("end", () => resolve(undefined));
    res.once("close", () => resolve(undefined));
    res.once("error", () => resolve(undefined));
    if (drain) res.resume();
    else res.destroy();
  });
}
