// Test doubles for the controller's I/O ports. Used by unit tests only (and by the
// integration tests until engine/stacks.ts lands); never wired into main.ts.
import type { DesiredState } from "../../program/desired.js";
import { stackOutputsOf } from "../../program/resources.js";
import type { Engine, PreviewResult, StackKey, UpResult } from "../engine.js";
import type { ObjectMeta, RawObject, StackObjectKind } from "../objects.js";
import { ConflictError, GoneError, type KubeWriter } from "../reconcile.js";

export interface EngineCall {
  op: "preview" | "up" | "repair" | "destroy" | "unlock";
  stack: string;
  hash?: string;
}

/** An in-memory engine: records calls, remembers the applied hash per stack, can be told to fail. */
export class FakeEngine implements Engine {
  readonly calls: EngineCall[] = [];
  readonly stacks = new Map<string, DesiredState>();
  processesStarted = 0;
  providerPids = (): number[] => [];
  /** Throws this from the next up/repair (then clears it). */
  failNext: Error | undefined;
  /** Called by up/repair/destroy, e.g. to mirror objects into a MemoryCache. */
  onApply?: (desired: DesiredState) => void;
  onDestroy?: (key: StackKey) => void;
  delayMs = 0;

  private async step(): Promise<void> {
    this.processesStarted++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
  }

  private upResult(desired: DesiredState, op: string): UpResult {
    const existed = this.stacks.has(`${desired.namespace}.${desired.name}`);
    return {
      summary: existed ? { update: 1, same: desired.objects.length } : { create: desired.objects.length + 1 },
      changes: this.plan(desired),
      // The program's own outputs (a pure function of the desired state), not a copy of them.
      outputs: stackOutputsOf(desired),
      durationMs: op === "repair" ? 2 : 1,
    };
  }

  async preview(desired: DesiredState): Promise<PreviewResult> {
    this.calls.push({ op: "preview", stack: `${desired.namespace}.${desired.name}`, hash: desired.hash });
    await this.step();
    const existed = this.stacks.has(`${desired.namespace}.${desired.name}`);
    return {
      summary: existed ? { update: 1 } : { create: desired.objects.length + 1 },
      changes: this.plan(desired),
    };
  }

  /** Replaces the plan of the next previews and ups (e.g. a Deployment replacement). */
  planOverride: PreviewResult["changes"] | undefined;

  private plan(desired: DesiredState): PreviewResult["changes"] {
    if (this.planOverride) return structuredClone(this.planOverride);
    const existed = this.stacks.has(`${desired.namespace}.${desired.name}`);
    return desired.objects.map((o) => ({
      urn: `urn:pulumi:s::p::kubernetes:${o.apiVersion}:${o.kind}::${o.kind.toLowerCase()}`,
      type: `kubernetes:${o.apiVersion}:${o.kind}`,
      name: o.metadata.name,
      op: existed ? (o.kind === "ConfigMap" ? "update" : "same") : "create",
      fields: existed && o.kind === "ConfigMap" ? ["data"] : [],
    }));
  }

  private async apply(op: "up" | "repair", desired: DesiredState): Promise<UpResult> {
    const stack = `${desired.namespace}.${desired.name}`;
    this.calls.push({ op, stack, hash: desired.hash });
    await this.step();
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const result = this.upResult(desired, op);
    this.stacks.set(stack, desired);
    this.onApply?.(desired);
    return result;
  }

  up(desired: DesiredState): Promise<UpResult> {
    return this.apply("up", desired);
  }

  repair(desired: DesiredState): Promise<UpResult> {
    return this.apply("repair", desired);
  }

  async destroy(key: StackKey): Promise<void> {
    this.calls.push({ op: "destroy", stack: `${key.namespace}.${key.name}` });
    await this.step();
    this.stacks.delete(`${key.namespace}.${key.name}`);
    this.onDestroy?.(key);
  }

  async unlock(key: StackKey): Promise<void> {
    this.calls.push({ op: "unlock", stack: `${key.namespace}.${key.name}` });
  }

  /** Stacks whose operations were killed (fencing), in order. */
  readonly killed: string[] = [];

  fence(stacks: ReadonlySet<string>): { pid: number; argv: string[] }[] {
    this.killed.push(...stacks);
    return [];
  }

  unfence(): void {}

  setHolder(): void {}

