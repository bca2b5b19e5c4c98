// Waiting for components: poll an HTTP(S) endpoint or a predicate, fail fast when the
// component's process has already died (its log tail goes into the error).
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import { tail, type RunningProcess } from "./processes.js";

export interface Probe {
  url: string;
  token?: string;
  /** PEM CA bundle for https; read lazily because the apiserver writes it after it starts. */
  ca?: () => string | undefined;
}

/** One GET; resolves with the status code and body (never rejects on HTTP errors). */
export function get(probe: Probe, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(probe.url);
    const headers: Record<string, string> = probe.token ? { authorization: `Bearer ${probe.token}` } : {};
    const ca = probe.ca?.();
    const req =
      url.protocol === "https:"
        ? httpsRequest(url, { headers, timeout: timeoutMs, ...(ca !== undefined ? { ca } : {}) })
        : httpRequest(url, { headers, timeout: timeoutMs });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on("error", reject);
    req.end();
  });
}

function died(proc: RunningProcess): Error {
  const how = proc.exit?.signal ? `signal ${proc.exit.signal}` : `code ${String(proc.exit?.code)}`;
  return new Error(
    `${proc.name} exited (${how}) while starting; last log lines (${proc.logFile}):\n${tail(proc.logFile)}`,
  );
}

/**
 * Polls `check` every `intervalMs` until it returns true. Throws if `watch` exits first or
 * `timeoutMs` passes; the last check error is kept for the timeout message.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; watch?: readonly RunningProcess[] },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = "";
  for (;;) {
    const dead = opts.watch?.find((p) => p.exit !== undefined);
    if (dead) throw died(dead);
    try {
      if (await check()) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${opts.timeoutMs}ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
      );
    }
    await sleep(opts.intervalMs ?? 100);
  }
}

/** Waits until `probe` answers 200 (e.g. etcd /health, apiserver /readyz). */
export function waitForHttpOk(
  what: string,
  probe: Probe,
  opts: { timeoutMs: number; watch?: readonly RunningProcess[] },
): Promise<void> {
  return waitFor(
    what,
    async () => {
      const res = await get(probe);
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.slice(0, 300)}`);
      return true;
    },
    { ...opts, intervalMs: 100 },
  );
}
