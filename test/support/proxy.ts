// A TCP proxy in front of the API server that can freeze and thaw: frozen, every connection
// (open or new) stays open but nothing passes (a partition, or an API server that hangs),
// so requests neither fail nor return. Thawed, what was held back flows on: requests a
// partitioned replica sent long ago arrive late, the case fencing must make harmless.
import { connect, createServer, type Server, type Socket } from "node:net";

interface Pipe {
  client: Socket;
  upstream: Socket | undefined;
  /** Held back while frozen, per direction. */
  up: Buffer[];
  down: Buffer[];
}

export class FreezableProxy {
  private server: Server | undefined;
  private readonly pipes = new Set<Pipe>();
  private frozen = false;
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<void> {
    this.server = createServer((client) => {
      const pipe: Pipe = { client, upstream: undefined, up: [], down: [] };
      this.pipes.add(pipe);
      const close = () => {
        client.destroy();
        pipe.upstream?.destroy();
        this.pipes.delete(pipe);
      };
      client.on("error", close).on("close", close);
      client.on("data", (d: Buffer) =>
        this.frozen || !pipe.upstream ? pipe.up.push(d) : pipe.upstream.write(d),
      );
      if (!this.frozen) this.open(pipe, close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  private open(pipe: Pipe, close: () => void): void {
    const upstream = connect(this.target.port, this.target.host);
    pipe.upstream = upstream;
    upstream.on("error", close).on("close", close);
    upstream.on("data", (d: Buffer) => (this.frozen ? pipe.down.push(d) : pipe.client.write(d)));
    for (const d of pipe.up.splice(0)) upstream.write(d);
  }

  freeze(): void {
    this.frozen = true;
  }

  /** Lets everything held back through, in order, and passes traffic again. */
  thaw(): void {
    this.frozen = false;
    for (const pipe of this.pipes) {
      const close = () => {
        pipe.client.destroy();
        pipe.upstream?.destroy();
        this.pipes.delete(pipe);
      };
      if (!pipe.upstream) this.open(pipe, close);
      else for (const d of pipe.up.splice(0)) pipe.upstream.write(d);
      for (const d of pipe.down.splice(0)) pipe.client.write(d);
    }
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
    for (const p of this.pipes) {
      p.client.destroy();
      p.upstream?.destroy();
    }
    await closed;
    this.server = undefined;
  }
}
