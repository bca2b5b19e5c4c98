// reconcile(key): one VirtualMCPServer from the cache to its stack and its status.
//
//   read (cache) → deleting? destroy + drop finalizer → ensure finalizer → validate
//   → group exists and Ready → build (pure) → reference problems? keep the last good
//   deployment → decide: skip | up | repair | wait → (preview, event) → up/repair
//   → status (one write, only when changed)
//
// Everything that decides is a pure function of its inputs (decideStack, backendStatuses,
// readiness); the class only sequences I/O through the Cache, Engine and KubeWriter.
import { formatFieldErrors, validateVirtualMCPServer, type VirtualMCPServer } from "../api/index.js";
import { build, type Build, type DesiredState } from "../program/desired.js";
import { gatherInputs, type OperatorSettings } from "../program/inputs.js";
import * as n from "../program/names.js";
import { cacheObjectSet, type Cache } from "./cache.js";
import { formatSummary, type Engine, type PreviewResult, type StackKey, type UpResult } from "./engine.js";
import { vmcpRefs, type RawObject } from "./index.js";
import { parseKey, type Key } from "./keys.js";
import { errorMessage, silentLogger, type Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import { DONE, type HandlerResult } from "./queue.js";
import { observeHealth, type HealthView, type SecretSource } from "./health.js";
import type { HealthMonitor } from "../health/monitor.js";
import {
  BACKEND_AUTH_PREFIX,
  CONDITIONS as C,
  PrunedFields,
  StatusCollector,
  statusMergePatch,
  type BackendStatus,
  type Status,
} from "./status.js";

export const FINALIZER = "vmcp.stacklok.dev/stack";
export const FIELD_MANAGER = "vmcp-operator";

export class ConflictError extends Error {
  constructor(message = "conflict") {
    super(message);
    this.name = "ConflictError";
  }
}

/** The writes reconcile makes to the API server (all on the VirtualMCPServer itself). */
export interface KubeWriter {
  /** Fresh read, bypassing the cache (used after a conflict). */
  getVmcp(namespace: string, name: string): Promise<RawObject | undefined>;
  /** JSON merge patch of the status subresource; with resourceVersion it fails with ConflictError. */
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
  /** Records an Event on the object; failures are the writer's to log, never thrown. */
  event(obj: RawObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void>;
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
  /** Probes the backends over MCP; without it a backend's status says only whether it is configured. */
  health?: { monitor: HealthMonitor; readSecret: SecretSource };
}

/** What reconcile decided to do with the stack. */
export type StackDecision =
  | { action: "skip" }
  | { action: "up"; reason: string }
  | { action: "repair"; reason: string }
  | { action: "wait"; ms: number; reason: string };

export interface Applied {
  hash: string;
  configChecksum?: string;
}

export interface OwnedState {
  missing: string[];
  edited: string[];
  total: number;
}

/** Owned objects as the cache shows them, against what was applied last. */
export function ownedState(
  cache: Cache,
  desired: DesiredState,
  appliedChecksum: string | undefined,
): OwnedState {
  const ns = desired.namespace;
  const name = desired.name;
  const missing: string[] = [];
  const edited: string[] = [];
  const cm = cache.get("ConfigMap", ns, n.configMapName(name));
  const dep = cache.get("Deployment", ns, n.deploymentName(name));
  const svc = cache.get("Service", ns, n.serviceName(name));
  if (!cm) missing.push(`ConfigMap ${n.configMapName(name)}`);
  if (!dep) missing.push(`Deployment ${n.deploymentName(name)}`);
  if (!svc) missing.push(`Service ${n.serviceName(name)}`);
  if (appliedChecksum) {
    if (cm && cm.metadata?.annotations?.[n.ANNOTATION_CONTENT_CHECKSUM] !== appliedChecksum)
      edited.push(`ConfigMap ${n.configMapName(name)} (content checksum differs)`);
    const tmpl = (
      dep?.spec as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined
    )?.template;
    if (dep && tmpl?.metadata?.annotations?.[n.ANNOTATION_RUNCONFIG_CHECKSUM] !== appliedChecksum)
      edited.push(`Deployment ${n.deploymentName(name)} (pod template checksum differs)`);
  }
  return { missing, edited, total: 3 };
}

/** Pure: whether and how to run the stack. */
export function decideStack(
  desiredHash: string,
  applied: Applied | undefined,
  owned: OwnedState,
  msSinceApply: number | undefined,
  graceMs: number,
): StackDecision {
  const drift = [
    ...owned.missing.map((m) => `${m} is missing`),
    ...owned.edited.map((e) => `${e} was edited`),
  ];
  if (applied?.hash === desiredHash) {
    if (drift.length === 0) return { action: "skip" };
    if (msSinceApply !== undefined && msSinceApply < graceMs)
      return { action: "wait", ms: graceMs - msSinceApply, reason: `cache catching up: ${drift.join("; ")}` };
    return { action: "repair", reason: drift.join("; ") };
  }
  const why = applied ? "desired state changed" : "not applied yet";
  // Objects gone from the cluster while the stack still records them: only a refresh recreates them.
  if (owned.missing.length > 0 && (applied !== undefined || owned.missing.length < owned.total))
    return { action: "repair", reason: `${why}; ${owned.missing.join(", ")} missing` };
  return { action: "up", reason: why };
}

/** Pure: status.discoveredBackends from the build. */
export function backendStatuses(b: Build): BackendStatus[] {
  const out: BackendStatus[] = [];
  for (const be of b.discovery.backends) {
    const excludedBy = b.auth.problems.find((p) => p.scope === be.name);
    const auth = b.auth.perBackend.get(be.name);
    out.push({
      name: be.name,
      url: be.url,
      transport: be.transport,
      authConfigRef: auth?.authConfigRef ?? be.authConfigRef,
      authType: auth?.authType,
      status: b.auth.excluded.has(be.name) ? "unavailable" : "ready",
      message: b.auth.excluded.has(be.name)
        ? `left out: outgoing auth could not be built (${excludedBy?.message ?? "auth problem"})`
        : undefined,
    });
  }
  for (const u of b.discovery.unresolved)
    out.push({ name: u.name, status: "unavailable", message: `left out: ${u.reason}` });
  return out.map(
    (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as BackendStatus,
  );
}

/** Pure: is the Deployment serving (at least one ready pod, or deliberately scaled to 0)? */
export function deploymentReady(dep: RawObject | undefined): { ready: boolean; message: string } {
  if (!dep) return { ready: false, message: "the Deployment does not exist yet" };
  const spec = dep.spec as { replicas?: number } | undefined;
  const st = dep.status as { readyReplicas?: number; replicas?: number } | undefined;
  if (spec?.replicas === 0) return { ready: true, message: "the Deployment is scaled to 0 replicas" };
  const ready = st?.readyReplicas ?? 0;
  return ready > 0
    ? { ready: true, message: `${ready} pod(s) ready` }
    : { ready: false, message: "waiting for a ready pod of the Deployment" };
}

function truncate(s: string, max = 1000): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function previewMessage(p: PreviewResult): string {
  const changed = p.changes.filter((c) => c.op !== "same");
  const detail = changed
    .slice(0, 8)
    .map(
      (c) =>
        `${c.op} ${c.type.split(":").pop()} ${c.name}${c.fields.length ? ` [${c.fields.slice(0, 5).join(",")}]` : ""}`,
    );
  if (changed.length > 8) detail.push(`… ${changed.length - 8} more`);
  return truncate(`Preview: ${formatSummary(p.summary)}${detail.length ? `: ${detail.join("; ")}` : ""}`);
}

export class Reconciler {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly graceMs: number;
  /** Per key, what this process applied last (the status may not hold our fields, see PrunedFields). */
  private readonly applied = new Map<Key, Applied & { at: number }>();
  readonly pruned = new PrunedFields();

  constructor(private readonly deps: ReconcilerDeps) {
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
    this.graceMs = deps.applyGraceMs ?? 15_000;
  }

  async reconcile(key: Key, signal?: AbortSignal): Promise<HandlerResult> {
    const { namespace, name } = parseKey(key);
    const raw = this.deps.cache.get("VirtualMCPServer", namespace, name);
    const log = this.log.with({ key });
    if (!raw) {
      this.applied.delete(key);
      this.deps.health?.monitor.remove(key);
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
    let result: HandlerResult = DONE;
    let failure: unknown;
    try {
      result = await this.run(key, current, collector, log, signal);
    } catch (err) {
      failure = err;
    }
    const tStatus = performance.now();
    await this.writeStatus(current, collector, log);
    this.deps.metrics?.phaseDuration.observe((performance.now() - tStatus) / 1000, { phase: "status" });
    if (failure !== undefined) throw failure;
    return result;
  }

  private async run(
    key: Key,
    raw: RawObject,
    s: StatusCollector,
    log: Logger,
    signal: AbortSignal | undefined,
  ): Promise<HandlerResult> {
    const { namespace, name } = parseKey(key);
    const prevStatus = (raw.status ?? {}) as Status;
    const prevConditions = new Map((prevStatus.conditions ?? []).map((c) => [c.type, c]));
    const transitioned = (type: string, status: string, reason: string): boolean =>
      prevConditions.get(type)?.status !== status || prevConditions.get(type)?.reason !== reason;

    // 1. validate
    const tBuild = performance.now();
    const v = validateVirtualMCPServer(raw);
    if (!v.ok) {
      const msg = formatFieldErrors(v.errors);
      s.setCondition(C.Valid, "False", "ValidationFailed", msg);
      s.setCondition(C.Ready, "False", "ValidationFailed", "The spec is invalid; nothing was applied");
      s.setPhase(
        "Failed",
        `Invalid spec: ${msg.split("\n")[0]}${v.errors.length > 1 ? ` (+${v.errors.length - 1} more)` : ""}`,
      );
      if (transitioned(C.Valid, "False", "ValidationFailed"))
        await this.deps.kube.event(raw, "Warning", "ValidationFailed", truncate(msg));
      log.warn("invalid spec", { errors: v.errors.map((e) => `${e.path}: ${e.message}`) });
      return DONE; // no retry until the spec (generation) changes
    }
    const vmcp: VirtualMCPServer = v.value;
    s.setCondition(C.Valid, "True", "ValidationSucceeded", "The spec is valid");

    // 2. group
    const objects = cacheObjectSet(this.deps.cache);
    const inputs = gatherInputs(objects, vmcp);
    const groupName = vmcp.spec.groupRef.name;
    const hasApplied = this.appliedOf(key, prevStatus) !== undefined;
    // A group nobody reports on (no ToolHive MCPGroup controller in this cluster) is usable;
    // one whose controller says Pending or Failed is not.
    const groupPhase = inputs.group?.status?.phase;
    if (!inputs.group || (groupPhase !== undefined && groupPhase !== "Ready")) {
      const invalidGroup = objects.invalid.get(`MCPGroup ${groupName}`);
      const [reason, msg] = !inputs.group
        ? invalidGroup
          ? ["GroupRefInvalid", `MCPGroup ${groupName} is invalid: ${invalidGroup}`]
          : ["GroupRefNotFound", `MCPGroup ${groupName} not found in namespace ${namespace}`]
        : ["GroupRefNotReady", `MCPGroup ${groupName} is ${groupPhase}, not Ready`];
      s.setCondition(C.GroupRefValidated, "False", reason, msg);
      s.setCondition(
        C.Ready,
        "False",
        reason,
        hasApplied ? `${msg}; the last applied configuration keeps running` : msg,
      );
      s.setPhase("Pending", msg);
      if (transitioned(C.GroupRefValidated, "False", reason))
        await this.deps.kube.event(raw, "Warning", reason, msg);
      return { kind: "retry", reason };
    }
    s.setCondition(
      C.GroupRefValidated,
      "True",
      "GroupRefValid",
      groupPhase ? `MCPGroup ${groupName} is Ready` : `MCPGroup ${groupName} exists`,
    );

    // 3. build
    const b = build(inputs, this.deps.settings);
    this.deps.metrics?.phaseDuration.observe((performance.now() - tBuild) / 1000, { phase: "build" });
    const backends = backendStatuses(b);
    s.setDiscoveredBackends(backends);
    let health: HealthView | undefined;
    if (this.deps.health) {
      const previous = (prevStatus.discoveredBackends ?? []) as BackendStatus[];
      const { monitor, readSecret } = this.deps.health;
      health = await observeHealth(monitor, readSecret, key, vmcp, b, backends, previous);
      s.setDiscoveredBackends(health.backends);
      s.setCapabilities(health.capabilities);
    }
    setConflictCondition(s, vmcp, health);
    const usable = backends.filter((x) => x.status === "ready").length;
    s.setCondition(
      C.BackendsDiscovered,
      backends.length ? "True" : "False",
      backends.length ? "BackendsDiscovered" : "NoBackends",
      backends.length
        ? `Discovered ${backends.length} backend(s), ${usable} usable${
            usable < backends.length
              ? `; left out: ${backends
                  .filter((x) => x.status !== "ready")
                  .map((x) => `${x.name} (${x.message ?? x.status})`)
                  .join("; ")}`
              : ""
          }`
        : `MCPGroup ${groupName} has no members (MCPServer, MCPRemoteProxy or MCPServerEntry with spec.groupRef.name=${groupName})`,
    );
    const authConds: string[] = [];
    for (const p of b.auth.problems) {
      if (p.scope === "default") continue;
      const type = `${BACKEND_AUTH_PREFIX}${p.scope}`;
      authConds.push(type);
      s.setCondition(type, "False", p.reason, p.message);
    }
    s.removeConditionsWithPrefix(BACKEND_AUTH_PREFIX, authConds);
    if (b.auth.problems.length)
      s.setCondition(
        C.AuthConfigured,
        "False",
        "AuthInvalid",
        b.auth.problems.map((p) => `${p.scope}: ${p.message}`).join("\n"),
      );
    else s.setCondition(C.AuthConfigured, "True", "AuthValid", "Outgoing auth built for every backend");

    const referenced = new Set(
      vmcpRefs(raw).map((r) => {
        const [kind, , n2] = r.split("/");
        return `${kind} ${n2}`;
      }),
    );
    for (const m of inputs.members)
      if (m.object.spec.externalAuthConfigRef?.name)
        referenced.add(`MCPExternalAuthConfig ${m.object.spec.externalAuthConfigRef.name}`);
    const invalidRefs = [...objects.invalid].filter(([id]) => referenced.has(id));
    if (invalidRefs.length)
      s.setCondition(
        C.ReferencesValid,
        "False",
        "ReferencedObjectInvalid",
        invalidRefs.map(([id, e]) => `${id}: ${e}`).join("\n"),
      );
    else if (prevConditions.has(C.ReferencesValid))
      s.setCondition(C.ReferencesValid, "True", "ReferencesValid", "Every referenced object is valid");

    for (const type of [
      "ToolConfigRefsValidated",
      "CompositeToolRefsValidated",
      "IncomingAuthValidated",
    ] as const) {
      const problems = b.problems.filter((p) => p.condition === type);
      if (problems.length)
        s.setCondition(
          type,
          "False",
          problems[0]?.reason ?? "Invalid",
          problems.map((p) => p.message).join("\n"),
        );
      else if (prevConditions.has(type))
        s.setCondition(type, "True", type.replace(/ated$/, ""), "References resolved");
    }
    if (!b.desired) {
      const msg = b.problems.map((p) => p.message).join("; ");
      const reason = b.problems[0]?.reason ?? "ReferenceProblem";
      s.setCondition(
        C.Ready,
        "False",
        reason,
        hasApplied ? `${msg}; the last applied configuration keeps running` : msg,
      );
      s.setPhase(hasApplied ? "Degraded" : "Failed", msg);
      if (transitioned(C.Ready, "False", reason))
        await this.deps.kube.event(raw, "Warning", reason, truncate(msg));
      return DONE; // the index re-triggers when the referenced object appears or changes
    }
    const desired = b.desired;
    s.setUrl(desired.url);

    // 4. stack
    const applied = this.appliedOf(key, prevStatus);
    const owned = ownedState(this.deps.cache, desired, applied?.configChecksum);
    const at = this.applied.get(key)?.at;
    const decision = decideStack(
      desired.hash,
      applied,
      owned,
      at === undefined ? undefined : performance.now() - at,
      this.graceMs,
    );
    const stack: StackKey = { namespace, name };
    let requeue: HandlerResult = DONE;
    switch (decision.action) {
      case "skip":
        this.deps.metrics?.pulumiSkipped.inc();
        log.debug("stack up to date; no Pulumi operation", { hash: desired.hash.slice(0, 12) });
        break;
      case "wait":
        log.debug("owned objects not yet as applied in the cache; waiting", { reason: decision.reason });
        requeue = { kind: "after", ms: decision.ms };
        break;
      case "up":
      case "repair": {
        signal?.throwIfAborted();
        if (decision.action === "up" || applied?.hash !== desired.hash) {
          const preview = await this.op("preview", () => this.deps.engine.preview(desired), log);
          s.setLastPreview(preview, this.now());
          await this.deps.kube.event(raw, "Normal", "Preview", previewMessage(preview));
        }
        signal?.throwIfAborted();
        let up: UpResult;
        try {
          up =
            decision.action === "repair"
              ? await this.op("repair", () => this.deps.engine.repair(desired), log)
              : await this.op("up", () => this.deps.engine.up(desired), log);
        } catch (err) {
          const msg = truncate(`Stack ${namespace}.${name}: ${errorMessage(err)}`);
          s.setCondition(C.StackApplied, "False", "StackUpdateFailed", msg);
          s.setCondition(C.Ready, "False", "StackUpdateFailed", msg);
          s.setPhase(hasApplied ? "Degraded" : "Failed", msg);
          await this.deps.kube.event(raw, "Warning", "StackUpdateFailed", msg);
          throw err;
        }
        this.applied.set(key, {
          hash: desired.hash,
          configChecksum: desired.configChecksum,
          at: performance.now(),
        });
        s.setAppliedHash(desired.hash);
        s.setStackOutputs(up.outputs);
        const verb = decision.action === "repair" ? "Repaired" : "Updated";
        const msg = `Stack ${namespace}.${name} ${verb.toLowerCase()} in ${(up.durationMs / 1000).toFixed(1)}s (${formatSummary(up.summary)}): ${decision.reason}`;
        await this.deps.kube.event(
          raw,
          "Normal",
          decision.action === "repair" ? "DriftRepaired" : "StackUpdated",
          msg,
        );
        log.info(`stack ${verb.toLowerCase()}`, {
          reason: decision.reason,
          summary: up.summary,
          ms: up.durationMs,
        });
        break;
      }
    }
    if (decision.action !== "wait" || applied?.hash === desired.hash)
      s.setCondition(
        C.StackApplied,
        "True",
        "StackUpToDate",
        `Stack ${namespace}.${name} is at ${desired.hash.slice(0, 12)}`,
      );

    // 5. readiness (the Deployment as the cache shows it; its updates re-trigger us)
    const dep = deploymentReady(this.deps.cache.get("Deployment", namespace, n.deploymentName(name)));
    const total = backends.length;
    if (!dep.ready) {
      s.setCondition(C.Ready, "False", "DeploymentNotReady", dep.message);
      s.setPhase("Pending", dep.message);
    } else if (health) {
      // Phase from what the probes saw (all routable → Ready, some → Degraded, none →
      // Failed or Degraded per partialFailureMode, none checked yet → Pending).
      const h = health.summary;
      const routable = h.phase === "Ready" || h.phase === "Degraded";
      s.setCondition(C.Ready, routable ? "True" : "False", h.reason, `${dep.message}; ${h.message}`);
      s.setPhase(h.phase, h.message);
    } else if (total > 0 && usable === 0) {
      s.setCondition(C.Ready, "False", "BackendsUnavailable", "No backend is usable");
      s.setPhase("Degraded", "No backend is usable");
    } else if (usable < total) {
      const m = `${usable} of ${total} backends usable`;
      s.setCondition(C.Ready, "True", "BackendsDegraded", m);
      s.setPhase("Degraded", m);
    } else {
      s.setCondition(C.Ready, "True", "DeploymentReady", `${dep.message}; ${total} backend(s)`);
      s.setPhase("Ready", `Serving ${total} backend(s)`);
    }
    return requeue;
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

  private async finalize(key: Key, raw: RawObject, log: Logger): Promise<HandlerResult> {
    const finalizers = raw.metadata?.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return DONE;
    const { namespace, name } = parseKey(key);
    try {
      await this.op("destroy", () => this.deps.engine.destroy({ namespace, name }), log);
    } catch (err) {
      await this.deps.kube.event(
        raw,
        "Warning",
        "StackDestroyFailed",
        truncate(`Stack ${namespace}.${name}: ${errorMessage(err)}`),
      );
      throw err;
    }
    await this.deps.kube.event(
      raw,
      "Normal",
      "StackDestroyed",
      `Stack ${namespace}.${name} destroyed and removed`,
    );
    log.info("stack destroyed; removing finalizer");
    const rest = finalizers.filter((f) => f !== FINALIZER);
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
          (fresh.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER),
        );
    }
    this.applied.delete(key);
    this.deps.health?.monitor.remove(key);
    return DONE;
  }

  /** One status write per reconcile, none when nothing changed; retried on conflict against a fresh read. */
  private async writeStatus(raw: RawObject, s: StatusCollector, log: Logger): Promise<void> {
    const { namespace, name } = {
      namespace: raw.metadata?.namespace ?? "default",
      name: raw.metadata?.name ?? "",
    };
    let obj: RawObject | undefined = raw;
    for (let attempt = 0; attempt < 4 && obj; attempt++) {
      const current = this.pruned.strip((obj.status ?? {}) as Status);
      const computed = s.apply(current, this.now());
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

/**
 * conflictResolution manual is valid without overrides (vmcp resolves at runtime), but a
 * name two backends advertise without an override renaming one apart is a clash vmcp
 * cannot resolve: say which, once the probes know the tools.
 */
function setConflictCondition(
  s: StatusCollector,
  vmcp: VirtualMCPServer,
  health: HealthView | undefined,
): void {
  const manual = vmcp.spec.config?.aggregation?.conflictResolution === "manual";
  if (!manual || !health?.conflicts) {
    if (!manual) s.removeCondition(C.ToolConflictsResolved);
    return;
  }
  const clashes = health.conflicts;
  if (!clashes.length) {
    s.setCondition(
      C.ToolConflictsResolved,
      "True",
      "NoToolConflicts",
      "No two backends advertise the same tool name",
    );
    return;
  }
  const list = clashes.map((c) => `"${c.name}" (${c.backends.join(", ")})`).join("; ");
  s.setCondition(
    C.ToolConflictsResolved,
    "False",
    "UnresolvedToolConflicts",
    `conflictResolution manual leaves ${clashes.length} tool name(s) advertised by more than one backend: ${list}; add spec.config.aggregation.tools[].overrides renaming all but one`,
  );
}
