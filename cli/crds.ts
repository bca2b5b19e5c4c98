// `vmcpctl crds`: write the generated CustomResourceDefinitions (one file per CRD with
// --out, or a multi-document stream on stdout). The generation itself is pure (api/crd.ts).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { renderCRDs } from "../api/crd.js";

const HELP = `usage: vmcpctl crds [--out DIR]

Generate the CustomResourceDefinitions for toolhive.stacklok.dev from the API schemas.

flags:
  --out DIR   write one file per CRD (DIR/toolhive.stacklok.dev_<plural>.yaml)
              instead of printing a multi-document YAML stream to stdout
  -h, --help  show this help
`;

type Parsed = { help: true } | { help: false; out?: string } | { error: string };

function parseArgs(argv: string[]): Parsed {
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "-h" || arg === "--help") return { help: true };
    if (arg === "--out") {
      const dir = argv[++i];
      if (!dir) return { error: "--out needs a directory" };
      out = dir;
    } else if (arg.startsWith("--out=")) {
      out = arg.slice("--out=".length);
      if (!out) return { error: "--out needs a directory" };
    } else {
      return { error: `unknown argument "${arg}"` };
    }
  }
  return out === undefined ? { help: false } : { help: false, out };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if ("error" in args) {
    process.stderr.write(`vmcpctl crds: ${args.error}\n\n${HELP}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const crds = renderCRDs();
  if (args.out === undefined) {
    process.stdout.write(crds.map((c) => `---\n${c.content}`).join(""));
    return 0;
  }
  await mkdir(args.out, { recursive: true });
  for (const crd of crds) await writeFile(join(args.out, crd.fileName), crd.content);
  process.stderr.write(`wrote ${crds.length} CRDs to ${args.out}\n`);
  return 0;
}
