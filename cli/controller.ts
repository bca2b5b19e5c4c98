// vmcpctl controller: runs the in-cluster controller (or against any kubeconfig).
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";
import { jsonLogger, type Level } from "../controller/log.js";
import { startController } from "../controller/main.js";
import { passphraseFromEnv } from "../engine/passphrase.js";
import { PREVIEW_GATES, type PreviewGate } from "../controller/steps.js";
import { KUBE_PROVIDERS, type KubeProvider } from "../controller/engine.js";
import { parseArgs, parsePodTemplatePolicy } from "./args.js";

const HELP = `usage: vmcpctl controller [flags]

Watches VirtualMCPServers and everything they reference, and reconciles each one into
its Pulumi stack (<namespace>.<name>), writing status back. Runs until SIGTERM/SIGINT,
then stops taking work and lets an in-flight Pulumi operation finish (up to
--shutdown-timeout).

flags:
  --kubeconfig FILE        kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --provider-kubeconfig F  kubeconfig of the Pulumi Kubernetes provider, which writes the vMCP
                           objects (default: --kubeconfig's file, $KUBECONFIG, in-cluster)
  --namespace NS           watch one namespace only (default: all)
  --workers N              parallel reconciles (default 2)
  --resync DURATION        re-check every VirtualMCPServer this often (default 5m)
  --state-dir DIR          Pulumi state directory (file:// backend; default /var/lib/vmcp-operator/state)
  --backend-url URL        any Pulumi backend instead (s3://, gs://, azblob://, postgres://; default $PULUMI_BACKEND_URL)
  --no-health-checks       do not probe backends over MCP (status then says only whether one is configured)
  --probe-interval DUR     default interval of the backend probes (default 30s; a VirtualMCPServer's
                           spec.config.operational.failureHandling.healthCheckInterval wins)
  --vmcp-image IMAGE       vmcp image (default: $VMCP_IMAGE or ${DEFAULT_VMCP_IMAGE})
  --metrics-addr ADDR      /metrics, /healthz, /readyz listen address (default :8080 in a cluster,
                           127.0.0.1:8080 elsewhere; "" = off)
  --leader-elect           elect a leader on a Lease before reconciling (for replicas > 1)
  --lease-namespace NS     namespace of the Lease (default: --namespace, $POD_NAMESPACE or default)
  --lease-duration DUR     how long a Lease stays valid unrenewed (default 15s): a dead replica's
                           shards (or leadership) move within two of these
  --shards N               shard the work over N Leases vmcp-operator-shard-0…N-1 (default 1: one
                           leader, Lease vmcp-operator). Above 1 every replica is active: each
                           VirtualMCPServer belongs to one shard (hash of namespace/name), a replica
                           reconciles the keys of the shards it holds and takes at most
                           ceil(N / live replicas); implies lease election. Same N on every replica.
  --shutdown-timeout DUR   how long to wait for in-flight work on shutdown (default 60s)
  --log-level LEVEL        debug|info|warn|error (default info)
  --probe-allow-loopback   let probes reach loopback addresses (local clusters; never link-local,
                           cloud metadata or the API server)
  --pod-template-policy P  what spec.podTemplateSpec may change: restricted (default: no host
                           namespaces, hostPath, privileged or added capabilities, the vmcp
                           container's image/command kept, no weaker security context),
                           baseline, or unrestricted (ToolHive's behaviour)
  --preview-gate MODE      off (default): a change is one pulumi up, its diff (the Preview Event,
                           status.lastPreview) taken from the up's own events. replacements: a
                           change to an applied stack is previewed first, and one that would
                           replace or delete the Deployment/Service or change a selector is held
                           (StackApplied=False, ChangeNeedsApproval) until the VirtualMCPServer is
                           annotated vmcp.stacklok.dev/approve-change=<hash the condition names>
  --kube-provider MODE     per-operation (default): every Pulumi CLI process starts its own
                           Kubernetes provider plugin. shared: the CLI processes attach to
                           long-lived provider processes of the controller, one per operation
                           running at a time (less CPU per change; docs/benchmarks.md)
  --check-flags            check the flags and exit (0 when they are valid) without connecting

The Pulumi state passphrase is read from $PULUMI_CONFIG_PASSPHRASE or
$PULUMI_CONFIG_PASSPHRASE_FILE; the controller does not start without one.
`;

