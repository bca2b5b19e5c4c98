// The Pulumi engine as the controller sees it. The real implementation lives in
// engine/stacks.ts (written by the lead); until it lands this is the contract the
// controller codes against. Unit tests use an in-memory fake of this interface.
import type { DesiredState } from "../program/desired.js";

export interface StackKey {
  namespace: string;
  name: string;
}

export interface ResourceChange {
  urn: string;
  type: string;
  name: string;
  /** create | update | replace | delete | same */
  op: string;
  fields: string[];
}

export interface PreviewResult {
  summary: Record<string, number>;
  changes: ResourceChange[];
}

export interface StackOutputs {
  url: string;
  configChecksum: string;
  desiredHash: string;
  objects: { kind: string; name: string }[];
}

export interface UpResult {
  summary: Record<string, number>;
  outputs: StackOutputs;
  durationMs: number;
}

export interface Engine {
  preview(desired: DesiredState): Promise<PreviewResult>;
  up(desired: DesiredState): Promise<UpResult>;
  /** refresh then up: restores objects edited/deleted by hand */
  repair(desired: DesiredState): Promise<UpResult>;
  /** destroy the stack's resources and remove the stack and its state */
  destroy(key: StackKey): Promise<void>;
  /** clear a stale lock left by a killed process (only call as the leader) */
  unlock(key: StackKey): Promise<void>;
  /** number of Pulumi CLI processes started so far (for tests/metrics) */
  readonly processesStarted: number;
}

export interface EngineOptions {
  stateDir: string;
  passphrase: string;
  kubeconfig?: string;
  workDir?: string;
}

/** How main.ts obtains an engine: injected by the caller (tests), or created from engine/stacks.js. */
export type EngineFactory = (opts: EngineOptions) => Engine | Promise<Engine>;

/** Stack names follow `<namespace>.<name>`. */
export function stackName(key: StackKey): string {
  return `${key.namespace}.${key.name}`;
}

/** "create=1 update=2" — the non-zero counts of a summary, sorted, for events and logs. */
export function formatSummary(summary: Record<string, number>): string {
  const parts = Object.entries(summary)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, n]) => `${op}=${n}`);
  return parts.length ? parts.join(" ") : "no changes";
}
