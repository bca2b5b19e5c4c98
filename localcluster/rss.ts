// Resident memory of a process, from /proc (Linux only; used for docs and `cluster up`).
import { readFileSync } from "node:fs";

/** VmRSS of `pid` in bytes, or undefined if the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] !== undefined ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function formatMiB(bytes: number | undefined): string {
  return bytes === undefined ? "-" : `${(bytes / 1024 / 1024).toFixed(0)}MiB`;
}
