// A small flag parser: repeated `-f`, `--flag value` and `--flag=value`, with
// errors that name the flag. Enough for vmcpctl without another dependency.
import { POD_TEMPLATE_POLICIES, type PodTemplatePolicy } from "../program/podpolicy.js";
export interface FlagSpec {
  /** Flag name without dashes → kind. Aliases map a short name to a long one. */
  flags: Record<string, "string" | "strings" | "boolean">;
  aliases?: Record<string, string>;
}

export type Parsed = { values: Record<string, string | string[] | boolean>; positional: string[] };

export function parseArgs(argv: readonly string[], spec: FlagSpec): Parsed {
  const values: Parsed["values"] = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const [rawName, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2) as [string, string | undefined];
    const name = spec.aliases?.[rawName] ?? rawName;
    const kind = spec.flags[name];
    if (!kind) throw new Error(`unknown flag ${arg}`);
    if (kind === "boolean") {
      values[name] = inline === undefined ? true : inline !== "false";
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`flag ${arg} needs a value`);
    if (kind === "strings") values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    else values[name] = value;
  }
  return { values, positional };
}

/** --pod-template-policy: restricted (default), baseline or unrestricted. */
export function parsePodTemplatePolicy(value: string | undefined): PodTemplatePolicy {
  if (value === undefined) return "restricted";
  if ((POD_TEMPLATE_POLICIES as readonly string[]).includes(value)) return value as PodTemplatePolicy;
  throw new Error(
    `--pod-template-policy: expected one of ${POD_TEMPLATE_POLICIES.join(", ")}, found "${value}"`,
  );
}

/** The flags of the commands that read manifests (render, preview); each adds its own. */
export const MANIFEST_FLAGS: FlagSpec = {
  flags: {
    filename: "strings",
    output: "string",
    "vmcp-image": "string",
    "detailed-exitcode": "boolean",
    help: "boolean",
  },
  aliases: { f: "filename", o: "output", h: "help" },
};

/** The manifest paths (-f), at least one. */
export function manifestPaths(values: Parsed["values"]): string[] {
  const files = (values.filename as string[] | undefined) ?? [];
  if (!files.length) throw new Error("no manifests: pass -f FILE (see --help)");
  return files;
}