  /** Stacks the "backend" holds a lock for; undefined = cannot tell (unlock every stack). */
  locked: Set<string> | undefined = new Set();

  async lockedStacks(): Promise<Set<string> | undefined> {
    return this.locked ? new Set(this.locked) : undefined;
  }

  async exists(key: StackKey): Promise<boolean> {
    return this.stacks.has(`${key.namespace}.${key.name}`);
  }

  async close(): Promise<void> {}

  count(op: EngineCall["op"]): number {
    return this.calls.filter((c) => c.op === op).length;
  }
}

export interface RecordedEvent {
  name: string;
  type: string;
  reason: string;
  message: string;
}

/** A KubeWriter over a map of VirtualMCPServers (the "API server" of a unit test). */
export class FakeKube implements KubeWriter {
  readonly objects = new Map<string, RawObject>();
  readonly events: RecordedEvent[] = [];
  statusWrites = 0;
  /** Conflicts to raise on the next status patches. */
  conflicts = 0;
  /** Status keys the "CRD" prunes. */
  prune: string[] = [];
  /** Objects of the stacks' kinds that exist, by `Kind namespace/name` (getObjectMeta). */
  readonly existing = new Map<string, ObjectMeta>();
  /** getObjectMeta calls, as `Kind namespace/name`. */
  readonly lookups: string[] = [];
  private rv = 100;

  put(obj: RawObject): RawObject {
    const copy = structuredClone(obj);
    copy.metadata = { ...copy.metadata, resourceVersion: String(++this.rv) };
    this.objects.set(`${copy.metadata.namespace ?? "default"}/${copy.metadata.name}`, copy);
    return copy;
  }

  async getVmcp(namespace: string, name: string): Promise<RawObject | undefined> {
    const o = this.objects.get(`${namespace}/${name}`);
    return o ? structuredClone(o) : undefined;
  }

  private current(namespace: string, name: string, rv: string | undefined): RawObject {
    const o = this.objects.get(`${namespace}/${name}`);
    if (!o) throw new GoneError(`not found: ${namespace}/${name}`);
    if (rv !== undefined && o.metadata?.resourceVersion !== rv) throw new ConflictError();
    return o;
  }

  async patchStatus(
    namespace: string,
    name: string,
    rv: string | undefined,
    patch: Record<string, unknown>,
  ): Promise<RawObject> {
    if (this.conflicts > 0) {
      this.conflicts--;
      const o = this.objects.get(`${namespace}/${name}`);
      if (o) this.put(o); // someone else wrote: bump the version
      throw new ConflictError();
    }
    const o = this.current(namespace, name, rv);
    const status: Record<string, unknown> = { ...((o.status as Record<string, unknown>) ?? {}) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || this.prune.includes(k)) delete status[k];
      else status[k] = v;
    }
    this.statusWrites++;
    return this.put({ ...o, status });
  }

  async setFinalizers(
    namespace: string,
    name: string,
    rv: string | undefined,
    finalizers: string[],
  ): Promise<RawObject> {
    const o = this.current(namespace, name, rv);
    const next = this.put({ ...o, metadata: { ...o.metadata, finalizers } });
    if (next.metadata?.deletionTimestamp && finalizers.length === 0)
      this.objects.delete(`${namespace}/${name}`);
    return next;
  }

  async getObjectMeta(
    kind: StackObjectKind,
    namespace: string,
    name: string,
  ): Promise<ObjectMeta | undefined> {
    const id = `${kind} ${namespace}/${name}`;
    this.lookups.push(id);
    const meta = this.existing.get(id);
    return meta ? structuredClone(meta) : undefined;
  }

  /** setManagedFields calls, as `Kind namespace/name` → the managers written. */
  readonly handedOver: { id: string; managers: string[] }[] = [];

  async setManagedFields(
    kind: Exclude<StackObjectKind, "Secret">,
    namespace: string,
    name: string,
    _resourceVersion: string | undefined,
    managedFields: NonNullable<ObjectMeta["managedFields"]>,
  ): Promise<void> {
    const id = `${kind} ${namespace}/${name}`;
    this.handedOver.push({ id, managers: managedFields.map((f) => `${f.manager}/${f.operation}`) });
    const meta = this.existing.get(id);
    if (meta) meta.managedFields = structuredClone(managedFields);
  }

  async event(obj: RawObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    this.events.push({ name: obj.metadata?.name ?? "", type, reason, message });
  }
}
