// vmcpctl preview -f FILE...: what applying the manifests would change in the cluster,
// from a real Pulumi preview of each VirtualMCPServer's stack. The stack state is the
// controller's (same backend), so the diff is against what the controller applied.
import { passphraseFromEnv } from "../engine/passphrase.js";
import { KubeConfig } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createEngine, stackName, type ResourceChange } from "../engine/stacks.js";
import { build } from "../program/desired.js";
import {
  disruptions,
  lineDiff,
  objectFieldChanges,
  type DiffResult,
  type ObjectChange,
} from "../program/diff.js";
import { gatherInputs, objectSet } from "../program/inputs.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import type { Manifest } from "../program/desired.js";
import type { VirtualMCPServer } from "../api/index.js";
import { MANIFEST_FLAGS, manifestPaths, parseArgs } from "./args.js";
import { overlay, readClusterObjects } from "../program/clusterobjects.js";
import { loadManifests } from "../program/manifests.js";
import { formatReport, hasChanges, parseFormat } from "./report.js";

const HELP = `usage: vmcpctl preview -f FILE|DIR [-f ...] [--kubeconfig F] [--output text|markdown|json]
                       [--detailed-exitcode] [--state-dir D | --backend-url URL] [--vmcp-image I]

Runs a Pulumi preview of each VirtualMCPServer in the manifests against a cluster:
the manifests are overlaid on the cluster's ToolHive objects (group members, auth,
tool and composite-tool configs), and each VirtualMCPServer's stack is previewed
against the state the controller keeps. Prints per-resource changes (fields, old →
new, secrets masked), a summary, and warnings for disruptive changes.

flags:
  -f, --filename        manifest file or directory (repeatable)
  --kubeconfig          kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  -o, --output          text (default), markdown (pull-request comments) or json
  --detailed-exitcode   exit 2 when there are changes
  --state-dir           the controller's Pulumi file backend (default $VMCP_STATE_DIR or
                        ~/.cache/vmcp-operator/state)
  --backend-url         any Pulumi backend URL instead (s3://, gs://, azblob://, postgres://)
  --vmcp-image          vmcp image (default: $VMCP_IMAGE or ${DEFAULT_VMCP_IMAGE})
The stack passphrase comes from $PULUMI_CONFIG_PASSPHRASE or $PULUMI_CONFIG_PASSPHRASE_FILE.

exit status: 0 no changes; 1 error; 2 changes (with --detailed-exitcode).
`;

/** Pulumi's wrong-passphrase failure (a long, repeated CommandError) as one line, or undefined. */
function passphraseError(err: unknown, stack: string): Error | undefined {
  const text = err instanceof Error ? err.message : String(err);
  if (!/incorrect passphrase|failed to decrypt|passphrase must be set/i.test(text)) return undefined;
  return new Error(
    `the passphrase does not decrypt the state of stack ${stack}: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the controller's`,
  );
}

const rethrowFor =
  (stack: { namespace: string; name: string }) =>
  (err: unknown): never => {
    throw passphraseError(err, stackName(stack)) ?? err;
  };

const KIND_OF_TYPE = (type: string): string => type.split(":").pop() ?? type;

