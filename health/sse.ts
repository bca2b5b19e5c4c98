// The legacy HTTP+SSE transport (MCP 2024-11-05) for probes, over the probe's HTTP client
// (./http.ts): so its GET stream and its POSTs are checked against the egress policy and
// pinned to the checked addresses like every other request of a probe, redirects followed
// by the same rule. The server names the endpoint for the client's messages in an
// `endpoint` event of the stream (it must keep the stream's origin), and answers every
// message on the stream, as `message` events.
import { discard, exchange, readSse, type HttpContext } from "./http.js";
import { ProbeError } from "./wire.js";

/** A JSON-RPC response as the probe reads it. */
export interface SseRpcResponse {
  id?: unknown;
  result?: Record<string, unknown>;
  error?: { code?: number; message?: string };
}

/** A non-2xx answer to the stream's GET or to a message's POST. */
export class SseStatusError extends ProbeError {
  constructor(
    readonly status: number,
    what: string,
  ) {
    super(`HTTP ${status} for ${what}`);
  }
}

export interface SseSession {
  /** Sends a request and waits for its response on the stream. */
  request(method: string, params: Record<string, unknown>): Promise<SseRpcResponse>;
  notify(method: string): Promise<void>;
  /** Headers for every later POST (MCP-Protocol-Version once negotiated). */
  setHeader(name: string, value: string): void;
  /** Ends the stream (and with it the session, for this transport). */
  close(): void;
}

/**
 * Opens the stream (GET `url`), waits for the `endpoint` event, and returns the session.
 * Everything runs under `ctx.signal`; a stream that ends fails what still waits on it.
 */
export async function openSse(url: URL, ctx: HttpContext): Promise<SseSession> {
  const waiting = new Map<number, { resolve: (r: SseRpcResponse) => void; reject: (e: Error) => void }>();
  let endpoint: { resolve: (u: URL) => void; reject: (e: Error) => void } | undefined;
  let broken: Error | undefined;
  const fail = (err: Error): void => {
    broken ??= err;
    endpoint?.reject(err);
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };
  const reply = await exchange(
    { method: "GET", url, headers: { accept: "text/event-stream" } },
    ctx,
    async (res) => (res.statusCode === 200 ? res : discard(res)),
  );
  const stream = reply.body;
  if (!stream) throw new SseStatusError(reply.status, "the event stream");
  if (!String(reply.headers["content-type"] ?? "").includes("text/event-stream")) {
    stream.destroy();
    throw new ProbeError("the event stream's GET answered with another content type");
  }
  const onAbort = (): void => void stream.destroy();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const endpointUrl = new Promise<URL>((resolve, reject) => (endpoint = { resolve, reject }));
  readSse(
    stream,
    (event) => {
      if (event.type === "endpoint") {
        let target: URL | undefined;
        try {
          target = new URL(event.data, url);
        } catch {
          /* an invalid endpoint: below */
        }
        // Messages carry the probe's credentials: they go to the stream's origin only.
        if (target?.origin === url.origin) endpoint?.resolve(target);
        else endpoint?.reject(new ProbeError("the endpoint event names another origin (or none)"));
        return;
      }
      if (event.type !== "message") return;
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      for (const m of [message].flat()) {
        const id = (m as SseRpcResponse | null)?.id;
        const w = typeof id === "number" ? waiting.get(id) : undefined;
        if (!w) continue;
        waiting.delete(id as number);
        w.resolve(m as SseRpcResponse);
      }
    },
    (err) => {
      ctx.signal.removeEventListener("abort", onAbort);
      fail(err ?? new ProbeError("the event stream ended"));
    },
  );
  const post = (await endpointUrl.catch((e: unknown) => {
    stream.destroy();
    throw e;
  })) as URL;
  const headers: Record<string, string> = { "content-type": "application/json" };
  let nextId = 0;
  const send = async (body: unknown, what: string): Promise<void> => {
    const r = await exchange(
      { method: "POST", url: post, headers: { ...headers }, body: JSON.stringify(body) },
      ctx,
      discard,
    );
    if (r.status < 200 || r.status >= 300) throw new SseStatusError(r.status, what);
  };
  return {
    async request(method, params) {
      if (broken) throw broken;
      const id = nextId++;
      const answer = new Promise<SseRpcResponse>((resolve, reject) => waiting.set(id, { resolve, reject }));
      answer.catch(() => undefined); // (a send failure below is the one reported)
      try {
        await send({ jsonrpc: "2.0", id, method, params }, method);
      } catch (e) {
        waiting.delete(id);
        throw e;
      }
      return answer;
    },
    notify: (method) => send({ jsonrpc: "2.0", method }, method),
    setHeader: (name, value) => void (headers[name] = value),
    close: () => void stream.destroy(),
  };
}
