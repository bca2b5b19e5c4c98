// /metrics (Prometheus text), /healthz (the process is alive) and /readyz (caches synced).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServerOptions {
  /** ":8080", "127.0.0.1:0", "0" … */
  addr: string;
  /** The exposition text; prom-client's registry renders asynchronously. */
  metrics: () => string | Promise<string>;
  ready: () => { ok: boolean; detail: string };
}

export function parseAddr(addr: string): { host: string | undefined; port: number } {
  const i = addr.lastIndexOf(":");
  const host = i > 0 ? addr.slice(0, i) : undefined;
  const port = Number(i >= 0 ? addr.slice(i + 1) : addr);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad listen address "${addr}"`);
  return { host, port };
}

export async function startServer(
  opts: ServerOptions,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      Promise.resolve()
        .then(opts.metrics)
        .then(
          (text) =>
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text),
          (err: unknown) =>
            res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(err)}\n`),
        );
    } else if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else if (path === "/readyz") {
      const r = opts.ready();
      res.writeHead(r.ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(`${r.detail}\n`);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  const { host, port } = parseAddr(opts.addr);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
