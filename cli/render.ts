// vmcpctl render -f FILE...: the objects each VirtualMCPServer in the manifests would
// get, computed offline. Invalid input: field-path errors on stderr, nothing on stdout.
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { promisify } from "node:util";
import { canonicalYaml } from "../program/canonical.js";
import { diffRendered } from "../program/diff.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import { renderAll, type RenderResult } from "../program/render.js";
import type { OperatorSettings } from "../program/inputs.js";
import { MANIFEST_FLAGS, manifestPaths, parseArgs, parsePodTemplatePolicy } from "./args.js";
import {
  atGitRevision,
  loadManifests,
  underDirectory,
  workTree,
  type ManifestSource,
} from "../program/manifests.js";
import { formatReport, hasChanges, parseFormat } from "./report.js";

const HELP = `usage: vmcpctl render -f FILE|DIR [-f ...] [--output yaml|json] [--vmcp-image IMAGE] [--strict]
       vmcpctl render --diff BASE -f FILE|DIR [-f ...] [--output text|markdown|json] [--detailed-exitcode]

Renders, with no cluster, the ConfigMap (with the vmcp config.yaml), Deployment,
Service and RBAC that vmcp-operator creates for each VirtualMCPServer found in the
manifests, using the MCPGroup members, auth, tool and composite-tool objects given
alongside it. MCPServer URLs are predicted from ToolHive's naming when the manifests
carry no status.

With --diff, renders both the given manifests and their BASE version (a directory
holding the same relative paths, or a git revision such as origin/main) and prints
what changes in the generated objects and in each config.yaml: a CI preview that
needs no cluster.

flags:
  -f, --filename        manifest file or directory (repeatable)
  -o, --output          yaml (default) or json; with --diff: text (default), markdown or json
  --vmcp-image          vmcp container image (default: $VMCP_IMAGE or ${DEFAULT_VMCP_IMAGE})
  --diff BASE           compare with BASE (directory or git revision)
  --detailed-exitcode   with --diff: exit 2 when there are changes
  --pod-template-policy restricted (default), baseline or unrestricted: what
                        spec.podTemplateSpec may change (as vmcpctl controller checks it)
  --strict              fail on fields the schema does not know (default: warn, naming the
                        nearest known field; the API server would prune them)

exit status: 0 rendered (no changes with --diff); 1 invalid input or a reference that
cannot be resolved; 2 changes (with --detailed-exitcode).
`;

const git = async (args: string[]): Promise<string> =>
  (await promisify(execFile)("git", args, { maxBuffer: 64 << 20 })).stdout;

function baseSource(base: string): ManifestSource {
  return existsSync(base) && statSync(base).isDirectory() ? underDirectory(base) : atGitRevision(base, git);
}

/** Loads and renders; on invalid input prints the errors and returns undefined. */
async function renderFrom(
  files: string[],
  source: ManifestSource,
  settings: OperatorSettings,
  label: string,
  strict: boolean,
) {
  const loaded = await loadManifests(files, source);
  process.stderr.write(loaded.notes.map((n) => `note: ${label}${n}\n`).join(""));
  if (strict) loaded.errors.push(...loaded.unknown);
  else
    process.stderr.write(
      loaded.unknown.map((u) => `warning: ${label}${u}: ignored (--strict: an error)\n`).join(""),
    );
  if (loaded.errors.length) {
    process.stderr.write(loaded.errors.map((e) => `error: ${label}${e}\n`).join(""));
    return undefined;
  }
  const result = renderAll(loaded.objects, settings, loaded.configMaps);
  process.stderr.write(result.warnings.map((w) => `warning: ${label}${w}\n`).join(""));
  if (result.errors.length) {
    process.stderr.write(result.errors.map((e) => `error: ${label}${e}\n`).join(""));
    return undefined;
  }
  return result;
}

function printObjects(result: RenderResult, output: string): void {
  if (output === "json") {
    const items = result.rendered.flatMap((r) => r.objects);
    process.stdout.write(`${JSON.stringify({ apiVersion: "v1", kind: "List", items }, null, 2)}\n`);
    return;
  }
  const docs = result.rendered.flatMap((r) =>
    r.objects.map((o) => `# Source: VirtualMCPServer ${r.vmcp}\n${canonicalYaml(o)}`),
  );
  process.stdout.write(docs.map((d) => `---\n${d}`).join(""));
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    ...MANIFEST_FLAGS,
    flags: { ...MANIFEST_FLAGS.flags, diff: "string", strict: "boolean", "pod-template-policy": "string" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const files = manifestPaths(values);
  const settings = {
    vmcpImage: (values["vmcp-image"] as string | undefined) || process.env.VMCP_IMAGE || DEFAULT_VMCP_IMAGE,
    podTemplatePolicy: parsePodTemplatePolicy(values["pod-template-policy"] as string | undefined),
  };
  const base = values.diff as string | undefined;
  const strict = values.strict === true;

  if (base !== undefined) {
    const format = parseFormat(values.output as string | undefined);
    const before = await renderFrom(files, baseSource(base), settings, `${base}: `, strict);
    const after = await renderFrom(files, workTree, settings, "", strict);
    if (!before || !after) return 1;
    const diff = diffRendered(before.rendered, after.rendered);
    process.stdout.write(formatReport(diff, format, `vmcp-operator render diff: ${base} → working tree`));
    return values["detailed-exitcode"] && hasChanges(diff) ? 2 : 0;
  }

  const output = (values.output as string | undefined) ?? "yaml";
  if (output !== "yaml" && output !== "json")
    throw new Error(`--output: expected yaml or json, found "${output}"`);
  const result = await renderFrom(files, workTree, settings, "", strict);
  if (!result) return 1;
  if (!result.rendered.length) {
    process.stderr.write("error: no VirtualMCPServer in the manifests\n");
    return 1;
  }
  printObjects(result, output);
  return 0;
}
