// A real redis-server (Debian's package, scripts/toolchain.sh redis) for vmcp's
// sessionStorage: started on the given addresses, no persistence, stopped by pid.
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { unusedPort } from "../../samples/mcpservers.js";
import { poll } from "./poll.js";

export interface RedisServer {
  /** host:port, as sessionStorage.address wants it (the first bind address). */
  address: string;
  /** One command over RESP (inline form), its raw reply. */
  command(line: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startRedis(hosts: string[]): Promise<RedisServer> {
  const port = await unusedPort();
  const bin = process.env.VMCP_REDIS_SERVER ?? "redis-server";
  const child: ChildProcess = spawn(
    bin,
    [
      "--bind",
      ...hosts,
      "--port",
      String(port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const host = hosts[0] as string;
  /** A reply is whole at its first CRLF, or, for a bulk string ($n), after n more bytes. */
  const complete = (out: string): boolean => {
    const eol = out.indexOf("\r\n");
    if (eol < 0) return false;
    if (!out.startsWith("$")) return true;
    const n = Number(out.slice(1, eol));
    return n < 0 || Buffer.byteLength(out) >= eol + 2 + n + 2;
  };
  const command = (line: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      let out = "";
      sock.once("connect", () => sock.write(`${line}\r\n`));
      sock.on("data", (d) => {
        out += d.toString();
        if (complete(out)) {
          sock.destroy();
          resolve(out);
        }
      });
      sock.once("error", reject);
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  await poll(
    `redis-server on ${host}:${port}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}: ${output.trim()}`);
      return (await command("PING")).startsWith("+PONG") ? true : undefined;
    },
    30_000,
    100,
  ).catch(async (err: unknown) => {
    await stop(); // a server that never answered must not outlive the test
    throw err;
  });
  return {
    address: `${host}:${port}`,
    command,
    stop,
  };
}
