// helm at exactly the version scripts/toolchain.sh pins (HELM_VERSION): the one that script
// builds into the tool cache, else a `helm` on PATH of that version.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..", "..");

export function pinnedHelmVersion(): string {
  const m = /^HELM_VERSION=(\S+)$/m.exec(readFileSync(join(ROOT, "scripts", "toolchain.sh"), "utf8"));
  if (!m?.[1]) throw new Error("scripts/toolchain.sh has no HELM_VERSION=");
  return m[1];
}

/** The pinned helm binary, or undefined when it is not built (`scripts/toolchain.sh helm`). */
export function pinnedHelm(): string | undefined {
  const version = pinnedHelmVersion();
  const cached = join(
    process.env.VMCP_TOOLS ?? join(homedir(), ".cache", "vmcp-operator"),
    `helm-${version}`,
    "bin",
    "helm",
  );
  if (existsSync(cached)) return cached;
  const onPath = spawnSync("helm", ["version", "--template", "{{.Version}}"], { encoding: "utf8" });
  return onPath.status === 0 && onPath.stdout.trim() === `v${version}` ? "helm" : undefined;
}
