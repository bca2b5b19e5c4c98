#!/usr/bin/env node
// vmcpctl: one binary for every user path. Each subcommand lives in its own module
// and is loaded on demand, so `render` never pays for the Pulumi engine.
import { readFileSync } from "node:fs";
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
  return `usage: vmcpctl <command> [flags]\n\ncommands:\n${lines.join("\n")}\n\nRun 'vmcpctl <command> --help' for a command's flags, 'vmcpctl --version' for the version.\n`;
}

/** Node below 22.19 fails deep inside undici (fetch); say so up front instead. */
function nodeTooOld(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major < 22 || (major === 22 && minor < 19);
}

async function main(argv: string[]): Promise<number> {
  if (nodeTooOld()) {
    process.stderr.write(
      `vmcpctl: Node.js >= 22.19 is needed, this is ${process.versions.node} (scripts/vmcpctl and scripts/toolchain.sh node provide one)\n`,
    );
    return 1;
  }
  const [name, ...rest] = argv;
  if (name === "--version" || name === "version") {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    process.stdout.write(`vmcpctl ${pkg.version}\n`);
    return 0;
  }
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
