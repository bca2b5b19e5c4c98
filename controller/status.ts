// StatusCollector (ToolHive's pattern, pkg/virtualmcpserverstatus): the reconcile records
// what the status should say; at the end one function computes the new status from the
// current one and says whether anything changed, so a reconcile writes status at most
// once and never when nothing changed (our own writes then cannot start a loop).
import type { Condition, VirtualMCPServerPhase } from "../api/index.js";
import { isRoutable, type BackendHealthReport } from "../health/state.js";
import { canonicalJson } from "../program/canonical.js";
import { isOurCondition, type ConditionType } from "./conditions.js";
import type { PreviewResult, StackOutputs } from "./engine.js";

export type ConditionStatus = "True" | "False" | "Unknown";

/**
 * One entry of status.discoveredBackends: what the builder configured, and (once the
 * monitor probed it) the health report; before probing, status says only ready or left out.
 */
export interface BackendStatus extends Partial<BackendHealthReport> {
  name: string;
  url?: string;
  transport?: string;
  authConfigRef?: string;
  authType?: string;
  status: BackendHealthReport["status"];
  capabilities?: CapabilityCounts;
}

export interface CapabilityCounts {
  tools?: number;
  resources?: number;
  prompts?: number;
}

/** Our additions to ToolHive's status. */
export interface LastPreview {
  summary: Record<string, number>;
  changes: { kind: string; name: string; op: string; fields?: string[] }[];
  time: string;
}

export type Status = Record<string, unknown> & {
  conditions?: Condition[];
  phase?: VirtualMCPServerPhase;
  message?: string;
  url?: string;
  observedGeneration?: number;
  discoveredBackends?: BackendStatus[];
  backendCount?: number;
  appliedHash?: string;
  stackOutputs?: StackOutputs;
  lastPreview?: LastPreview;
  capabilities?: CapabilityCounts;
};

/** What a reconcile step wants one condition to say (types and reasons: conditions.ts). */
export interface ConditionIntent {
  type: ConditionType;
  status: ConditionStatus;
  /** A conditions.ts REASON, or one the builder chose (passed through). */
  reason: string;
  message: string;
}

type Recorded = Omit<ConditionIntent, "type">;

/** Backends a client can be routed to (health/state.ts isRoutable: degraded is slow, not down). */
export function routableCount(backends: readonly BackendStatus[]): number {
  return backends.filter((backend) => isRoutable(backend.status)).length;
}

export class StatusCollector {
  private phase: { phase: VirtualMCPServerPhase; message: string } | undefined;
  private readonly conditions = new Map<string, Recorded | null>();
  private readonly prefixRemovals: { prefix: string; keep: Set<string> }[] = [];
  private readonly fields: Partial<Status> = {};

  constructor(private readonly generation: number | undefined) {}

  setPhase(phase: VirtualMCPServerPhase, message: string): this {
    this.phase = { phase, message };
    return this;
  }

  get currentPhase(): VirtualMCPServerPhase | undefined {
    return this.phase?.phase;
  }

  get currentPhaseMessage(): string | undefined {
    return this.phase?.message;
  }

  setCondition(type: ConditionType, status: ConditionStatus, reason: string, message: string): this {
    this.conditions.set(type, { status, reason, message: message.slice(0, 32_000) });
    return this;
  }

  setConditions(intents: readonly ConditionIntent[]): this {
    for (const { type, status, reason, message } of intents) this.setCondition(type, status, reason, message);
    return this;
  }

  removeCondition(type: ConditionType): this {
    this.conditions.set(type, null);
    return this;
  }

  /** Removes conditions starting with `prefix` except those set in this reconcile or listed in `keep`. */
  removeConditionsWithPrefix(prefix: string, keep: Iterable<string> = []): this {
    this.prefixRemovals.push({ prefix, keep: new Set(keep) });
    return this;
  }

  condition(type: string): Recorded | null | undefined {
    return this.conditions.get(type);
  }

  setUrl(url: string): this {
    this.fields.url = url;
    return this;
  }

  setDiscoveredBackends(backends: BackendStatus[]): this {
    this.fields.discoveredBackends = [...backends].sort((a, b) => a.name.localeCompare(b.name));
    this.fields.backendCount = routableCount(backends);
    return this;
  }

  setCapabilities(counts: CapabilityCounts | undefined): this {
    this.fields.capabilities = counts;
    return this;
  }

  setAppliedHash(hash: string): this {
    this.fields.appliedHash = hash;
    return this;
  }

  /** oidcConfigHash, authzConfigHash, telemetryConfigHash (an undefined one is removed). */
  setReferenceHashes(hashes: Record<string, string | undefined>): this {
    Object.assign(this.fields, hashes);
    return this;
  }

  setStackOutputs(outputs: StackOutputs): this {
    this.fields.stackOutputs = outputs;
    return this;
  }

  setLastPreview(preview: PreviewResult, now: Date): this {
    this.fields.lastPreview = {
      summary: preview.summary,
      changes: preview.changes
        .filter((c) => c.op !== "same")
        .map((c) => ({ kind: c.type.split(":").pop() ?? c.type, name: c.name, op: c.op, fields: c.fields })),
      time: now.toISOString().replace(/\.\d+Z$/, "Z"),
    };
    return this;
  }

