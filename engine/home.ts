// The PULUMI_HOME our CLI processes run with: a directory of this engine's own whose
// `plugins` is the shared plugin cache, and whose `logs` is a plain file.
//
// Why: since 3.2xx every CLI command writes a debug-level log of everything it does
// (each property of every RPC) to $PULUMI_HOME/logs, gzipped and then encrypted with the
// stack's secrets manager, and lists that directory to rotate it at start. There is no
// switch for it; when the directory cannot be created the CLI runs without it. Measured
// with bench/up-profile.ts (docs/benchmarks.md): ≈ 0.1 CPU-s of every `up`, and up to
// 500 MiB of logs nobody reads (our record of an operation is the Event and the status).
import { mkdir, rm, symlink, writeFile, lstat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** `PULUMI_HOME` of a CLI run as the user would have it: the given one, $PULUMI_HOME, ~/.pulumi. */
export function sharedHome(given?: string): string {
  return given ?? process.env.PULUMI_HOME ?? join(homedir(), ".pulumi");
}

/**
 * Creates (or repairs) `dir` as a PULUMI_HOME that shares `shared`'s plugins and has the
 * CLI's automatic debug log turned off. Returns `dir`.
 */
export async function engineHome(dir: string, shared: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const plugins = join(dir, "plugins");
  await mkdir(join(shared, "plugins"), { recursive: true });
  await symlink(join(shared, "plugins"), plugins).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "EEXIST") throw err;
  });
  const logs = join(dir, "logs");
  const st = await lstat(logs).catch(() => undefined);
  if (st?.isDirectory()) await rm(logs, { recursive: true, force: true });
  await writeFile(
    logs,
    "A file, not a directory: the Pulumi CLI then writes no automatic log (engine/home.ts).\n",
  );
  return dir;
}
