// vmcpctl render -f FILE...: the objects each VirtualMCPServer in the manifests would
// get, computed offline. Invalid input: field-path errors on stderr, nothing on stdout.
import { canonicalYaml } from "../program/canonical.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import { renderAll } from "../program/render.js";
import { parseArgs } from "./args.js";
import { loadManifests } from "./manifests.js";

const HELP = `usage: vmcpctl render -f FILE|DIR [-f ...] [--output yaml|json] [--vmcp-image IMAGE]

Renders, with no cluster, the ConfigMap (with the vmcp config.yaml), Deployment,
Service and RBAC that vmcp-operator creates for each VirtualMCPServer found in the
manifests, using the MCPGroup members, auth, tool and composite-tool objects given
alongside it. MCPServer URLs are predicted from ToolHive's naming when the manifests
carry no status.

flags:
  -f, --filename   manifest file or directory (repeatable)
  -o, --output     yaml (default) or json
  --vmcp-image     vmcp container image (default: $VMCP_IMAGE or ${DEFAULT_VMCP_IMAGE})

exit status: 0 rendered; 1 invalid input or a reference that cannot be resolved.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    flags: { filename: "strings", output: "string", "vmcp-image": "string", help: "boolean" },
    aliases: { f: "filename", o: "output", h: "help" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const files = (values.filename as string[] | undefined) ?? [];
  const output = (values.output as string | undefined) ?? "yaml";
  if (!files.length) throw new Error("no manifests: pass -f FILE (see --help)");
  if (output !== "yaml" && output !== "json")
    throw new Error(`--output: expected yaml or json, found "${output}"`);

  const loaded = await loadManifests(files);
  if (loaded.errors.length) {
    process.stderr.write(loaded.errors.map((e) => `error: ${e}\n`).join(""));
    return 1;
  }
  const image = (values["vmcp-image"] as string | undefined) ?? process.env.VMCP_IMAGE ?? DEFAULT_VMCP_IMAGE;
  const result = renderAll(loaded.objects, { vmcpImage: image });
  process.stderr.write(result.warnings.map((w) => `warning: ${w}\n`).join(""));
  if (result.errors.length) {
    process.stderr.write(result.errors.map((e) => `error: ${e}\n`).join(""));
    return 1;
  }
  if (!result.rendered.length) {
    process.stderr.write("error: no VirtualMCPServer in the manifests\n");
    return 1;
  }
  if (output === "json") {
    const items = result.rendered.flatMap((r) => r.objects);
    process.stdout.write(`${JSON.stringify({ apiVersion: "v1", kind: "List", items }, null, 2)}\n`);
  } else {
    const docs = result.rendered.flatMap((r) =>
      r.objects.map((o) => `# Source: VirtualMCPServer ${r.vmcp}\n${canonicalYaml(o)}`),
    );
    process.stdout.write(docs.map((d) => `---\n${d}`).join(""));
  }
  return 0;
}
