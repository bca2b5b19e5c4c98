// The Pulumi engine as the controller sees it: the contract of engine/stacks.ts
// (re-exported, so the controller and the engine cannot drift apart), plus small helpers.
import type { Engine, EngineOptions } from "../engine/stacks.js";

export type {
  Engine,
  EngineOptions,
  PreviewResult,
  ResourceChange,
  StackKey,
  UpResult,
} from "../engine/stacks.js";
export { stackName } from "../engine/stacks.js";
export type { StackOutputs } from "../program/resources.js";

/** How main.ts obtains an engine when none is injected (default: engine/stacks.js createEngine). */
export type EngineFactory = (opts: EngineOptions) => Engine | Promise<Engine>;

/** "create=1 update=2": the non-zero counts of a summary, sorted, for events and logs. */
export function formatSummary(summary: Record<string, number>): string {
  const parts = Object.entries(summary)
    .filter(([op, n]) => n > 0 && op !== "same")
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `${op}=${n}`);
  return parts.length ? parts.join(" ") : "no changes";
}
