// Every Pulumi CLI process a controller starts, timed from the outside: a directory whose
// bin/pulumi runs the real CLI and appends one line per call to a log. Point the engine's
// pulumiRoot (or a child controller's VMCP_PULUMI_ROOT) at it.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes the wrapper under `dir` and returns `dir` (the root holding bin/pulumi). */
export function pulumiWrapper(dir: string, log: string): string {
  const real = join(process.env.VMCP_PULUMI_ROOT ?? "", "bin", "pulumi");
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  // Only the pulumi binary is wrapped; plugins are found through PATH/PULUMI_HOME as usual.
  writeFileSync(
    join(bin, "pulumi"),
    `#!/bin/sh
s=$(date +%s%N)
"${real}" "$@"
rc=$?
e=$(date +%s%N)
printf '%s %s %s %s\\n' "$s" "$e" "$rc" "$*" >> "${log}"
exit $rc
`,
  );
  chmodSync(join(bin, "pulumi"), 0o755);
  return dir;
}

export interface CliCall {
  /** performance-independent wall clock, ms since the epoch */
  start: number;
  end: number;
  cmd: string;
}

/** The calls logged so far (a call appears when it ended). */
export function readCli(log: string): CliCall[] {
  let text = "";
  try {
    text = readFileSync(log, "utf8");
  } catch {
    return [];
  }
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [s, e, , ...args] = l.split(" ");
      const words = args.filter((a) => !a.startsWith("-"));
      const cmd =
        words[0] === "stack" || words[0] === "plugin" ? words.slice(0, 2).join(" ") : (words[0] ?? "?");
      return { start: Number(s) / 1e6, end: Number(e) / 1e6, cmd };
    });
}

/** "0.52 0.61 0.80": the 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/**
 * CPU seconds of this process plus its reaped children (utime+stime+cutime+cstime of
 * /proc/self/stat): the controller in this process and the Pulumi CLIs it waited for,
 * which include the plugins each CLI waited for.
 */
export function selfAndChildrenCpuS(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = [11, 12, 13, 14].reduce((t, i) => t + Number(f[i]), 0);
    return ticks / 100;
  } catch {
    return NaN;
  }
}
