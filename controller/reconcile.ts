// reconcile(key): one VirtualMCPServer from the cache to its stack and its status.
//
//   read (cache) → deleting? destroy + drop finalizer → ensure finalizer → run the steps:
//   validate → group → build (pure) → backends (+ health) → references → adoption (before the
//   first apply) → stack → readiness
//   → status (one write, only when changed)
//
// Every step that decides is a pure function of steps.ts returning what the status should
// say; this class only sequences the I/O through the Cache, Engine and KubeWriter.
import { handOver, HANDOVER_FIELD_MANAGER } from "./handover.js";
import type { VirtualMCPServer } from "../api/index.js";
import { build, type Build, type DesiredState } from "../program/desired.js";
import { gatherInputs, type OperatorSettings } from "../program/inputs.js";
import { deploymentName, FINALIZER } from "../program/names.js";
import { cacheObjectSet, invalidMembers, type Cache } from "./cache.js";
import { CONDITION, EVENT_REASON } from "./conditions.js";
import { EventLimiter } from "./eventlimit.js";
import type { ToolConflict } from "../health/capabilities.js";
import { planOf, type Engine, type PreviewResult, type StackKey, type UpResult } from "./engine.js";
import { observeHealth, type SecretSource } from "./health.js";
import type { HealthMonitor } from "../health/monitor.js";
import { parseKey, type Key } from "./keys.js";
import { errorMessage, silentLogger, type Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { ObjectMeta, RawObject, StackObjectKind } from "./objects.js";
import { DONE, type HandlerResult } from "./queue.js";
import {
  PrunedFields,
  StatusCollector,
  statusMergePatch,
  type BackendStatus,
  type Status,
} from "./status.js";
import {
  adoptionStep,
  takeOverOf,
  appliedEvent,
  backendStatuses,
  backendsStep,
  changeApproved,
  decideStack,
  disruptiveChanges,
  gateStep,
  deploymentReady,
  groupStep,
  observed,
  ownedState,
  podsStep,
  summarizePods,
  POD_RECHECK_MS,
  type PodsSummary,
  previewMessage,
  previousConditions,
  readinessStep,
  referenceHashes,
  recordsPlan,
  configWarningStep,
  referencesStep,
  stackObjects,
  stackAppliedStep,
  stackFailedStep,
  toolConflictsStep,
  transitionEvents,
  truncate,
  validateStep,
  type Applied,
  type ExistingObject,
  type Observed,
  type PreviewGate,
  type PreviousConditions,
  type StepOutcome,
} from "./steps.js";
import { vmcpRefs } from "./triggers.js";

export class ConflictError extends Error {
  constructor(message = "conflict") {
    super(message);
    this.name = "ConflictError";
  }
}

/** The VirtualMCPServer was deleted while its reconcile ran (a write answered 404). */
export class GoneError extends Error {
  constructor(message = "not found") {
    super(message);
    this.name = "GoneError";
  }
}

/** The writes reconcile makes to the API server (all on the VirtualMCPServer itself). */
export interface KubeWriter {
  /** Fresh read, bypassing the cache (used after a conflict). */
  getVmcp(namespace: string, name: string): Promise<RawObject | undefined>;
  /**
   * JSON merge patch of the status subresource; with resourceVersion it fails with
   * ConflictError; GoneError when the object no longer exists (as setFinalizers).
   */
  patchStatus(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    status: Record<string, unknown>,
  ): Promise<RawObject>;
  /** Replaces metadata.finalizers (optimistic on resourceVersion, ConflictError on 409). */
  setFinalizers(
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    finalizers: string[],
  ): Promise<RawObject>;
  /**
   * Metadata of one object of the stack's kinds, read fresh (most are not in the cache: it
   * holds only labelled ones); undefined when it does not exist.
   */
  getObjectMeta(kind: StackObjectKind, namespace: string, name: string): Promise<ObjectMeta | undefined>;
  /** Replaces an object's managedFields (controller/handover.ts), guarded by resourceVersion. */
  setManagedFields(
    kind: Exclude<StackObjectKind, "Secret">,
    namespace: string,
    name: string,
    resourceVersion: string | undefined,
    managedFields: NonNullable<ObjectMeta["managedFields"]>,
  ): Promise<void>;
  /** Records an Event on the object; failures are the writer's to log, never thrown. */
  event(obj: RawObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
  /** The pods matching a label selector (why a Deployment is not ready); absent in fakes. */
  listPods?(namespace: string, labelSelector: string): Promise<RawObject[]>;
}

export interface ReconcilerDeps {
  cache: Cache;
  engine: Engine;
  kube: KubeWriter;
  settings: OperatorSettings;
  log?: Logger;
  metrics?: Metrics;
  now?: () => Date;
  /**
   * After an up/repair, how long a mismatch between the cache and what was applied is
   * taken for the cache lagging behind rather than drift (default 15 s).
   */
  applyGraceMs?: number;
  /** Events about phase and backend transitions: at most one per kind and subject per window (default 60 s). */
  transitionEventWindowMs?: number;
  /** Probes the backends over MCP; without it a backend's status says only whether it is configured. */
  health?: { monitor: HealthMonitor; readSecret: SecretSource };
  /**
   * off (default): a change is one up, its plan taken from the up's own events.
   * replacements: a change to an applied stack is previewed first, and held when it would
   * replace the Deployment/Service or change a selector until the VirtualMCPServer carries
   * the approve-change annotation (steps.ts gateStep).
   */
  previewGate?: PreviewGate;
}

/** What every step of one reconcile shares. */
interface Run {
  key: Key;
  stack: StackKey;
  raw: RawObject;
  status: Status;
  previous: PreviousConditions;
  collector: StatusCollector;
  log: Logger;
  signal: AbortSignal | undefined;
  /** status.discoveredBackends as this reconcile wrote them (after any probe). */
  backends?: BackendStatus[];
  /** The preview gate held the change: what the status says about it (after readiness). */
  held?: StepOutcome;
  /** Objects of the stack's names found by the adoption step (first apply only). */
  existing?: ExistingObject[];
  /** Before the first apply, the HMAC Secret existed: it is taken over with its bytes. */
  adoptHmacSecret?: boolean;
  /** Before the first apply, another controller's field ownership was handed to the stack. */
  handedOver?: boolean;
}

export class Reconciler {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly graceMs: number;
  /** Per key, what this process applied last (the status may not hold our fields, see PrunedFields). */
  private readonly applied = new Map<Key, Applied & { at: number }>();
  readonly pruned = new PrunedFields();
  /** Per key, the phase and backend statuses the last reconcile arrived at (for transition Events). */
  private readonly observed = new Map<Key, Observed>();
  private readonly limiter: EventLimiter;
  /** Per key, the desired hash the preview gate held and why: not previewed again until it changes. */
  private readonly held = new Map<Key, { hash: string; disruptive: string[] }>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
    this.graceMs = deps.applyGraceMs ?? 15_000;
    this.limiter = new EventLimiter(deps.transitionEventWindowMs ?? 60_000, () => this.now().getTime());
  }

  async reconcile(key: Key, signal?: AbortSignal): Promise<HandlerResult> {
    try {
      return await this.reconcileCached(key, signal);
    } catch (err) {
      // Deleted meanwhile (the cache had not seen it yet): nothing is left to reconcile.
      if (!(err instanceof GoneError)) throw err;
      this.log.with({ key }).debug("the VirtualMCPServer is gone; nothing to do");
      this.forget(key);
      return DONE;
    }
  }

  private async reconcileCached(key: Key, signal?: AbortSignal): Promise<HandlerResult> {
    const { namespace, name } = parseKey(key);
    const raw = this.deps.cache.get("VirtualMCPServer", namespace, name);
    const log = this.log.with({ key });
    if (!raw) {
      this.forget(key);
      return DONE;
    }
    if (raw.metadata?.deletionTimestamp) return this.finalize(key, raw, log);
    let current = raw;
    if (!(raw.metadata?.finalizers ?? []).includes(FINALIZER)) {
      current = await this.deps.kube.setFinalizers(namespace, name, raw.metadata?.resourceVersion, [
        ...(raw.metadata?.finalizers ?? []),
        FINALIZER,
      ]);
      log.info("finalizer added", { finalizer: FINALIZER });
    }
    const collector = new StatusCollector(raw.metadata?.generation);
    const status = (current.status ?? {}) as Status;
    const run: Run = {
      key,
      stack: { namespace, name },
      raw: current,
      status,
      previous: previousConditions(status),
      collector,
      log,
      signal,
    };
    let result: HandlerResult = DONE;
    let failure: unknown;
    try {
      result = await this.runSteps(run);
    } catch (err) {
      failure = err;
    }
    // Fenced (the shard's Lease is gone): whoever holds it now writes this object's status.
    if (signal?.aborted) throw signal.reason ?? new Error("reconcile aborted");
    await this.transitions(run);
    const statusStarted = performance.now();
    await this.writeStatus(current, collector, log);
    this.deps.metrics?.phaseDuration.observe((performance.now() - statusStarted) / 1000, { phase: "status" });
    if (failure !== undefined) throw failure;
    return result;
  }

  /** The steps, in order; a step's `stop` ends the reconcile (its status is still written). */
  private async runSteps(run: Run): Promise<HandlerResult> {
    const buildStarted = performance.now();
    const validation = validateStep(run.raw, run.previous);
    const invalidSpec = await this.record(run, validation.outcome);
    if (!validation.vmcp) {
      run.log.warn("invalid spec", {
        errors: validation.errors.map((error) => `${error.path}: ${error.message}`),
      });
      return invalidSpec ?? DONE;
    }
    const vmcp = validation.vmcp;
    const objects = cacheObjectSet(this.deps.cache);
    const inputs = gatherInputs(objects, vmcp);
    const groupName = vmcp.spec.groupRef.name;
    const hasApplied = this.appliedOf(run.key, run.status) !== undefined;
    const group = groupStep({
      namespace: run.stack.namespace,
      groupName,
      group: inputs.group,
      invalid: objects.invalid.get(`MCPGroup ${groupName}`),
      hasApplied,
      previous: run.previous,
    });
    const groupUnusable = await this.record(run, group);
    if (groupUnusable) return groupUnusable;

    const built = build(inputs, this.deps.settings);
    this.deps.metrics?.phaseDuration.observe((performance.now() - buildStarted) / 1000, { phase: "build" });
    const invalid = invalidMembers(this.deps.cache, run.stack.namespace, groupName);
    const backends = backendStatuses(built, invalid);
    const observed = await this.observeBackends(run, vmcp, built, backends);
    this.deps.metrics?.countBackends(
      run.key,
      observed.backends.map((b) => b.status),
    );
    run.backends = observed.backends;
    await this.record(run, backendsStep(built, backends, groupName));
    const configWarning = configWarningStep(built.warnings, run.previous);
    if (configWarning === "remove") run.collector.removeCondition(CONDITION.ConfigWarning);
    else await this.record(run, configWarning);
    const conflicts = toolConflictsStep(vmcp, observed.conflicts);
    if (conflicts === "remove") run.collector.removeCondition(CONDITION.ToolConflictsResolved);
    else if (conflicts) await this.record(run, conflicts);

    const references = referencesStep({
      refs: vmcpRefs(run.raw),
      members: inputs.members,
      invalid: objects.invalid,
      invalidMembers: invalid,
      groupName,
      built,
      hasApplied,
      previous: run.previous,
    });
    const notBuilt = await this.record(run, references);
    if (notBuilt || !built.desired) return notBuilt ?? DONE;
    run.collector.setUrl(built.desired.url);

    if (!hasApplied) {
      const notOurs = await this.record(run, await this.adoption(run, built.desired));
      if (notOurs) return notOurs;
    }
    const requeue = await this.stackStep(run, built.desired, hasApplied);
    // The shared configs' versions, once the config built from them is the one applied.
    if (this.appliedOf(run.key, run.status)?.hash === built.desired.hash)
      run.collector.setReferenceHashes({ ...referenceHashes(inputs) });
    const deployment = this.deps.cache.get("Deployment", run.stack.namespace, deploymentName(run.stack.name));
    const mode = vmcp.spec.config?.operational?.failureHandling?.partialFailureMode;
    const pods = await this.podsOf(deployment);
    await this.record(
      run,
      readinessStep(deploymentReady(deployment, pods?.problem), observed.backends, mode),
    );
    if (run.held) await this.record(run, run.held);
    const storage = built.desired.config.sessionStorage as { provider?: string } | undefined;
    if (pods) await this.record(run, podsStep(pods, storage?.provider === "redis"));
    // Pod states change without the Deployment's status: look again while a pod is not ready.
    if (pods && !pods.allReady && requeue.kind === "done") return { kind: "after", ms: POD_RECHECK_MS };
    return requeue;
  }

  /** The Deployment's pods and why one is not ready (undefined without a Deployment or a pod reader). */
  private async podsOf(deployment: RawObject | undefined): Promise<PodsSummary | undefined> {
    const selector = (deployment?.spec as { selector?: { matchLabels?: Record<string, string> } } | undefined)
      ?.selector?.matchLabels;
    if (!deployment || !selector || !this.deps.kube.listPods) return undefined;
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    try {
      return summarizePods(
        await this.deps.kube.listPods(deployment.metadata?.namespace ?? "", labelSelector),
      );
    } catch (err) {
      this.log.debug("listing the Deployment's pods failed", { error: errorMessage(err) });
      return undefined;
    }
  }

  /**
   * Hands a step's outcome to the StatusCollector and sends its Warning Event; returns the
   * step's `stop` (set when the reconcile ends there).
   */
  private async record(run: Run, outcome: StepOutcome): Promise<HandlerResult | undefined> {
    run.collector.setConditions(outcome.conditions);
    if (outcome.removeConditionsWithPrefix)
      run.collector.removeConditionsWithPrefix(outcome.removeConditionsWithPrefix);
    if (outcome.phase) run.collector.setPhase(outcome.phase.phase, outcome.phase.message);
    for (const warning of outcome.warnings ?? [])
      await this.deps.kube.event(run.raw, "Warning", warning.reason, warning.message);
    return outcome.stop;
  }

  /** Events for the phase and backend transitions of this reconcile, rate-limited per kind and subject. */
  private async transitions(run: Run): Promise<void> {
    const before = this.observed.get(run.key) ?? observed(run.status.phase, run.status.discoveredBackends);
    const after: Observed = {
      phase: run.collector.currentPhase ?? before.phase,
      backends: run.backends ? observed(undefined, run.backends).backends : before.backends,
    };
    this.observed.set(run.key, after);
    const messages = new Map((run.backends ?? []).map((backend) => [backend.name, backend.message]));
    for (const event of transitionEvents(before, after, run.collector.currentPhaseMessage ?? "", messages)) {
      const slot = this.limiter.take(`${run.key}|${event.reason}|${event.subject}`);
      if (!slot.allowed) continue;
      const held = slot.suppressed ? ` (${slot.suppressed} more like this held back since the last one)` : "";
      await this.deps.kube.event(run.raw, event.type, event.reason, truncate(`${event.message}${held}`));
    }
  }

  /**
   * This replica no longer works on `key` (its shard or the leader Lease went elsewhere):
   * what it remembered of the key would be stale when it comes back, and its backends are
   * now another replica's to probe.
   */
  release(key: Key): void {
    this.forget(key);
  }

  private forget(key: Key): void {
    this.deps.metrics?.forgetBackends(key);
    this.applied.delete(key);
    this.observed.delete(key);
    this.limiter.forget(`${key}|`);
    this.held.delete(key);
    this.deps.health?.monitor.remove(key);
  }

  /** status.discoveredBackends, probed by the health monitor when there is one. */
  private async observeBackends(
    run: Run,
    vmcp: VirtualMCPServer,
    built: Build,
    backends: BackendStatus[],
  ): Promise<{ backends: BackendStatus[]; conflicts: ToolConflict[] | undefined }> {
    run.collector.setDiscoveredBackends(backends);
    if (!this.deps.health) return { backends, conflicts: undefined };
    const previous = (run.status.discoveredBackends ?? []) as BackendStatus[];
    const { monitor, readSecret } = this.deps.health;
    const health = await observeHealth(monitor, readSecret, run.key, vmcp, built, backends, previous);
    run.collector.setDiscoveredBackends(health.backends);
    run.collector.setCapabilities(health.capabilities);
    return { backends: health.backends, conflicts: health.conflicts };
  }

  /** skip | wait | (preview) up | (preview) repair, as decideStack says. */
  private async stackStep(run: Run, desired: DesiredState, hasApplied: boolean): Promise<HandlerResult> {
    const applied = this.appliedOf(run.key, run.status);
    const owned = ownedState(this.deps.cache, desired, applied?.configChecksum);
    const appliedAt = this.applied.get(run.key)?.at;
    const sinceApply = appliedAt === undefined ? undefined : performance.now() - appliedAt;
    const decision = decideStack(desired.hash, applied, owned, sinceApply, this.graceMs);
    let requeue: HandlerResult = DONE;
    switch (decision.action) {
      case "skip":
        this.deps.metrics?.pulumiSkipped.inc();
        run.log.debug("stack up to date; no Pulumi operation", { hash: desired.hash.slice(0, 12) });
        break;
      case "wait":
        run.log.debug("owned objects not yet as applied in the cache; waiting", { reason: decision.reason });
        requeue = { kind: "after", ms: decision.ms };
        break;
      case "up":
      case "repair": {
        run.signal?.throwIfAborted();
        const plan = recordsPlan(decision, applied?.hash, desired.hash);
        // Under the gate, a change to an applied stack is previewed first (the plan recorded
        // from it), and one that would disrupt the endpoint waits for a person.
        const gated =
          this.deps.previewGate === "replacements" &&
          applied !== undefined &&
          applied.hash !== desired.hash &&
          !changeApproved(run.raw.metadata?.annotations, desired.hash);
        const applying = await this.withTakeOver(run, desired, !hasApplied);
        if (gated) {
          const known = this.held.get(run.key)?.hash === desired.hash;
          const disruptive = await this.gate(run, applying);
          if (disruptive.length > 0) {
            run.held = gateStep(run.stack, disruptive, desired.hash, run.previous, known);
            run.log.warn("change held for approval", { hash: desired.hash.slice(0, 12), disruptive });
            return DONE;
          }
          run.signal?.throwIfAborted();
        }
        let up: UpResult;
        const apply = {
          ...(run.adoptHmacSecret ? { adoptHmacSecret: true } : {}),
          ...(run.handedOver ? { fieldManager: HANDOVER_FIELD_MANAGER } : {}),
        };
        try {
          up =
            decision.action === "repair"
              ? await this.op("repair", () => this.deps.engine.repair(applying, apply), run.log)
              : await this.op("up", () => this.deps.engine.up(applying, apply), run.log);
        } catch (err) {
          run.signal?.throwIfAborted(); // fenced: record nothing
          const partial = planOf(err);
          if (plan && !gated && partial) await this.recordPlan(run, partial);
          await this.record(run, stackFailedStep(run.stack, errorMessage(err), hasApplied));
          throw err;
        }
        if (plan && !gated) await this.recordPlan(run, up);
        this.held.delete(run.key);
        this.applied.set(run.key, {
          hash: desired.hash,
          configChecksum: desired.configChecksum,
          at: performance.now(),
        });
        run.collector.setAppliedHash(desired.hash);
        run.collector.setStackOutputs(up.outputs);
        const event = appliedEvent(run.stack, decision, up);
        await this.deps.kube.event(run.raw, "Normal", event.reason, event.message);
        run.log.info(`stack ${event.verb}`, {
          reason: decision.reason,
          summary: up.summary,
          ms: up.durationMs,
        });
        break;
      }
    }
    await this.record(run, stackAppliedStep(run.stack, decision, applied?.hash, desired.hash));
    return requeue;
  }

  /** The plan of a change: status.lastPreview and the Preview Event ("Preview: update=2: …"). */
  private async recordPlan(run: Run, plan: PreviewResult): Promise<void> {
    run.collector.setLastPreview(plan, this.now());
    await this.deps.kube.event(run.raw, "Normal", EVENT_REASON.Preview, previewMessage(plan));
  }

  /**
   * The preview gate: the disruptive parts of the change to `desired` (none: go ahead).
   * A change already held is not previewed again while its hash stays the same.
   */
  private async gate(run: Run, desired: DesiredState): Promise<string[]> {
    const held = this.held.get(run.key);
    if (held?.hash === desired.hash) return held.disruptive;
    const preview = await this.op("preview", () => this.deps.engine.preview(desired), run.log);
    await this.recordPlan(run, preview);
    const disruptive = disruptiveChanges(preview.changes);
    if (disruptive.length > 0) this.held.set(run.key, { hash: desired.hash, disruptive });
    else this.held.delete(run.key);
    return disruptive;
  }

  /** Before the first apply: looks up every object of the stack's names, and asks adoptionStep. */
  private async adoption(run: Run, desired: DesiredState): Promise<StepOutcome> {
    const existing = await this.existingObjects(desired);
    run.existing = existing;
    // The HMAC Secret keeps its bytes only when it is this VirtualMCPServer's own (left by
    // ToolHive's operator: sessions signed before the migration stay valid); a foreign one
    // taken over gets fresh bytes of the length vmcp expects.
    const uid = run.raw.metadata?.uid;
    run.adoptHmacSecret = existing.some(
      (o) =>
        o.kind === "Secret" &&
        o.name === desired.hmacSecret.name &&
        !!uid &&
        (o.metadata.ownerReferences ?? []).some((ref) => ref.uid === uid),
    );
    const outcome = adoptionStep({
      stack: run.stack,
      uid: run.raw.metadata?.uid,
      annotations: run.raw.metadata?.annotations,
      existing,
      previous: run.previous,
    });
    if (!outcome) {
      await this.handOver(run, existing);
      return { conditions: [] };
    }
    run.log.warn("objects of the stack's names exist and are not ours; not applying", {
      existing: existing.map((o) => `${o.kind} ${o.name}`),
    });
    // The finalizer's own update event re-runs the first reconcile before the cache holds
    // its status: the limiter keeps that from repeating the Warning.
    const warnings = (outcome.warnings ?? []).filter(
      (w) => this.limiter.take(`${run.key}|${w.reason}|adoption`).allowed,
    );
    return { ...outcome, warnings };
  }

  /** The objects of the stack's names that exist, with their metadata (from the API server). */
  private async existingObjects(desired: DesiredState): Promise<ExistingObject[]> {
    // In parallel: this runs before every up, and one read after another added their round trips.
    const found = await Promise.all(
      stackObjects(desired).map(async ({ kind, name }) => {
        const metadata = await this.deps.kube.getObjectMeta(kind, desired.namespace, name);
        return metadata ? [{ kind, name, metadata }] : [];
      }),
    );
    return found.flat();
  }

  /** `desired` as the engine applies it: with the objects it did not create (steps.ts takeOverOf). */
  private async withTakeOver(run: Run, desired: DesiredState, firstApply: boolean): Promise<DesiredState> {
    const existing = run.existing ?? (await this.existingObjects(desired));
    const { adopted, preexisting } = takeOverOf(run.raw.metadata?.uid, existing, firstApply);
    return {
      ...desired,
      ...(adopted.length ? { adopted } : {}),
      ...(preexisting.length ? { preexisting } : {}),
    };
  }

  /**
   * Objects another controller made for this VirtualMCPServer: its field ownership goes to
   * the stack's field manager, so the first apply also removes what it set and we do not
   * declare (controller/handover.ts). The HMAC Secret keeps its owner: it is declared
   * without data, and owning the data would delete it.
   */
  private async handOver(run: Run, existing: readonly ExistingObject[]): Promise<void> {
    const uid = run.raw.metadata?.uid;
    if (!uid) return;
    for (const o of existing) {
      if (o.kind === "Secret") continue;
      const managedFields = handOver(o.metadata, uid);
      if (!managedFields) continue;
      await this.deps.kube.setManagedFields(
        o.kind as Exclude<StackObjectKind, "Secret">,
        run.stack.namespace,
        o.name,
        o.metadata.resourceVersion,
        managedFields,
      );
      run.handedOver = true;
      run.log.info("took over field ownership from the previous controller", {
        object: `${o.kind} ${o.name}`,
      });
    }
  }

  private appliedOf(key: Key, status: Status): Applied | undefined {
    const mem = this.applied.get(key);
    if (mem) return mem;
    if (typeof status.appliedHash === "string")
      return { hash: status.appliedHash, configChecksum: status.stackOutputs?.configChecksum };
    return undefined;
  }

  private async op<T>(op: string, fn: () => Promise<T>, log: Logger): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } catch (err) {
      this.deps.metrics?.pulumiFailures.inc({ op });
      log.error(`pulumi ${op} failed`, { op, error: errorMessage(err) });
      throw err;
    } finally {
      this.deps.metrics?.pulumiDuration.observe((performance.now() - t0) / 1000, { op });
    }
  }

  private async finalize(key: Key, cached: RawObject, log: Logger): Promise<HandlerResult> {
    if (!(cached.metadata?.finalizers ?? []).includes(FINALIZER)) return DONE;
    const { namespace, name } = parseKey(key);
    // A fresh read: the events of the destroy re-enqueue the key, and the cache may still
    // hold the object after our finalizer is gone (another destroy would start a Pulumi
    // process for nothing, and the finalizer write would answer 404).
    const raw = await this.deps.kube.getVmcp(namespace, name);
    const finalizers = raw?.metadata?.finalizers ?? [];
    if (!raw || !finalizers.includes(FINALIZER)) {
      this.forget(key);
      return DONE;
    }
    try {
      await this.op("destroy", () => this.deps.engine.destroy({ namespace, name }), log);
    } catch (err) {
      await this.deps.kube.event(
        raw,
        "Warning",
        EVENT_REASON.StackDestroyFailed,
        truncate(`Stack ${namespace}.${name}: ${errorMessage(err)}`),
      );
      throw err;
    }
    await this.deps.kube.event(
      raw,
      "Normal",
      EVENT_REASON.StackDestroyed,
      `Stack ${namespace}.${name} destroyed and removed`,
    );
    log.info("stack destroyed; removing finalizer");
    const rest = finalizers.filter((finalizer) => finalizer !== FINALIZER);
    try {
      await this.deps.kube.setFinalizers(namespace, name, raw.metadata?.resourceVersion, rest);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      const fresh = await this.deps.kube.getVmcp(namespace, name);
      if (fresh)
        await this.deps.kube.setFinalizers(
          namespace,
          name,
          fresh.metadata?.resourceVersion,
          (fresh.metadata?.finalizers ?? []).filter((finalizer) => finalizer !== FINALIZER),
        );
    }
    this.forget(key);
    return DONE;
  }

  /** One status write per reconcile, none when nothing changed; retried on conflict against a fresh read. */
  private async writeStatus(raw: RawObject, collector: StatusCollector, log: Logger): Promise<void> {
    const { namespace, name } = {
      namespace: raw.metadata?.namespace ?? "default",
      name: raw.metadata?.name ?? "",
    };
    let obj: RawObject | undefined = raw;
    for (let attempt = 0; attempt < 4 && obj; attempt++) {
      const current = this.pruned.strip((obj.status ?? {}) as Status);
      const computed = collector.apply(current, this.now());
      const next = this.pruned.strip(computed.status);
      const patch = statusMergePatch(current, next);
      if (Object.keys(patch).length === 0) return;
      try {
        const stored = await this.deps.kube.patchStatus(
          namespace,
          name,
          obj.metadata?.resourceVersion,
          patch,
        );
        this.deps.metrics?.statusWrites.inc();
        const learned = this.pruned.learn(next, stored.status as Status | undefined);
        if (learned.length)
          log.warn("the API server dropped status fields (the CRD status schema lacks them)", {
            fields: learned,
          });
        return;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        log.debug("status conflict; retrying on a fresh read", { attempt });
        obj = await this.deps.kube.getVmcp(namespace, name);
      }
    }
  }
}
