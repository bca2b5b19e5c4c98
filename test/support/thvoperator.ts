// ToolHive's own operator (thv-operator, built by scripts/toolchain.sh from the same module
// version as vmcp) run against a local control plane: the reference the differential test
// compares our config.yaml with.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { toolhiveModuleVersion } from "../../localcluster/images.js";

export const THV_OPERATOR = process.env.THV_OPERATOR_BINARY ?? "thv-operator";
/** ToolHive's CRDs of that version (the toolchain copies them from the module). */
export const THV_CRDS = process.env.THV_OPERATOR_CRDS ?? "";

export function thvOperatorVersion(): string | undefined {
  return toolhiveModuleVersion(THV_OPERATOR);
}

export interface ThvOperator {
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts thv-operator on `kubeconfigPath`, logging to `logFile`; metrics and probes off. */
export function startThvOperator(
  kubeconfigPath: string,
  logFile: string,
  env: NodeJS.ProcessEnv = {},
): ThvOperator {
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(
    THV_OPERATOR,
    ["--kubeconfig", kubeconfigPath, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // No update check: it would call out to updates.stacklok.com.
      env: { ...process.env, POD_NAMESPACE: "toolhive-system", TOOLHIVE_SKIP_UPDATE_CHECK: "true", ...env },
    },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  // A test run that dies must not leave the operator behind.
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  return {
    process: child,
    async stop() {
      process.removeListener("exit", kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      log.end();
    },
  };
}