  /**
   * The status to write, computed from the current one. Conditions whose status did not
   * change keep their lastTransitionTime. `changed` is false when the result equals the
   * current status (then nothing must be written).
   */
  apply(current: Status | undefined, now: Date): { status: Status; changed: boolean } {
    const cur: Status = current ? structuredClone(current) : {};
    const next: Status = { ...cur, ...structuredClone(this.fields) };
    if (this.generation !== undefined) next.observedGeneration = this.generation;
    if (this.phase) {
      next.phase = this.phase.phase;
      next.message = this.phase.message;
    }
    const stamp = now.toISOString().replace(/\.\d+Z$/, "Z");
    // A condition outside our vocabulary was written by another controller of this kind
    // (ToolHive's operator before a migration: SessionStorageWarning, …); with one status
    // writer, nothing would ever update it, so it goes.
    const byType = new Map<string, Condition>(
      (cur.conditions ?? []).filter((c) => isOurCondition(c.type)).map((c) => [c.type, c]),
    );
    for (const { prefix, keep } of this.prefixRemovals) {
      for (const type of [...byType.keys()]) {
        if (type.startsWith(prefix) && !keep.has(type) && !this.conditions.has(type)) byType.delete(type);
      }
    }
    for (const [type, intent] of this.conditions) {
      if (intent === null) {
        byType.delete(type);
        continue;
      }
      const old = byType.get(type);
      const c: Condition = {
        type,
        status: intent.status,
        reason: intent.reason,
        message: intent.message,
        lastTransitionTime: old && old.status === intent.status ? old.lastTransitionTime : stamp,
      };
      if (this.generation !== undefined) c.observedGeneration = this.generation;
      byType.set(type, c);
    }
    const conditions = [...byType.values()].sort((a, b) => a.type.localeCompare(b.type));
    if (conditions.length) next.conditions = conditions;
    else delete next.conditions;
    return { status: next, changed: !sameStatus(cur, next) };
  }
}

/** Semantic equality: key order and condition order do not matter. */
export function sameStatus(a: Status | undefined, b: Status | undefined): boolean {
  const norm = (s: Status | undefined): string => {
    const copy: Status = { ...(s ?? {}) };
    if (copy.conditions) copy.conditions = [...copy.conditions].sort((x, y) => x.type.localeCompare(y.type));
    return canonicalJson(copy);
  };
  return norm(a) === norm(b);
}

/** A JSON merge patch turning `from` into `to` at the top level (removed keys become null). */
export function statusMergePatch(from: Status | undefined, to: Status): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(from ?? {}), ...Object.keys(to)])) {
    const a = (from ?? {})[key];
    const b = to[key];
    if (b === undefined) {
      if (a !== undefined) patch[key] = null;
    } else if (canonicalJson(a ?? null) !== canonicalJson(b)) {
      patch[key] = b;
    }
  }
  return patch;
}

/**
 * Fields the API server pruned from a write (the CRD's status schema lacks them), learned
 * from the write's response, so that they are neither compared nor written again. Paths:
 * "appliedHash", or "discoveredBackends[].transport" for a key of list items.
 */
export class PrunedFields {
  private readonly paths = new Set<string>();

  get list(): string[] {
    return [...this.paths].sort();
  }

  /** Records what `sent` had and `stored` lacks; returns the newly learned paths. */
  learn(sent: Status, stored: Status | undefined): string[] {
    const learned: string[] = [];
    const note = (p: string): void => {
      if (!this.paths.has(p)) {
        this.paths.add(p);
        learned.push(p);
      }
    };
    for (const [key, value] of Object.entries(sent)) {
      if (value === undefined || value === null) continue;
      const got = stored?.[key];
      if (got === undefined) {
        note(key);
        continue;
      }
      if (Array.isArray(value) && Array.isArray(got) && value.length && got.length) {
        // Keys holding undefined are not sent at all, so they cannot have been pruned.
        const sentKeys = new Set(
          value.flatMap((v) =>
            typeof v === "object" && v
              ? Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined)
              : [],
          ),
        );
        const gotKeys = new Set(got.flatMap((v) => (typeof v === "object" && v ? Object.keys(v) : [])));
        for (const k of sentKeys) if (!gotKeys.has(k)) note(`${key}[].${k}`);
      }
    }
    return learned;
  }

  /** `status` without the pruned fields. */
  strip(status: Status): Status {
    if (this.paths.size === 0) return status;
    const out: Status = { ...status };
    for (const p of this.paths) {
      const m = /^(\w+)\[\]\.(\w+)$/.exec(p);
      if (!m) {
        delete out[p];
        continue;
      }
      const [, list, key] = m as unknown as [string, string, string];
      const items = out[list];
      if (Array.isArray(items))
        out[list] = items.map((i: unknown) => {
          if (typeof i !== "object" || i === null) return i;
          const { [key]: _drop, ...rest } = i as Record<string, unknown>;
          return rest;
        });
    }
    return out;
  }
}