/** "5m", "30s", "1h", "1500ms" → milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim());
  if (!m) throw new Error(`bad duration "${s}" (expected e.g. 30s, 5m, 1h)`);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Math.round(n * unit);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positional } = parseArgs(argv, {
    flags: {
      help: "boolean",
      kubeconfig: "string",
      "provider-kubeconfig": "string",
      namespace: "string",
      workers: "string",
      resync: "string",
      "state-dir": "string",
      "backend-url": "string",
      "no-health-checks": "boolean",
      "vmcp-image": "string",
      "metrics-addr": "string",
      "leader-elect": "boolean",
      "lease-namespace": "string",
      shards: "string",
      "lease-duration": "string",
      "shutdown-timeout": "string",
      "log-level": "string",
      "probe-interval": "string",
      "check-flags": "boolean",
      "probe-allow-loopback": "boolean",
      "pod-template-policy": "string",
      "preview-gate": "string",
      "kube-provider": "string",
    },
    aliases: { h: "help", n: "namespace" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positional.length) throw new Error(`unexpected argument ${positional[0]}`);
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const workers = Number(str("workers") ?? "2");
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`--workers must be a positive integer`);
  const level = (str("log-level") ?? "info") as Level;
  if (!["debug", "info", "warn", "error"].includes(level)) throw new Error(`bad --log-level ${level}`);
  const log = jsonLogger({ level, base: { component: "vmcp-operator" } });
  const shutdownMs = parseDuration(str("shutdown-timeout") ?? "60s");
  // Outside a cluster (a laptop, CI) /metrics stays on loopback unless asked otherwise.
  const metricsAddr =
    str("metrics-addr") ?? (process.env.KUBERNETES_SERVICE_HOST ? ":8080" : "127.0.0.1:8080");
  const namespace = str("namespace");
  const backendUrl = str("backend-url") ?? process.env.PULUMI_BACKEND_URL;
  const resyncMs = parseDuration(str("resync") ?? "5m");
  const probeInterval = str("probe-interval");
  const probeIntervalMs = probeInterval === undefined ? undefined : parseDuration(probeInterval);
  if (probeIntervalMs !== undefined && probeIntervalMs <= 0)
    throw new Error(`--probe-interval must be above 0`);
  const shards = Number(str("shards") ?? "1");
  if (!Number.isInteger(shards) || shards < 1 || shards > 1024)
    throw new Error(`--shards: expected an integer from 1 to 1024, found "${str("shards")}"`);
  const leaseDurationMs = parseDuration(str("lease-duration") ?? "15s");
  if (leaseDurationMs < 1000) throw new Error(`--lease-duration must be at least 1s`);
  const podTemplatePolicy = parsePodTemplatePolicy(str("pod-template-policy"));
  const previewGate = (str("preview-gate") ?? "off") as PreviewGate;
  if (!PREVIEW_GATES.includes(previewGate))
    throw new Error(`--preview-gate: expected ${PREVIEW_GATES.join(" or ")}, found "${previewGate}"`);
  const kubeProvider = str("kube-provider") as KubeProvider | undefined;
  if (kubeProvider !== undefined && !KUBE_PROVIDERS.includes(kubeProvider))
    throw new Error(`--kube-provider: expected ${KUBE_PROVIDERS.join(" or ")}, found "${kubeProvider}"`);
  if (values["check-flags"]) {
    process.stdout.write("flags ok\n");
    return 0;
  }
  const passphrase = passphraseFromEnv(); // before anything starts: no state with an empty key

  // Signals are handled from the start: a SIGTERM while starting (informer sync, stack
  // unlocks) must still end in a clean stop, not in Node's default kill.
  let signals = 0;
  let stopRequested: (() => void) | undefined;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (sig: string): void => {
    if (++signals > 1) {
      log.warn("second signal; exiting now", { signal: sig });
      process.exit(1);
    }
    log.info("signal received; shutting down", { signal: sig });
    stopRequested?.();
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  const controller = await startController({
    ...(str("kubeconfig") ? { kubeconfig: str("kubeconfig") } : {}),
    ...(str("provider-kubeconfig") ? { kubeconfigPath: str("provider-kubeconfig") } : {}),
    ...(namespace ? { namespace } : {}),
    workers,
    passphrase,
    resyncMs,
    stateDir: str("state-dir") ?? "/var/lib/vmcp-operator/state",
    ...(backendUrl ? { backendUrl } : {}),
    healthChecks: values["no-health-checks"] !== true,
    ...(probeIntervalMs !== undefined ? { probeIntervalMs } : {}),
    probeEgress: { allowLoopback: values["probe-allow-loopback"] === true },
    podTemplatePolicy,
    previewGate,
    ...(kubeProvider ? { provider: kubeProvider } : {}),
    vmcpImage: str("vmcp-image") ?? process.env.VMCP_IMAGE ?? DEFAULT_VMCP_IMAGE,
    ...(metricsAddr ? { metricsAddr } : {}),
    leaderElect: values["leader-elect"] === true,
    shards,
    leaseDurationMs,
    leaseNamespace: str("lease-namespace") ?? namespace ?? process.env.POD_NAMESPACE ?? "default",
    log,
    onLostLeadership: () => {
      log.error("lost leadership; exiting so a fresh process can campaign again");
      process.exit(1);
    },
  });

  await stopSignal;
  return (await controller.stop(shutdownMs)) ? 0 : 1;
}
