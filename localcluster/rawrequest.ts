// A raw JSON request to the API server with the kubeconfig's credentials. client-node's
// typed clients pass bodies through its model serializer, which silently drops fields its
// models spell differently (a CRD's `x-kubernetes-validations`, `enum`s, `default`s): where
// the bytes must reach the server as written, use this instead.
import { request } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export class KubeRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "KubeRequestError";
  }
}

export async function kubeRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<unknown> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("kubeconfig has no current cluster");
  const url = new URL(path, server);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const opts: Parameters<typeof request>[1] = {
    method,
    headers: {
      accept: "application/json",
      ...(payload === undefined
        ? {}
        : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
    },
  };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(text === "" ? undefined : (JSON.parse(text) as unknown));
          return;
        }
        let message = text;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          // not a Status object: keep the raw text
        }
        reject(new KubeRequestError(status, `${method} ${url.pathname}: ${status} ${message}`));
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
