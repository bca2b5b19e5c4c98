// vmcpctl cluster: a local control plane for people (the demo, poking around with kubectl).
//   up     start it, print the kubeconfig, stay in the foreground until Ctrl-C, tear down
//   down   stop a plane started by `up` (from another shell, or after `up` was killed)
//   status show the recorded processes, whether they are alive and their memory
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import {
  consoleLogger,
  formatMiB,
  installCrdsFromDir,
  isAlive,
  rssBytes,
  startControlPlane,
  terminateGroups,
  vmcpImages,
  type ComponentProcess,
} from "../localcluster/index.js";
import { DEFAULT_VMCP_IMAGE } from "../program/names.js";

const USAGE = `usage: vmcpctl cluster <up|down|status> [flags]

  up       start etcd + kube-apiserver (+ controller-manager, scheduler, kwok fake node)
           on 127.0.0.1 and stay in the foreground; Ctrl-C tears everything down
  down     stop the plane recorded in <dir>/cluster.json
  status   show the recorded processes, liveness and RSS

flags:
  --dir D        work dir (default $VMCP_CLUSTER_DIR or /tmp/vmcp-cluster)
  --minimal      up: only etcd + kube-apiserver (no GC, no Deployments becoming Available)
  --keep         up: leave etcd data and logs in the work dir after teardown
  --crds D       up: install the CRDs in D (default: the repo's crds/ when it has any)
  --no-crds      up: install no CRDs
  --run-pods     up: also run the process kubelet (root): pods of ToolHive's vmcp image
                 (${DEFAULT_VMCP_IMAGE}) really run, as local processes of
                 $VMCP_BINARY, each in its own network and mount namespace; other pods
                 stay on kwok's node
  -h, --help     this help

Binaries come from $KUBEBUILDER_ASSETS, then PATH:
  eval "$(bash scripts/toolchain.sh env)"
`;

interface ClusterState {
  supervisorPid: number;
  dir: string;
  server: string;
  kubeconfig: string;
  full: boolean;
  keep: boolean;
  startedAt: string;
  processes: ComponentProcess[];
}

function defaultDir(): string {
  return process.env.VMCP_CLUSTER_DIR ?? "/tmp/vmcp-cluster";
}

function statePath(dir: string): string {
  return join(dir, "cluster.json");
}

function readState(dir: string): ClusterState | undefined {
  const path = statePath(dir);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as ClusterState;
}

/** The repo's generated CRDs, found relative to this module (dist/cli/ or cli/). */
function repoCrdDir(): string | undefined {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const candidate of [resolve(here, "../../crds"), resolve(here, "../crds")]) {
    if (existsSync(candidate) && readdirSync(candidate).some((f) => /\.ya?ml$/.test(f))) return candidate;
  }
  return undefined;
}

function out(line = ""): void {
  process.stdout.write(`${line}\n`);
}

async function up(
  dir: string,
  opts: { minimal: boolean; keep: boolean; crds: string | undefined; runPods: boolean },
): Promise<number> {
  const previous = readState(dir);
  if (previous && (isAlive(previous.supervisorPid) || previous.processes.some((p) => isAlive(p.pid)))) {
    process.stderr.write(`a control plane is already running from ${dir} (pid ${previous.supervisorPid});\n`);
    process.stderr.write(`stop it with: vmcpctl cluster down --dir ${dir}\n`);
    return 1;
  }
  const log = consoleLogger("cluster");
  if (opts.runPods && opts.minimal) {
    process.stderr.write("vmcpctl cluster: --run-pods needs the full plane (not --minimal)\n");
    return 1;
  }
  let images: Record<string, string> | undefined;
  if (opts.runPods) {
    images = vmcpImages(process.env.VMCP_BINARY ?? "vmcp");
    if (!(DEFAULT_VMCP_IMAGE in images))
      log("note: $VMCP_BINARY plays another tag than the controller deploys", {
        plays: Object.keys(images).join(),
        deploys: DEFAULT_VMCP_IMAGE,
      });
  }
  const plane = await startControlPlane({
    dir,
    full: !opts.minimal,
    keep: opts.keep,
    log,
    ...(images ? { runPods: { images } } : {}),
  });
  let exitCode = 0;
  try {
    if (opts.crds) {
      const kc = new KubeConfig();
      kc.loadFromString(plane.kubeconfig);
      const names = await installCrdsFromDir(kc, opts.crds);
      log("CRDs established", { count: names.length, from: opts.crds });
    }
    const state: ClusterState = {
      supervisorPid: process.pid,
      dir,
      server: plane.server,
      kubeconfig: plane.kubeconfigPath,
      full: plane.full,
      keep: opts.keep,
      startedAt: new Date().toISOString(),
      processes: [...plane.processes],
    };
    writeFileSync(statePath(dir), `${JSON.stringify(state, null, 2)}\n`);

    out();
    out(
      `control plane ready in ${((plane.timings.total ?? 0) / 1000).toFixed(1)}s (${plane.full ? "full" : "minimal"})`,
    );
    out(`  server      ${plane.server}`);
    out(`  kubeconfig  ${plane.kubeconfigPath}   (admin, system:masters)`);
    out(`  logs        ${join(dir, "logs")}/`);
    for (const p of plane.processes)
      out(`  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} rss ${formatMiB(rssBytes(p.pid))}`);
    if (plane.kubelet) {
      out(`  process kubelet          node ${plane.kubelet.nodeName}, pods in ${plane.kubelet.podCidr}`);
      out(
        `                           gateway ${plane.kubelet.gateway} (pods reach the host's backends here)`,
      );
      out(`                           pod logs under ${join(dir, "kubelet", "pods")}/`);
    }
    out();
    out("In another shell:");
    out();
    out(`export KUBECONFIG=${plane.kubeconfigPath}`);
    out(kubectlHint());
    out();
    out(`Ctrl-C (or 'vmcpctl cluster down --dir ${dir}') stops it.`);

    exitCode = await untilSignalOrDeath(plane.processes, log);
  } finally {
    rmSync(statePath(dir), { force: true });
    await plane.stop();
  }
  return exitCode;
}

