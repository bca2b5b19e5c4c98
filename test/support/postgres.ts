// A real PostgreSQL server for a test: Debian's binaries ($VMCP_POSTGRES_BIN, set by
// scripts/toolchain.sh env), a fresh cluster in a temp dir, on a free loopback port, stopped
// and removed by stop(). TCP logins need a password (scram-sha-256), so a backend that
// connects proves its credentials really reach the server; the Unix socket, in the private
// temp dir, is trusted and serves the test's own queries (psql).
// postgres refuses to run as root: as root, the server runs as nobody (on every Debian),
// which owns the temp dir, so no system user needs to be created.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePorts } from "../../localcluster/ports.js";
import { poll } from "./poll.js";

const run = promisify(execFile);
const NOBODY = 65534;

export interface Postgres {
  readonly port: number;
  /** The login the backend uses (owner of `database`, not a superuser). */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** A postgres:// backend URL WITHOUT the password: that comes from PGPASSWORD (see env). */
  readonly url: string;
  /** What the backend's process needs besides the URL: the password, as a Secret would give it. */
  readonly env: Record<string, string>;
  /** Rows of `sql` run as the superuser in `database`, each a list of column texts. */
  query(sql: string): Promise<string[][]>;
  /** Stops the server (fast shutdown, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

function binDir(): string {
  const bin = process.env.VMCP_POSTGRES_BIN;
  if (!bin || !existsSync(join(bin, "postgres")))
    throw new Error(
      `no PostgreSQL server at VMCP_POSTGRES_BIN=${bin ?? ""}: run 'eval "$(bash scripts/toolchain.sh env)"' (scripts/toolchain.sh postgres installs it)`,
    );
  return bin;
}

export async function startPostgres(opts: { name: string }): Promise<Postgres> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  // setpriv: the server (and initdb) as nobody; the exec keeps the pid, so stop() signals postgres itself.
  const as = (cmd: string, args: string[]): [string, string[]] =>
    asRoot
      ? [
          "setpriv",
          ["--reuid", `${NOBODY}`, "--regid", `${NOBODY}`, "--clear-groups", join(bin, cmd), ...args],
        ]
      : [join(bin, cmd), args];
  const dir = mkdtempSync(join(tmpdir(), `vmcp-${opts.name}-pg-`));
  const data = join(dir, "data");
  const port = (await freePorts(1))[0]!;
  const superPassword = randomBytes(18).toString("base64url");
  const password = randomBytes(18).toString("base64url");
  const user = "pulumi_state";
  const database = "pulumi";
  let server: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  const psql = async (sql: string, db = database): Promise<string[][]> => {
    const { stdout } = await run(
      join(bin, "psql"),
      [
        "-h",
        dir,
        "-p",
        `${port}`,
        "-U",
        "postgres",
        "-d",
        db,
        "-X",
        "-A",
        "-t",
        "-F",
        "\t",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
      ],
      { env: { ...process.env, PGPASSWORD: "" }, maxBuffer: 64 << 20 },
    );
    return stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.split("\t"));
  };
  const stop = async (): Promise<void> => {
    if (server && server.exitCode === null && server.signalCode === null) {
      server.kill("SIGINT"); // fast shutdown
      const killed = setTimeout(() => server?.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killed);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (asRoot) chownSync(dir, NOBODY, NOBODY);
    const pwfile = join(dir, "pwfile");
    writeFileSync(pwfile, superPassword, { mode: 0o600 });
    if (asRoot) chownSync(pwfile, NOBODY, NOBODY);
    const [initdb, initArgs] = as("initdb", [
      "-D",
      data,
      "-U",
      "postgres",
      "--pwfile",
      pwfile,
      "--auth-host=scram-sha-256",
      "--auth-local=trust",
      "-E",
      "UTF8",
      "--no-sync",
    ]);
    await run(initdb, initArgs, { cwd: dir });
    rmSync(pwfile);
    const [postgres, args] = as("postgres", [
      "-D",
      data,
      "-p",
      `${port}`,
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "log_min_messages=warning",
    ]);
    const lines: string[] = [];
    server = spawn(postgres, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    exited = new Promise((resolve) => server!.on("exit", () => resolve()));
    for (const s of [server.stdout, server.stderr]) s?.on("data", (c: Buffer) => lines.push(c.toString()));
    await poll(
      `PostgreSQL on 127.0.0.1:${port}`,
      async () => {
        if (server!.exitCode !== null) throw new Error(`postgres exited: ${lines.join("").slice(-2000)}`);
        await psql("SELECT 1", "postgres");
        return true;
      },
      30_000,
      100,
    );
    await psql(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`, "postgres");
    await psql(`CREATE DATABASE ${database} OWNER ${user}`, "postgres");
    return {
      port,
      user,
      password,
      database,
      url: `postgres://${user}@127.0.0.1:${port}/${database}?sslmode=disable`,
      env: { PGPASSWORD: password },
      query: (sql) => psql(sql),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
