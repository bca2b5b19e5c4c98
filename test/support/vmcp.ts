// ToolHive's vmcp binary for the integration tests (scripts/toolchain.sh builds it and
// exports VMCP_BINARY): which version it is, and `vmcp validate` on a config file.
import { execFile } from "node:child_process";
import { toolhiveModuleVersion } from "../../localcluster/images.js";
import type { Manifest } from "../../program/desired.js";

export const VMCP = process.env.VMCP_BINARY ?? "vmcp";
export const VMCP_MODULE = "github.com/stacklok/toolhive";

/** The ToolHive module version the binary was built from (Go's embedded build info). */
export function vmcpModuleVersion(binary = VMCP): string | undefined {
  return toolhiveModuleVersion(binary);
}

/** The env a vMCP pod gets from secretKeyRefs (vmcp checks such variables are set). */
export function podEnv(objects: readonly Manifest[]): Record<string, string> {
  const env: Record<string, string> = { ...process.env } as Record<string, string>;
  const dep = objects.find((o) => o.kind === "Deployment") as
    | { spec: { template: { spec: { containers: { env?: { name: string; valueFrom?: unknown }[] }[] } } } }
    | undefined;
  for (const e of dep?.spec.template.spec.containers[0]?.env ?? [])
    if (e.valueFrom) env[e.name] = "placeholder";
  return env;
}

export interface Verdict {
  ok: boolean;
  /** The problems vmcp lists (one per line, without the log prefix), empty when ok. */
  problems: string[];
  output: string;
}

/**
 * The problems in vmcp's "Error: …" message: the "  - " list of a failed validation, or
 * the reason loading failed (with any indented detail lines, e.g. YAML field errors).
 */
export function vmcpProblems(output: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Error: "));
  if (start < 0) return [];
  const detail: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!/^\s+\S/.test(l)) break;
    detail.push(l.trim());
  }
  const listed = detail.filter((l) => l.startsWith("- ")).map((l) => l.slice(2));
  if (listed.length) return listed;
  const head = (lines[start] ?? "").replace(
    /^Error: configuration loading failed: (failed to process config: )?/,
    "",
  );
  return [[head, ...detail].join(" ")];
}

/** `vmcp validate --config file`; exit 0 means the runtime would start on this config. */
export function vmcpValidate(file: string, env: Record<string, string>): Promise<Verdict> {
  return new Promise((resolve) => {
    execFile(VMCP, ["validate", "--config", file], { env, encoding: "utf8" }, (err, stdout, stderr) => {
      const output = `${stdout}\n${stderr}`;
      resolve({ ok: !err, problems: err ? vmcpProblems(output) : [], output });
    });
  });
}

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