/** kubectl on PATH, or what to do without one. */
function kubectlHint(): string {
  const dirs = (process.env.PATH ?? "").split(":").filter(Boolean);
  const found = dirs.map((d) => join(d, "kubectl")).find((f) => existsSync(f));
  return found
    ? `kubectl get nodes   # ${found}`
    : "# no kubectl on PATH: install Debian's (apt-get install kubernetes-client) or any v1.34+ kubectl";
}

/** Resolves 0 on SIGINT/SIGTERM/SIGHUP, 1 if a component dies on its own. */
function untilSignalOrDeath(
  procs: readonly ComponentProcess[],
  log: ReturnType<typeof consoleLogger>,
): Promise<number> {
  return new Promise((resolveExit) => {
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    let stopping = false;
    const finish = (code: number): void => {
      clearInterval(timer);
      // Stay subscribed: a second Ctrl-C during teardown forces an immediate exit
      // (the process-exit hook then SIGKILLs every component).
      for (const s of signals) {
        process.removeListener(s, onSignal);
        process.once(s, () => process.exit(130));
      }
      resolveExit(code);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log("stopping", { signal });
      finish(0);
    };
    const timer = setInterval(() => {
      const dead = procs.find((p) => !isAlive(p.pid));
      if (dead && !stopping) {
        stopping = true;
        log("component died; tearing down", { name: dead.name, log: dead.logFile });
        finish(1);
      }
    }, 1000);
    for (const s of signals) process.on(s, onSignal);
  });
}

async function down(dir: string): Promise<number> {
  const state = readState(dir);
  if (!state) {
    out(`no control plane recorded in ${statePath(dir)}; nothing to stop`);
    return 0;
  }
  // Ask `up` to tear down itself (it also removes its files); then make sure.
  if (isAlive(state.supervisorPid)) {
    process.kill(state.supervisorPid, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(100);
  }
  const killed = await terminateGroups(state.processes, 5000);
  rmSync(statePath(dir), { force: true });
  out(killed.length > 0 ? `stopped ${killed.join(", ")}` : "control plane stopped");
  return 0;
}

function status(dir: string): number {
  const state = readState(dir);
  if (!state) {
    out(`no control plane recorded in ${statePath(dir)}`);
    return 1;
  }
  out(`server ${state.server}  kubeconfig ${state.kubeconfig}  started ${state.startedAt}`);
  let alive = 0;
  for (const p of state.processes) {
    const up = isAlive(p.pid);
    if (up) alive++;
    out(
      `  ${p.name.padEnd(24)} pid ${String(p.pid).padEnd(8)} ${up ? "running" : "gone   "} rss ${formatMiB(rssBytes(p.pid))}`,
    );
  }
  return alive === state.processes.length ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: "string" },
      minimal: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      crds: { type: "string" },
      "no-crds": { type: "boolean", default: false },
      "run-pods": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [sub, ...extra] = positionals;
  if (values.help || sub === undefined) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 1;
  }
  if (extra.length > 0) {
    process.stderr.write(`vmcpctl cluster: unexpected arguments: ${extra.join(" ")}\n`);
    return 1;
  }
  const dir = resolve(values.dir ?? defaultDir());
  switch (sub) {
    case "up":
      return up(dir, {
        minimal: values.minimal,
        keep: values.keep,
        crds: values["no-crds"] ? undefined : (values.crds ?? repoCrdDir()),
        runPods: values["run-pods"],
      });
    case "down":
      return down(dir);
    case "status":
      return status(dir);
    default:
      process.stderr.write(`vmcpctl cluster: unknown subcommand "${sub}"\n\n${USAGE}`);
      return 1;
  }
}
