// The Pulumi engine as the controller sees it: the contract of engine/stacks.ts
// (re-exported, so the controller and the engine cannot drift apart), the default
// factory, and small helpers. The controller reaches engine/ only through this module.
import { createLazyEngine } from "../engine/lazy.js";
import type { Engine, EngineOptions } from "../engine/stacks.js";

export type {
  Engine,
  EngineOptions,
  PreviewResult,
  ResourceChange,
  StackKey,
  UpResult,
} from "../engine/stacks.js";
export { planOf, stackName } from "../engine/basics.js";
export type { StackOutputs } from "../program/resources.js";

/** How the Pulumi CLI reaches the Kubernetes provider (EngineOptions.provider, `--kube-provider`). */
export type KubeProvider = NonNullable<EngineOptions["provider"]>;
export const KUBE_PROVIDERS: readonly KubeProvider[] = ["per-operation", "shared"];

/** How main.ts obtains an engine when none is injected (default: defaultEngineFactory). */
export type EngineFactory = (opts: EngineOptions) => Engine | Promise<Engine>;

/**
 * The real engine: one Pulumi stack per VirtualMCPServer (engine/stacks.ts), loaded at its
 * first operation (engine/lazy.ts: the Pulumi libraries stay out of an idle controller).
 */
export const defaultEngineFactory: EngineFactory = (opts: EngineOptions) => createLazyEngine(opts);

/** "create=1 update=2": the non-zero counts of a summary, sorted, for events and logs. */
export function formatSummary(summary: Record<string, number>): string {
  const parts = Object.entries(summary)
    .filter(([op, n]) => n > 0 && op !== "same")
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `${op}=${n}`);
  return parts.length ? parts.join(" ") : "no changes";
}
