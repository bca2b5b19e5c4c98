// Locates the control-plane binaries the envtest way: $KUBEBUILDER_ASSETS first, then PATH.
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kwok";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Directories searched for binaries, in order. */
export function searchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env.KUBEBUILDER_ASSETS) dirs.push(env.KUBEBUILDER_ASSETS);
  for (const dir of (env.PATH ?? "").split(delimiter)) if (dir) dirs.push(dir);
  return dirs;
}

/** Absolute path of `name`, or an error that says where it looked and how to get it. */
export function findBinary(name: Component, env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of searchPath(env)) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(
    `${name} not found in $KUBEBUILDER_ASSETS (${env.KUBEBUILDER_ASSETS ?? "unset"}) or PATH; ` +
      `build it with 'bash scripts/toolchain.sh all' and 'eval "$(bash scripts/toolchain.sh env)"'`,
  );
}

/**
 * kwok's Stage files (standalone kwok has no built-in stages). Looked up in
 * $VMCP_KWOK_STAGES, else in `kwok-stages/` next to the directory holding kwok.
 */
export function kwokStageFiles(kwokBinary: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = env.VMCP_KWOK_STAGES ?? join(dirname(dirname(kwokBinary)), "kwok-stages");
  if (!existsSync(dir)) throw new Error(`kwok stage directory ${dir} not found (set VMCP_KWOK_STAGES)`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort()
    .map((f) => join(dir, f));
  if (files.length === 0) throw new Error(`no kwok stage files in ${dir}`);
  return files;
}
