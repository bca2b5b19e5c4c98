// An HTTP proxy in front of the API server for one client (a Pulumi provider) with a gate:
// the test arms it for one kind of request (e.g. the apply of one ConfigMap), and the first
// matching request is held, neither forwarded nor answered, until the test releases it. So
// an operation can be stopped at a chosen point inside the provider, and the test knows it
// is there (the held request) instead of guessing from timing. The proxy speaks plain HTTP
// on loopback and forwards over TLS, authenticating with the token it is given (a client
// sends no bearer token over plain HTTP).
import { request as httpsRequest, Agent } from "node:https";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface HeldRequest {
  method: string;
  /** Path and query, as the client sent them. */
  path: string;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** When the client's connection closed while it was held (its process died), if it did. */
  closedAt?: number;
}

type Match = (method: string, path: string) => boolean;

interface Pending {
  held: HeldRequest;
  req: IncomingMessage;
  res: ServerResponse;
  /** The body, read while held: a paused socket would not notice its peer's death. */
  body: Buffer[];
}

export class GateProxy {
  private server: Server | undefined;
  private readonly agent: Agent;
  private armed: { match: Match; resolve: (h: HeldRequest) => void } | undefined;
  private readonly pending: Pending[] = [];
  /** "METHOD path" of every request seen, in order (for a failing test's message). */
  readonly seen: string[] = [];
  port = 0;

  constructor(private readonly target: { server: string; caPem: string; token: string }) {
    this.agent = new Agent({ ca: target.caPem, keepAlive: true });
  }

  async listen(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /** A kubeconfig (text) that reaches the API server through this proxy (which adds the token). */
  kubeconfig(): string {
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: gate, cluster: {server: 'http://127.0.0.1:" + this.port + "'}}]",
      "users: [{name: gate, user: {}}]",
      "contexts: [{name: gate, context: {cluster: gate, user: gate}}]",
      "current-context: gate",
      "",
    ].join("\n");
  }

  /** Holds the next request that matches; resolves once one is held. */
  hold(match: Match): Promise<HeldRequest> {
    return new Promise((resolve) => {
      this.armed = { match, resolve };
    });
  }

  /** Whether the held request's client is still connected (the caller is alive and waiting). */
  heldAndWaiting(): HeldRequest | undefined {
    return this.pending.find((p) => p.held.closedAt === undefined)?.held;
  }

  /**
   * Lets the held requests through, as a partition that heals would: a request whose client
   * is still connected is forwarded and answered; one whose client died is dropped (nothing
   * of it left the proxy). Returns how many were forwarded.
   */
  release(): number {
    this.armed = undefined;
    let forwarded = 0;
    for (const p of this.pending.splice(0)) {
      if (p.held.closedAt !== undefined) continue;
      this.forward(p.req, p.res, Buffer.concat(p.body));
      forwarded++;
    }
    return forwarded;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    this.seen.push(`${method} ${path}`);
    if (this.armed?.match(method, path)) {
      const { resolve } = this.armed;
      this.armed = undefined;
      const held: HeldRequest = { method, path, at: Date.now() };
      const body: Buffer[] = [];
      req.on("data", (d: Buffer) => body.push(d));
      res.once("close", () => {
        if (!res.writableFinished) held.closedAt ??= Date.now();
      });
      this.pending.push({ held, req, res, body });
      resolve(held);
      return;
    }
    this.forward(req, res);
  }

  /** Sends the request on (with `body` when it was read while held) and pipes the answer back. */
  private forward(req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
    const url = new URL(this.target.server);
    const upstream = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: url.host, authorization: `Bearer ${this.target.token}` },
        agent: this.agent,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    if (body) upstream.end(body);
    else req.pipe(upstream);
  }

  async close(): Promise<void> {
    for (const p of this.pending.splice(0)) p.res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.agent.destroy();
    this.server = undefined;
  }
}