function toObjectChange(vmcp: string, namespace: string, c: ResourceChange): ObjectChange | undefined {
  if (c.type.startsWith("pulumi:providers:")) return undefined;
  const kind = KIND_OF_TYPE(c.type);
  const before = c.before as Manifest | undefined;
  const after = c.after as Manifest | undefined;
  const name = (after ?? before)?.metadata?.name ?? c.name;
  const op = c.op.includes("replace")
    ? "replace"
    : c.op === "create"
      ? "create"
      : c.op === "delete"
        ? "delete"
        : "update";
  const fields = op === "update" || op === "replace" ? objectFieldChanges(kind, before, after) : [];
  return { vmcp, kind, namespace, name, op, fields };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    ...MANIFEST_FLAGS,
    flags: { ...MANIFEST_FLAGS.flags, kubeconfig: "string", "state-dir": "string", "backend-url": "string" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const files = manifestPaths(values);
  const format = parseFormat(values.output as string | undefined);

  const loaded = await loadManifests(files);
  process.stderr.write(loaded.unknown.map((u) => `warning: ${u}: ignored\n`).join(""));
  if (loaded.errors.length) {
    process.stderr.write(loaded.errors.map((e) => `error: ${e}\n`).join(""));
    return 1;
  }
  const kubeconfig = (values.kubeconfig as string | undefined) ?? process.env.KUBECONFIG;
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  const vmcps = loaded.objects.filter((o): o is VirtualMCPServer => o.kind === "VirtualMCPServer");
  if (!vmcps.length) throw new Error("no VirtualMCPServer in the manifests");
  const cluster = await readClusterObjects(
    kc,
    vmcps.map((v) => v.metadata.namespace ?? "default"),
  );
  process.stderr.write(cluster.warnings.map((w) => `warning: ${w}\n`).join(""));
  const objects = overlay(cluster.objects, loaded.objects);
  const set = objectSet(objects, loaded.configMaps);

  const stateDir =
    (values["state-dir"] as string | undefined) ??
    process.env.VMCP_STATE_DIR ??
    join(homedir(), ".cache", "vmcp-operator", "state");
  const backendUrl = values["backend-url"] as string | undefined;
  const backend = backendUrl ?? `file://${stateDir}`;
  const live = new Set(
    cluster.objects
      .filter((o) => o.kind === "VirtualMCPServer")
      .map((o) => `${o.metadata.namespace ?? "default"}/${o.metadata.name}`),
  );
  const engine = await createEngine({
    stateDir,
    backendUrl,
    passphrase: passphraseFromEnv(),
    kubeconfig,
  });
  const settings = {
    vmcpImage: (values["vmcp-image"] as string | undefined) || process.env.VMCP_IMAGE || DEFAULT_VMCP_IMAGE,
  };
  const report: DiffResult = { vmcps: [], summary: { create: 0, update: 0, replace: 0, delete: 0 } };
  try {
    for (const v of vmcps.sort((a, b) =>
      `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace}/${b.metadata.name}`,
      ),
    )) {
      const vmcp = set.get(
        "VirtualMCPServer",
        v.metadata.namespace ?? "default",
        v.metadata.name,
      ) as VirtualMCPServer;
      const key = `${vmcp.metadata.namespace}/${vmcp.metadata.name}`;
      const b = build(gatherInputs(set, vmcp), settings, { predictUrls: true });
      if (!b.desired) {
        process.stderr.write(b.problems.map((p) => `error: ${key}: ${p.message}\n`).join(""));
        return 1;
      }
      const stack = { namespace: b.desired.namespace, name: b.desired.name };
      if (!(await engine.exists(stack).catch(rethrowFor(stack)))) {
        if (live.has(key)) {
          process.stderr.write(
            `error: ${key}: the VirtualMCPServer is in the cluster, but its stack ${stackName(stack)} was not found in ${backend}: is --state-dir (or --backend-url) the controller's?\n`,
          );
          return 1;
        }
        process.stderr.write(
          `note: ${key}: no stack yet (a new VirtualMCPServer): every object is a create\n`,
        );
      }
      const preview = await engine.preview(b.desired).catch(rethrowFor(stack));
      const changes = preview.changes
        .map((c) => toObjectChange(key, b.desired!.namespace, c))
        .filter((c): c is ObjectChange => c !== undefined)
        .sort((x, y) => `${x.kind}/${x.name}`.localeCompare(`${y.kind}/${y.name}`));
      const cm = preview.changes.find((c) => KIND_OF_TYPE(c.type) === "ConfigMap");
      const configOf = (inputs: Record<string, unknown> | undefined) =>
        ((inputs?.data as Record<string, string> | undefined)?.["config.yaml"] ?? "") as string;
      const configDiff = cm ? lineDiff(configOf(cm.before), configOf(cm.after)) : "";
      for (const c of changes) report.summary[c.op]++;
      if (changes.length || configDiff)
        report.vmcps.push({ vmcp: key, changes, configDiff, warnings: changes.flatMap(disruptions) });
    }
  } finally {
    await engine.close();
  }
  process.stdout.write(formatReport(report, format, "vmcp-operator preview"));
  return values["detailed-exitcode"] && hasChanges(report) ? 2 : 0;
}
