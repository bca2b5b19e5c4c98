// A stable loopback address for a Service of the local plane. There is no kube-proxy here,
// so a ClusterIP routes nowhere; this TCP proxy listens on 127.0.0.1 and sends each new
// connection to a ready endpoint of the Service's EndpointSlices (as kube-proxy would), so
// a client keeps one URL while the Deployment rolls its pods. `sessionAffinity: ClientIP`
// is honoured as kube-proxy does: a client address stays on one pod while that pod is
// ready (an MCP session lives in one vMCP replica unless sessions are in Redis).
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { CoreV1Api, DiscoveryV1Api, type KubeConfig } from "@kubernetes/client-node";

type Endpoint = { address: string; port: number };

/** A client address's pod, and until when (ms) it holds without traffic. */
export interface Affinity {
  address: string;
  until: number;
}

/**
 * The endpoint of a new connection (pure): the pinned one while it is ready and not expired,
 * else the next in turn. Returns the pin to keep (undefined without affinity).
 */
export function pickEndpoint(
  ready: readonly Endpoint[],
  turn: number,
  now: number,
  affinity: { timeoutMs: number; pinned: Affinity | undefined } | undefined,
): { endpoint: Endpoint | undefined; pin: Affinity | undefined } {
  if (!ready.length) return { endpoint: undefined, pin: affinity?.pinned };
  const pinned = affinity?.pinned;
  const kept = pinned && pinned.until > now ? ready.find((e) => e.address === pinned.address) : undefined;
  const endpoint = kept ?? ready[turn % ready.length]!;
  return {
    endpoint,
    pin: affinity ? { address: endpoint.address, until: now + affinity.timeoutMs } : undefined,
  };
}

export interface ServiceProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The addresses new connections go to, as kube-proxy picks them: the ready endpoints of a
 * Service's EndpointSlices for `port`; when none is ready, those still serving while they
 * terminate (a pod in its preStop pause), so a rollout's last moment is not a refusal.
 * Pure: tested in test/unit.
 */
export function readyEndpoints(
  slices: readonly {
    endpoints?: {
      addresses?: string[];
      conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    }[];
    ports?: { port?: number }[];
  }[],
  port: number,
): Endpoint[] {
  const pick = (ok: (c: { ready?: boolean; serving?: boolean; terminating?: boolean }) => boolean) => {
    const out: Endpoint[] = [];
    for (const s of slices) {
      const target = s.ports?.find((p) => p.port !== undefined)?.port ?? port;
      for (const e of s.endpoints ?? [])
        if (ok(e.conditions ?? {})) for (const a of e.addresses ?? []) out.push({ address: a, port: target });
    }
    return out.sort((a, b) => a.address.localeCompare(b.address));
  };
  const ready = pick((c) => c.ready !== false);
  return ready.length ? ready : pick((c) => c.serving === true && c.terminating === true);
}

export async function serviceProxy(
  kc: KubeConfig,
  namespace: string,
  service: string,
  servicePort: number,
  opts: { port?: number } = {},
): Promise<ServiceProxy> {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  let next = 0;
  const sockets = new Set<Socket>();
  const pins = new Map<string, Affinity>();
  const pick = async (client: string) => {
    const [list, svc] = await Promise.all([
      discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${service}`,
      }),
      core.readNamespacedService({ namespace, name: service }),
    ]);
    const sticky = svc.spec?.sessionAffinity === "ClientIP";
    // kube-proxy's default stickiness: 3 hours
    const timeoutMs = (svc.spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10_800) * 1000;
    const { endpoint, pin } = pickEndpoint(
      readyEndpoints(list.items, servicePort),
      next++,
      Date.now(),
      sticky ? { timeoutMs, pinned: pins.get(client) } : undefined,
    );
    if (pin) pins.set(client, pin);
    return endpoint;
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.once("close", () => sockets.delete(client));
    client.pause();
    pick(client.remoteAddress ?? "").then(
      (target) => {
        if (!target) return client.destroy();
        const upstream = connect({ host: target.address, port: target.port });
        sockets.add(upstream);
        upstream.once("close", () => sockets.delete(upstream));
        upstream.once("connect", () => {
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        });
        upstream.once("error", () => client.destroy());
        client.once("error", () => upstream.destroy());
        client.once("close", () => upstream.destroy());
        upstream.once("close", () => client.destroy());
      },
      () => client.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
