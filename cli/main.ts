#!/usr/bin/env node
// vmcpctl: one binary for every user path. Each subcommand lives in its own module
// and is loaded on demand, so `render` never pays for the Pulumi engine.
const commands: Record<
  string,
  { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }
> = {
  demo: {
    summary: "run a local cluster, real MCP servers, a VirtualMCPServer and the controller",
    load: () => import("./demo.js"),
  },
  render: {
    summary: "render the objects for VirtualMCPServer manifests (offline)",
    load: () => import("./render.js"),
  },
  preview: {
    summary: "Pulumi preview of manifest changes against a cluster",
    load: () => import("./preview.js"),
  },
  crds: { summary: "write the generated CustomResourceDefinitions", load: () => import("./crds.js") },
  cluster: {
    summary: "start/stop a local control plane (etcd + kube-apiserver + …)",
    load: () => import("./cluster.js"),
  },
  controller: {
    summary: "run the controller (watch, reconcile, status)",
    load: () => import("./controller.js"),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: vmcpctl <command> [flags]\n\ncommands:\n${lines.join("\n")}\n\nRun 'vmcpctl <command> --help' for a command's flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`vmcpctl: unknown command "${name}"\n\n${usage()}`);
    return 1;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`vmcpctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
