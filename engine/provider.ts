// Long-lived Kubernetes provider processes that the CLI attaches to instead of starting
// `pulumi-resource-kubernetes` for every operation (`PULUMI_DEBUG_PROVIDERS=kubernetes:<port>`).
//
// Two facts shape this (measured and read in bench/up-profile.ts, docs/benchmarks.md):
// - The CLI sends `Cancel` to every provider it closes, attached ones too, and the provider
//   (v4.25.0) has one cancellation context per process: after the first CLI exits, every
//   request of that provider fails ("client rate limiter Wait returned an error: context
//   canceled"). So the CLI reaches the provider through a gRPC pass-through that answers
//   `Cancel` itself and forwards everything else.
// - The provider keeps one configuration and one engine address per process (Configure and
//   Attach overwrite them), so one process serves one operation at a time: a pool, with a
//   process per concurrent operation, started on demand.
// A process that died is dropped and replaced by the next lease. Each carries the engine's
// owner mark (orphans.ts), so one left by a SIGKILLed controller is stopped at the next start.
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";

const CANCEL_PATH = "/pulumirpc.ResourceProvider/Cancel";

/** Path of the provider plugin the program's @pulumi/kubernetes asks for, under a PULUMI_HOME. */
export function providerBinary(pulumiHome: string): string {
  const require = createRequire(import.meta.url);
  const { version } = require("@pulumi/kubernetes/package.json") as { version: string };
  return join(pulumiHome, "plugins", `resource-kubernetes-v${version}`, "pulumi-resource-kubernetes");
}

interface Member {
  child: ChildProcess;
  upstream: http2.ClientHttp2Session;
  server: http2.Http2Server;
  /** The pass-through's port: what PULUMI_DEBUG_PROVIDERS names. */
  port: number;
  busy: boolean;
  alive: boolean;
}

export interface ProviderLease {
  /** `kubernetes:<port>`, the value of PULUMI_DEBUG_PROVIDERS for one CLI run. */
  readonly debugProviders: string;
  release(): void;
}

export interface ProviderPool {
  lease(): Promise<ProviderLease>;
  /** Pids of the live provider processes. */
  pids(): number[];
  /** Stops every provider process. */
  close(): Promise<void>;
}

/** Forwards every gRPC call to `upstream` except Cancel, which it answers with an empty reply. */
function passThrough(upstream: http2.ClientHttp2Session): http2.Http2Server {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    if (headers[":path"] === CANCEL_PATH) {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      // One gRPC message: not compressed, length 0 (google.protobuf.Empty).
      stream.end(Buffer.alloc(5));
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers))
      if (!k.startsWith(":") || k === ":method" || k === ":path") forwarded[k] = v;
    const call = upstream.request(forwarded);
    stream.pipe(call);
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on("response", (h) => {
      // A reply without a body carries its status in the headers ("trailers-only").
      if (h["grpc-status"] !== undefined) return stream.respond({ ...h }, { endStream: true });
      stream.respond({ ...h }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    });
    call.on("trailers", (t) => (trailers = { ...t }));
    call.on("data", (chunk: Buffer) => stream.write(chunk));
    call.on("end", () => {
      if (stream.headersSent && !stream.writableEnded) stream.end();
      else if (!stream.headersSent) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    call.on("error", () => stream.destroy());
    stream.on("error", () => call.destroy());
  });
  return server;
}

export function providerPool(opts: { binary: string; env: Record<string, string> }): ProviderPool {
  const members: Member[] = [];
  let closed = false;

  async function start(): Promise<Member> {
    // Its own process group, like the CLI's plugins; stdout carries the port, then nothing.
    const child = spawn(opts.binary, [], {
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "ignore"],
      detached: true,
    });
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once("line", (l) => (/^\d+$/.test(l.trim()) ? resolve(Number(l)) : reject(new Error(l))));
      child.once("error", reject);
      child.once("exit", (code, signal) =>
        reject(new Error(`the Kubernetes provider exited at start (${signal ?? code})`)),
      );
    });
    child.stdout!.resume();
    const upstream = http2.connect(`http://127.0.0.1:${port}`);
    upstream.on("error", () => undefined);
    const server = passThrough(upstream);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const member: Member = {
      child,
      upstream,
      server,
      port: (server.address() as AddressInfo).port,
      busy: false,
      alive: true,
    };
    child.once("exit", () => {
      member.alive = false;
      upstream.destroy();
      server.close();
      members.splice(members.indexOf(member), 1);
    });
    members.push(member);
    return member;
  }

  return {
    async lease() {
      if (closed) throw new Error("the provider pool is closed");
      const member = members.find((m) => m.alive && !m.busy) ?? (await start());
      member.busy = true;
      return {
        debugProviders: `kubernetes:${member.port}`,
        release: () => void (member.busy = false),
      };
    },
    pids: () => members.filter((m) => m.alive).map((m) => m.child.pid!),
    async close() {
      closed = true;
      await Promise.all(
        members.map(
          (m) =>
            new Promise<void>((resolve) => {
              if (!m.alive) return resolve();
              m.child.once("exit", () => resolve());
              m.child.kill("SIGTERM");
              setTimeout(() => m.alive && m.child.kill("SIGKILL"), 5_000).unref();
            }),
        ),
      );
    },
  };
}
