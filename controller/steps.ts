// The decisions of a reconcile, one pure function per step (validate, group, backends,
// references, stack, readiness). Each returns what the status should say — condition
// intents, a phase, a Warning Event worth sending — and whether the reconcile ends
// there; the Reconciler (reconcile.ts) does the I/O around them.
import type { Condition, VirtualMCPServer, VirtualMCPServerPhase } from "../api/index.js";
import { formatFieldErrors, validateVirtualMCPServer, type FieldError } from "../api/index.js";
import type { ToolConflict } from "../health/capabilities.js";
import type { Build, DesiredState, ObjectRef } from "../program/desired.js";
import type { VmcpInputs } from "../program/inputs.js";
import { canonicalJson, sha256 } from "../program/canonical.js";
import { isRoutable } from "../health/state.js";
import * as names from "../program/names.js";
import type { Cache, InvalidMember } from "./cache.js";
import {
  BACKEND_AUTH_PREFIX,
  CONDITION,
  EVENT_REASON,
  REASON,
  RESOLVED_REASON,
  backendAuthCondition,
  type ConditionType,
  type Reason,
  type ReferenceCondition,
} from "./conditions.js";
import { formatSummary, type PreviewResult, type StackKey, type UpResult } from "./engine.js";
import type { ObjectMeta, RawObject, StackObjectKind } from "./objects.js";
import { DONE, type HandlerResult } from "./queue.js";
import { routableCount, type BackendStatus, type ConditionIntent } from "./status.js";
import type { Reference } from "./triggers.js";

/** What a step wants the status to say, and whether the reconcile ends there. */
export interface StepOutcome {
  conditions: ConditionIntent[];
  phase?: { phase: VirtualMCPServerPhase; message: string };
  /** Warning Events to send (steps return one only when its condition changed). */
  warnings?: { reason: string; message: string }[];
  /** Conditions with this prefix not set in this reconcile are removed. */
  removeConditionsWithPrefix?: string;
  /** Set when the reconcile ends at this step. */
  stop?: HandlerResult;
}

/** The conditions the object carried before this reconcile, by type. */
export type PreviousConditions = ReadonlyMap<string, Condition>;

export function previousConditions(status: { conditions?: Condition[] } | undefined): PreviousConditions {
  return new Map((status?.conditions ?? []).map((condition) => [condition.type, condition]));
}

/** A condition (re-)entering this status and reason: worth an Event, a repeat is not. */
export function transitioned(
  previous: PreviousConditions,
  type: ConditionType,
  status: Condition["status"],
  reason: string,
): boolean {
  const before = previous.get(type);
  return before?.status !== status || before?.reason !== reason;
}

export function truncate(text: string, max = 1000): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const KEEPS_RUNNING = "; the last applied configuration keeps running";

// ---- validate ---------------------------------------------------------------------------

export type Validation =
  | { vmcp: VirtualMCPServer; outcome: StepOutcome }
  | { vmcp: undefined; errors: FieldError[]; outcome: StepOutcome };

/** An invalid spec is terminal: nothing is applied, and only a spec change retries. */
export function validateStep(raw: RawObject, previous: PreviousConditions): Validation {
  const result = validateVirtualMCPServer(raw);
  if (result.ok)
    return {
      vmcp: result.value,
      outcome: {
        conditions: [
          {
            type: CONDITION.Valid,
            status: "True",
            reason: REASON.ValidationSucceeded,
            message: "The spec is valid",
          },
        ],
      },
    };
  const message = formatFieldErrors(result.errors);
  const more = result.errors.length > 1 ? ` (+${result.errors.length - 1} more)` : "";
  return {
    vmcp: undefined,
    errors: result.errors,
    outcome: {
      conditions: [
        { type: CONDITION.Valid, status: "False", reason: REASON.ValidationFailed, message },
        {
          type: CONDITION.Ready,
          status: "False",
          reason: REASON.ValidationFailed,
          message: "The spec is invalid; nothing was applied",
        },
      ],
      phase: { phase: "Failed", message: `Invalid spec: ${message.split("\n")[0]}${more}` },
      ...(transitioned(previous, CONDITION.Valid, "False", REASON.ValidationFailed)
        ? { warnings: [{ reason: REASON.ValidationFailed, message: truncate(message) }] }
        : {}),
      stop: { kind: "terminal", reason: REASON.ValidationFailed },
    },
  };
}

// ---- group ------------------------------------------------------------------------------

export interface GroupFacts {
  namespace: string;
  groupName: string;
  group: VmcpInputs["group"];
  /** Why the group failed schema validation, when it did. */
  invalid: string | undefined;
  hasApplied: boolean;
  previous: PreviousConditions;
}

/**
 * A group nobody reports on (no ToolHive MCPGroup controller in this cluster) is usable;
 * one whose controller says Pending or Failed is not: retry with backoff.
 */
export function groupStep(facts: GroupFacts): StepOutcome {
  const { groupName, group } = facts;
  const groupPhase = group?.status?.phase;
  if (group && (groupPhase === undefined || groupPhase === "Ready"))
    return {
      conditions: [
        {
          type: CONDITION.GroupRefValidated,
          status: "True",
          reason: REASON.GroupRefValid,
          message: groupPhase ? `MCPGroup ${groupName} is Ready` : `MCPGroup ${groupName} exists`,
        },
      ],
    };
  const [reason, message]: [Reason, string] = !group
    ? facts.invalid
      ? [REASON.GroupRefInvalid, `MCPGroup ${groupName} is invalid: ${facts.invalid}`]
      : [REASON.GroupRefNotFound, `MCPGroup ${groupName} not found in namespace ${facts.namespace}`]
    : [REASON.GroupRefNotReady, `MCPGroup ${groupName} is ${groupPhase}, not Ready`];
  return {
    conditions: [
      { type: CONDITION.GroupRefValidated, status: "False", reason, message },
      {
        type: CONDITION.Ready,
        status: "False",
        reason,
        message: facts.hasApplied ? `${message}${KEEPS_RUNNING}` : message,
      },
    ],
    phase: { phase: "Pending", message },
    ...(transitioned(facts.previous, CONDITION.GroupRefValidated, "False", reason)
      ? { warnings: [{ reason, message }] }
      : {}),
    stop: { kind: "retry", reason },
  };
}

// ---- backends ---------------------------------------------------------------------------

/**
 * status.discoveredBackends from the build (before any probe), and the group's members the
 * build never saw because they fail schema validation (unavailable, with the field error).
 */
export function backendStatuses(built: Build, invalid: readonly InvalidMember[] = []): BackendStatus[] {
  const out: BackendStatus[] = [];
  for (const backend of built.discovery.backends) {
    const excludedBy = built.auth.problems.find((problem) => problem.scope === backend.name);
    const auth = built.auth.perBackend.get(backend.name);
    const excluded = built.auth.excluded.has(backend.name);
    out.push({
      name: backend.name,
      url: backend.url,
      transport: backend.transport,
      authConfigRef: auth?.authConfigRef ?? backend.authConfigRef,
      authType: auth?.authType,
      status: excluded ? "unavailable" : "ready",
      message: excluded
        ? `left out: outgoing auth could not be built (${excludedBy?.message ?? "auth problem"})`
        : undefined,
    });
  }
  for (const unresolved of built.discovery.unresolved)
    out.push({ name: unresolved.name, status: "unavailable", message: `left out: ${unresolved.reason}` });
  for (const member of invalid)
    out.push({
      name: member.name,
      status: "unavailable",
      message: `left out: ${member.kind} ${member.name} is invalid: ${member.errors.split("\n").join("; ")}`,
    });
  return out.map(
    (entry) =>
      Object.fromEntries(Object.entries(entry).filter(([, value]) => value !== undefined)) as BackendStatus,
  );
}

/** BackendsDiscovered, AuthConfigured and one BackendAuthConfig-<name> per backend auth problem. */
export function backendsStep(
  built: Build,
  backends: readonly BackendStatus[],
  groupName: string,
): StepOutcome {
  const usable = backends.filter((backend) => backend.status === "ready");
  const leftOut = backends.filter((backend) => backend.status !== "ready");
  const discovered: ConditionIntent = backends.length
    ? {
        type: CONDITION.BackendsDiscovered,
        status: "True",
        reason: REASON.BackendsDiscovered,
        message: `Discovered ${backends.length} backend(s), ${usable.length} usable${
          leftOut.length
            ? `; left out: ${leftOut.map((backend) => `${backend.name} (${backend.message ?? backend.status})`).join("; ")}`
            : ""
        }`,
      }
    : {
        type: CONDITION.BackendsDiscovered,
        status: "False",
        reason: REASON.NoBackends,
        message: `MCPGroup ${groupName} has no members (MCPServer, MCPRemoteProxy or MCPServerEntry with spec.groupRef.name=${groupName})`,
      };
  const problems = built.auth.problems;
  const perBackend: ConditionIntent[] = problems
    .filter((problem) => problem.scope !== "default")
    .map((problem) => ({
      type: backendAuthCondition(problem.scope),
      status: "False",
      reason: problem.reason,
      message: problem.message,
    }));
  const auth: ConditionIntent = problems.length
    ? {
        type: CONDITION.AuthConfigured,
        status: "False",
        reason: REASON.AuthInvalid,
        message: problems.map((problem) => `${problem.scope}: ${problem.message}`).join("\n"),
      }
    : {
        type: CONDITION.AuthConfigured,
        status: "True",
        reason: REASON.AuthValid,
        message: "Outgoing auth built for every backend",
      };
  return { conditions: [discovered, ...perBackend, auth], removeConditionsWithPrefix: BACKEND_AUTH_PREFIX };
}

// ---- references -------------------------------------------------------------------------

export interface ReferenceFacts {
  /** What the VirtualMCPServer's spec points at (triggers.ts vmcpRefs). */
  refs: readonly Reference[];
  members: VmcpInputs["members"];
  /** Objects of the namespace that failed schema validation: "Kind name" → errors. */
  invalid: ReadonlyMap<string, string>;
  /** Members of the group (by their raw spec.groupRef) that failed schema validation. */
  invalidMembers: readonly InvalidMember[];
  groupName: string;
  built: Build;
  hasApplied: boolean;
  previous: PreviousConditions;
}

/**
 * ReferencesValid (an invalid referenced object or group member: named with its field
 * errors, and a Warning Event when that list changes) and the builder's reference
 * conditions. When the builder could not build (desired undefined), the reconcile ends
 * without a Pulumi operation: the last applied deployment keeps running, and the index
 * re-triggers when the referenced object appears or changes. A condition that was never
 * False stays unset.
 */
export function referencesStep(facts: ReferenceFacts): StepOutcome {
  const { built, previous } = facts;
  const conditions: ConditionIntent[] = [];
  const warnings: NonNullable<StepOutcome["warnings"]> = [];
  const referenced = new Set(facts.refs.map((ref) => `${ref.kind} ${ref.name}`));
  for (const member of facts.members) {
    const authRef = member.object.spec.externalAuthConfigRef?.name;
    if (authRef) referenced.add(`MCPExternalAuthConfig ${authRef}`);
  }
  const invalidRefs = [...facts.invalid].filter(([id]) => referenced.has(id));
  const problems = [
    ...invalidRefs.map(([id, errors]) => `${id}: ${errors}`),
    ...facts.invalidMembers.map(
      (member) =>
        `${member.kind} ${member.name} (member of MCPGroup ${facts.groupName}, left out): ${member.errors}`,
    ),
  ];
  if (problems.length) {
    const reason = invalidRefs.length ? REASON.ReferencedObjectInvalid : REASON.GroupMemberInvalid;
    const message = problems.join("\n");
    conditions.push({ type: CONDITION.ReferencesValid, status: "False", reason, message });
    const before = previous.get(CONDITION.ReferencesValid);
    if (before?.status !== "False" || before.reason !== reason || before.message !== message)
      warnings.push({ reason, message: truncate(message) });
  } else if (previous.has(CONDITION.ReferencesValid))
    conditions.push({
      type: CONDITION.ReferencesValid,
      status: "True",
      reason: REASON.ReferencesValid,
      message: "Every referenced object and group member is valid",
    });

  const byCondition = new Map<ReferenceCondition, Build["problems"]>();
  for (const problem of built.problems) {
    const type: ReferenceCondition = problem.condition;
    byCondition.set(type, [...(byCondition.get(type) ?? []), problem]);
  }
  for (const type of Object.keys(RESOLVED_REASON) as ReferenceCondition[]) {
    const problems = byCondition.get(type) ?? [];
    if (problems.length)
      conditions.push({
        type,
        status: "False",
        reason: problems[0]?.reason ?? REASON.Invalid,
        message: problems.map((problem) => problem.message).join("\n"),
      });
    else if (previous.has(type))
      conditions.push({
        type,
        status: "True",
        reason: RESOLVED_REASON[type],
        message: "References resolved",
      });
  }
  if (built.desired) return { conditions, ...(warnings.length ? { warnings } : {}) };

  const message = built.problems.map((problem) => problem.message).join("; ");
  const reason = built.problems[0]?.reason ?? REASON.ReferenceProblem;
  conditions.push({
    type: CONDITION.Ready,
    status: "False",
    reason,
    message: facts.hasApplied ? `${message}${KEEPS_RUNNING}` : message,
  });
  return {
    conditions,
    phase: { phase: facts.hasApplied ? "Degraded" : "Failed", message },
    ...(transitioned(previous, CONDITION.Ready, "False", reason)
      ? { warnings: [...warnings, { reason, message: truncate(message) }] }
      : warnings.length
        ? { warnings }
        : {}),
    stop: DONE,
  };
}

// ---- stack ------------------------------------------------------------------------------

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
  const { namespace, name } = desired;
  const missing: string[] = [];
  const edited: string[] = [];
  const configMap = cache.get("ConfigMap", namespace, names.configMapName(name));
  const deployment = cache.get("Deployment", namespace, names.deploymentName(name));
  const service = cache.get("Service", namespace, names.serviceName(name));
  if (!configMap) missing.push(`ConfigMap ${names.configMapName(name)}`);
  if (!deployment) missing.push(`Deployment ${names.deploymentName(name)}`);
  if (!service) missing.push(`Service ${names.serviceName(name)}`);
  if (appliedChecksum) {
    if (configMap && configMap.metadata?.annotations?.[names.ANNOTATION_CONTENT_CHECKSUM] !== appliedChecksum)
      edited.push(`ConfigMap ${names.configMapName(name)} (content checksum differs)`);
    const template = (
      deployment?.spec as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined
    )?.template;
    if (
      deployment &&
      template?.metadata?.annotations?.[names.ANNOTATION_RUNCONFIG_CHECKSUM] !== appliedChecksum
    )
      edited.push(`Deployment ${names.deploymentName(name)} (pod template checksum differs)`);
  }
  return { missing, edited, total: 3 };
}

/** Whether and how to run the stack. */
export function decideStack(
  desiredHash: string,
  applied: Applied | undefined,
  owned: OwnedState,
  msSinceApply: number | undefined,
  graceMs: number,
): StackDecision {
  const drift = [
    ...owned.missing.map((object) => `${object} is missing`),
    ...owned.edited.map((object) => `${object} was edited`),
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

// ---- adoption (before the first apply) --------------------------------------------------

/** The stack's objects, by kind and name: what the first apply would create or take over. */
export function stackObjects(desired: DesiredState): { kind: StackObjectKind; name: string }[] {
  return [
    ...desired.objects.map((o) => ({ kind: o.kind as StackObjectKind, name: o.metadata.name })),
    { kind: "Secret" as const, name: desired.hmacSecret.name },
  ];
}

/** An object of a derived name that already exists. */
export interface ExistingObject {
  kind: string;
  name: string;
  metadata: ObjectMeta;
}

export interface AdoptionFacts {
  stack: StackKey;
  /** The VirtualMCPServer's uid (owner references name it). */
  uid: string | undefined;
  annotations: Record<string, string> | undefined;
  existing: readonly ExistingObject[];
  previous: PreviousConditions;
}

/** Re-check of an object a deleted VirtualMCPServer of this name left for the garbage collector. */
export const PENDING_DELETION_RECHECK_MS = 5_000;

function vmcpOwners(meta: ObjectMeta) {
  return (meta.ownerReferences ?? []).filter(
    (ref) => ref.kind === "VirtualMCPServer" && ref.apiVersion?.startsWith("toolhive.stacklok.dev/"),
  );
}

/** "no owner; managed by kubectl-client-side-apply" — who made the object, as far as it says. */
function provenance(meta: ObjectMeta): string {
  const owners = (meta.ownerReferences ?? []).map((ref) => `${ref.kind ?? "?"} ${ref.name ?? "?"}`);
  const managers = [...new Set((meta.managedFields ?? []).map((f) => f.manager).filter(Boolean))];
  return `${owners.length ? `owned by ${owners.join(", ")}` : "no owner"}; managed by ${managers.length ? managers.join(", ") : "unknown"}`;
}

/**
 * Before a stack's first apply: may it take over the objects that already carry its
 * names? Yes when each is owned by this VirtualMCPServer (its uid: a crash before the
 * status was written, or ToolHive's operator before a migration), labelled for it, or the
 * VirtualMCPServer opts in (names.ts ANNOTATION_ADOPT). Otherwise nothing is applied: a
 * condition names each object and its owner and managers, one Warning Event, and no retry
 * (the reconcile is terminal until the VirtualMCPServer changes or the next resync). An
 * object a deleted VirtualMCPServer of this name still owns is about to be collected:
 * checked again shortly. Undefined: go ahead.
 */
export function adoptionStep(facts: AdoptionFacts): StepOutcome | undefined {
  if (facts.annotations?.[names.ANNOTATION_ADOPT] === "true") return undefined;
  const { namespace, name } = facts.stack;
  const foreign: string[] = [];
  const leftovers: string[] = [];
  for (const object of facts.existing) {
    const owners = vmcpOwners(object.metadata);
    if (facts.uid && owners.some((ref) => ref.uid === facts.uid)) continue;
    if (names.labelledFor(name, object.metadata.labels)) continue;
    const what = `${object.kind} ${object.name} (${provenance(object.metadata)})`;
    if (owners.some((ref) => ref.name === name && ref.uid !== facts.uid)) leftovers.push(what);
    else foreign.push(what);
  }
  const stack = `Stack ${namespace}.${name}`;
  if (foreign.length > 0) {
    const message = truncate(
      `${stack} not applied: ${foreign.join("; ")} already exist${foreign.length === 1 ? "s" : ""} and ` +
        `${foreign.length === 1 ? "is" : "are"} not this VirtualMCPServer's. Delete or rename ` +
        `${foreign.length === 1 ? "it" : "them"}, or annotate the VirtualMCPServer ` +
        `${names.ANNOTATION_ADOPT}=true to take ${foreign.length === 1 ? "it" : "them"} over ` +
        `(checked again when the VirtualMCPServer changes and at every resync)`,
    );
    const reason = REASON.ObjectConflict;
    return {
      conditions: [
        { type: CONDITION.StackApplied, status: "False", reason, message },
        { type: CONDITION.Ready, status: "False", reason, message },
      ],
      phase: { phase: "Failed", message },
      warnings: transitioned(facts.previous, CONDITION.StackApplied, "False", reason)
        ? [{ reason, message }]
        : [],
      stop: { kind: "terminal", reason: `${foreign.length} object(s) not ours` },
    };
  }
  if (leftovers.length > 0) {
    const message = truncate(
      `${stack} waits: ${leftovers.join("; ")} belong${leftovers.length === 1 ? "s" : ""} to a deleted ` +
        `VirtualMCPServer ${name} and await${leftovers.length === 1 ? "s" : ""} the garbage collector`,
    );
    const reason = REASON.ObjectPendingDeletion;
    return {
      conditions: [
        { type: CONDITION.StackApplied, status: "False", reason, message },
        { type: CONDITION.Ready, status: "False", reason, message },
      ],
      phase: { phase: "Pending", message },
      stop: { kind: "after", ms: PENDING_DELETION_RECHECK_MS },
    };
  }
  return undefined;
}

/**
 * What an up must know about the objects of the stack's names that exist (`existing`, read
 * just before it): those without an owner reference to this VirtualMCPServer are adopted
 * (kept without one, and kept on destroy); at the first apply every one of them is taken
 * with force (adoptionStep allowed it; another manager's fields would conflict otherwise).
 * Recomputed from the cluster before every up: the objects themselves are the record.
 */
export function takeOverOf(
  uid: string | undefined,
  existing: readonly ExistingObject[],
  firstApply: boolean,
): { adopted: ObjectRef[]; preexisting: ObjectRef[] } {
  const ref = (o: ExistingObject): ObjectRef => ({ kind: o.kind, name: o.name });
  return {
    adopted: existing
      .filter((o) => !uid || !vmcpOwners(o.metadata).some((owner) => owner.uid === uid))
      .map(ref),
    preexisting: firstApply ? existing.map(ref) : [],
  };
}

/**
 * The plan of a change (its per-resource diff, from the up's own events or a gate's
 * preview) is recorded — Preview Event, status.lastPreview — for every up, and for a
 * repair that also changes the desired state (a bare repair restores what was applied).
 */
export function recordsPlan(
  decision: StackDecision,
  appliedHash: string | undefined,
  desiredHash: string,
): boolean {
  return decision.action === "up" || (decision.action === "repair" && appliedHash !== desiredHash);
}

/** `--preview-gate`: off (one up per change), or a preview first that holds disruptive changes. */
export const PREVIEW_GATES = ["off", "replacements"] as const;
export type PreviewGate = (typeof PREVIEW_GATES)[number];

const REPLACING_OPS = new Set(["replace", "create-replacement", "delete-replaced", "delete"]);
const ENDPOINT_KINDS = new Set(["Deployment", "Service"]);

function selectorOf(inputs: Record<string, unknown> | undefined): string {
  const spec = inputs?.spec as { selector?: unknown } | undefined;
  return JSON.stringify(spec?.selector ?? null);
}

/**
 * What in a plan needs a person's approval under `--preview-gate replacements`: the
 * Deployment or Service replaced or deleted (downtime, a new cluster IP), or a selector
 * that changes (the Service routes to other pods). One line per object.
 */
export function disruptiveChanges(changes: PreviewResult["changes"]): string[] {
  const out = new Map<string, string>();
  for (const change of changes) {
    const kind = change.type.split(":").pop() ?? change.type;
    if (!ENDPOINT_KINDS.has(kind)) continue;
    // The object's own name (the change's is Pulumi's logical name, e.g. gw-deployment).
    const meta = (change.after?.metadata ?? change.before?.metadata) as { name?: unknown } | undefined;
    const at = `${kind} ${typeof meta?.name === "string" ? meta.name : change.name}`;
    if (REPLACING_OPS.has(change.op))
      out.set(at, `${at} is ${change.op === "delete" ? "deleted" : "replaced"}`);
    else if (change.op === "update" && selectorOf(change.before) !== selectorOf(change.after))
      out.set(at, `${at}: spec.selector changes`);
  }
  return [...out.values()].sort();
}

/** Whether the VirtualMCPServer approves the change to `desiredHash` (names.ts ANNOTATION_APPROVE_CHANGE). */
export function changeApproved(
  annotations: Record<string, string> | undefined,
  desiredHash: string,
): boolean {
  const value = annotations?.[names.ANNOTATION_APPROVE_CHANGE]?.trim();
  return !!value && value.length >= 12 && desiredHash.startsWith(value);
}

/**
 * A change the gate holds: nothing is applied, the last applied objects keep running
 * (Degraded: what serves is not what the spec says), StackApplied=False with what would
 * be disrupted and the annotation that approves it; one Warning Event. No retry: the
 * annotation (or the next change) triggers the next reconcile.
 */
export function gateStep(
  stack: StackKey,
  disruptive: readonly string[],
  desiredHash: string,
  previous: PreviousConditions,
  /** This process held the same change before (its status write may not be read back yet). */
  alreadyHeld = false,
): StepOutcome {
  const reason = REASON.ChangeNeedsApproval;
  const message = truncate(
    `Stack ${stack.namespace}.${stack.name} holds the change to ${desiredHash.slice(0, 12)}: ` +
      `${disruptive.join("; ")}. Annotate the VirtualMCPServer ` +
      `${names.ANNOTATION_APPROVE_CHANGE}=${desiredHash.slice(0, 12)} to apply it`,
  );
  return {
    conditions: [{ type: CONDITION.StackApplied, status: "False", reason, message }],
    phase: { phase: "Degraded", message },
    // Once per held change: a second one held meanwhile has another hash, so another message.
    warnings:
      !alreadyHeld &&
      (transitioned(previous, CONDITION.StackApplied, "False", reason) ||
        previous.get(CONDITION.StackApplied)?.message !== message)
        ? [{ reason, message }]
        : [],
  };
}

export function previewMessage(preview: PreviewResult): string {
  const changed = preview.changes.filter((change) => change.op !== "same");
  const detail = changed
    .slice(0, 8)
    .map(
      (change) =>
        `${change.op} ${change.type.split(":").pop()} ${change.name}${change.fields.length ? ` [${change.fields.slice(0, 5).join(",")}]` : ""}`,
    );
  if (changed.length > 8) detail.push(`… ${changed.length - 8} more`);
  return truncate(
    `Preview: ${formatSummary(preview.summary)}${detail.length ? `: ${detail.join("; ")}` : ""}`,
  );
}

/** The Normal Event after a successful up or repair. */
export function appliedEvent(
  stack: StackKey,
  decision: StackDecision & { action: "up" | "repair" },
  up: Omit<UpResult, "changes">,
): { reason: string; verb: string; message: string } {
  const verb = decision.action === "repair" ? "repaired" : "updated";
  return {
    reason: decision.action === "repair" ? EVENT_REASON.DriftRepaired : EVENT_REASON.StackUpdated,
    verb,
    message: `Stack ${stack.namespace}.${stack.name} ${verb} in ${(up.durationMs / 1000).toFixed(1)}s (${formatSummary(up.summary)}): ${decision.reason}`,
  };
}

/** The up or repair failed: the error goes on to the queue's backoff. */
export function stackFailedStep(stack: StackKey, error: string, hasApplied: boolean): StepOutcome {
  const message = truncate(`Stack ${stack.namespace}.${stack.name}: ${error}`);
  return {
    conditions: [
      { type: CONDITION.StackApplied, status: "False", reason: REASON.StackUpdateFailed, message },
      { type: CONDITION.Ready, status: "False", reason: REASON.StackUpdateFailed, message },
    ],
    phase: { phase: hasApplied ? "Degraded" : "Failed", message },
    warnings: [{ reason: REASON.StackUpdateFailed, message }],
  };
}

/**
 * StackApplied=True once the stack is at the desired hash; while waiting for the cache
 * after a change nothing is said yet.
 */
export function stackAppliedStep(
  stack: StackKey,
  decision: StackDecision,
  appliedHash: string | undefined,
  desiredHash: string,
): StepOutcome {
  if (decision.action === "wait" && appliedHash !== desiredHash) return { conditions: [] };
  return {
    conditions: [
      {
        type: CONDITION.StackApplied,
        status: "True",
        reason: REASON.StackUpToDate,
        message: `Stack ${stack.namespace}.${stack.name} is at ${desiredHash.slice(0, 12)}`,
      },
    ],
  };
}

// ---- readiness --------------------------------------------------------------------------

/** How often the controller looks at the pods again while one is not ready. */
export const POD_RECHECK_MS = 10_000;

/** The Deployment's pods: all ready?, and the first reason one cannot become ready. */
export interface PodsSummary {
  total: number;
  ready: number;
  allReady: boolean;
  /** e.g. { reason: "CrashLoopBackOff", message: "pod gw-x: container vmcp: back-off 20s …" } */
  problem: { reason: string; message: string } | undefined;
}

/** Waiting reasons that are only a pod on its way (not a problem to report). */
const STARTING = new Set(["ContainerCreating", "PodInitializing"]);

export function summarizePods(pods: readonly RawObject[]): PodsSummary {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  type ContainerStatus = {
    name: string;
    ready?: boolean;
    restartCount?: number;
    state?: { waiting?: { reason?: string; message?: string } };
    lastState?: { terminated?: { exitCode?: number; reason?: string } };
  };
  type PodStatus = { conditions?: { type: string; status: string }[]; containerStatuses?: ContainerStatus[] };
  const isReady = (p: RawObject) =>
    ((p.status as PodStatus | undefined)?.conditions ?? []).some(
      (c) => c.type === "Ready" && c.status === "True",
    );
  let problem: PodsSummary["problem"];
  for (const p of [...live].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))) {
    if (problem) break;
    for (const c of (p.status as PodStatus | undefined)?.containerStatuses ?? []) {
      const waiting = c.state?.waiting;
      if (!waiting?.reason || STARTING.has(waiting.reason)) continue;
      const last = c.lastState?.terminated;
      const exited = last ? ` (last exit code ${last.exitCode ?? "?"}, ${c.restartCount ?? 0} restarts)` : "";
      problem = {
        reason: waiting.reason,
        message: `pod ${p.metadata?.name}: container ${c.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ""}${exited}`,
      };
      break;
    }
  }
  const ready = live.filter(isReady).length;
  return { total: live.length, ready, allReady: live.length > 0 && ready === live.length, problem };
}

/** What a ready pod's message adds when sessions live in pod memory (docs/rollouts.md). */
export const SESSIONS_IN_POD_MEMORY =
  "MCP sessions live in pod memory (no spec.sessionStorage redis): a rollout, such as a backend joining or leaving the group, ends every client's session";

/**
 * The PodsReady condition: every pod of the Deployment ready, or the reason one is not.
 * `sharedSessions` false: the ready message says that rollouts end sessions.
 */
export function podsStep(pods: PodsSummary, sharedSessions = true): StepOutcome {
  const condition = pods.allReady
    ? {
        type: CONDITION.PodsReady,
        status: "True" as const,
        reason: REASON.PodsReady,
        message: `${pods.ready}/${pods.total} pod(s) ready${sharedSessions ? "" : `; ${SESSIONS_IN_POD_MEMORY}`}`,
      }
    : {
        type: CONDITION.PodsReady,
        status: "False" as const,
        reason: pods.problem?.reason ?? REASON.PodsStarting,
        message: pods.problem?.message ?? `${pods.ready}/${pods.total} pod(s) ready`,
      };
  return { conditions: [condition] };
}

/**
 * Is the Deployment serving (at least one ready pod, or deliberately scaled to 0)? When it
 * is not, `problem` (from its pods) says why.
 */
export function deploymentReady(
  deployment: RawObject | undefined,
  problem?: { message: string },
): { ready: boolean; message: string } {
  if (!deployment) return { ready: false, message: "the Deployment does not exist yet" };
  const spec = deployment.spec as { replicas?: number } | undefined;
  const status = deployment.status as { readyReplicas?: number; replicas?: number } | undefined;
  if (spec?.replicas === 0) return { ready: true, message: "the Deployment is scaled to 0 replicas" };
  const ready = status?.readyReplicas ?? 0;
  return ready > 0
    ? { ready: true, message: `${ready} pod(s) ready` }
    : {
        ready: false,
        message: problem ? `no ready pod: ${problem.message}` : "waiting for a ready pod of the Deployment",
      };
}

/** What the phase table reads about the backends: every entry of status.discoveredBackends. */
export interface BackendTally {
  total: number;
  /** Routable (ready, degraded, unauthenticated: health/state.ts isRoutable). */
  routable: number;
  /** Routable but slow. */
  degraded: number;
  /** Not probed yet (status unknown). */
  unchecked: number;
  /** "2/3 routable (1 ready, …)": how the counts read in a message. */
  detail: string;
}

export function tallyBackends(backends: readonly BackendStatus[]): BackendTally {
  const count = (status: BackendStatus["status"]) => backends.filter((b) => b.status === status).length;
  const routable = routableCount(backends);
  return {
    total: backends.length,
    routable,
    degraded: count("degraded"),
    unchecked: count("unknown"),
    detail: `${routable}/${backends.length} routable (${count("ready")} ready, ${count("degraded")} degraded, ${count("unauthenticated")} unauthenticated, ${count("unavailable")} unavailable, ${count("unknown")} not checked yet)`,
  };
}

export interface PhaseRow {
  phase: VirtualMCPServerPhase;
  ready: "True" | "False";
  reason: Reason;
  message: string;
}

/**
 * The phase table (docs/architecture.md "Phase and Ready", one row per return below).
 * Ready=True needs a serving Deployment and at least one routable backend: an empty group
 * (NoBackends) or zero routable backends (Failed, Degraded under best_effort; Pending
 * while some are not checked yet) is never Ready. Backends not checked yet do not hold
 * back Ready once another is routable. Without the health monitor, "routable" means the
 * build could configure the backend.
 */
export function phaseFor(
  deployment: { ready: boolean; message: string },
  tally: BackendTally,
  partialFailureMode: "fail" | "best_effort" = "fail",
): PhaseRow {
  const row = (phase: VirtualMCPServerPhase, ready: "True" | "False", reason: Reason, message: string) => ({
    phase,
    ready,
    reason,
    message,
  });
  if (!deployment.ready) return row("Pending", "False", REASON.DeploymentNotReady, deployment.message);
  if (tally.total === 0) return row("Pending", "False", REASON.NoBackends, "The group has no backends");
  if (tally.routable === 0)
    return tally.unchecked > 0
      ? row("Pending", "False", REASON.BackendsPending, `Waiting for health checks: ${tally.detail}`)
      : row(
          partialFailureMode === "best_effort" ? "Degraded" : "Failed",
          "False",
          REASON.NoRoutableBackends,
          `No routable backend: ${tally.detail}`,
        );
  if (tally.routable < tally.total - tally.unchecked || tally.degraded > 0)
    return row("Degraded", "True", REASON.SomeBackendsUnhealthy, tally.detail);
  return row("Ready", "True", REASON.AllBackendsRoutable, tally.detail);
}

/** Ready and the phase, from the Deployment and every backend's status (phaseFor). */
export function readinessStep(
  deployment: { ready: boolean; message: string },
  backends: readonly BackendStatus[],
  partialFailureMode: "fail" | "best_effort" = "fail",
): StepOutcome {
  const row = phaseFor(deployment, tallyBackends(backends), partialFailureMode);
  const message = deployment.ready ? `${deployment.message}; ${row.message}` : row.message;
  return {
    conditions: [{ type: CONDITION.Ready, status: row.ready, reason: row.reason, message }],
    phase: { phase: row.phase, message: row.message },
  };
}

// ---- transitions ------------------------------------------------------------------------

/** An Event about a change of health or phase; `subject` keys its rate limit. */
export interface TransitionEvent {
  type: "Normal" | "Warning";
  reason: string;
  subject: string;
  message: string;
}

/** What the last reconcile reported: the phase and each backend's status. */
export interface Observed {
  phase: VirtualMCPServerPhase | undefined;
  backends: ReadonlyMap<string, BackendStatus["status"]>;
}

export function observed(
  phase: VirtualMCPServerPhase | undefined,
  backends: readonly BackendStatus[] | undefined,
): Observed {
  return { phase, backends: new Map((backends ?? []).map((backend) => [backend.name, backend.status])) };
}

/**
 * The Events of going from `before` to `after`: a phase change, a backend that stops being
 * routable or fails its first check (BackendUnavailable), one that is routable again after
 * that (BackendRecovered). A backend that is new, gone or not checked yet says nothing.
 */
export function transitionEvents(
  before: Observed,
  after: Observed,
  phaseMessage: string,
  messages: ReadonlyMap<string, string | undefined>,
): TransitionEvent[] {
  const out: TransitionEvent[] = [];
  for (const [name, status] of after.backends) {
    const was = before.backends.get(name);
    if (was === undefined || was === status || status === "unknown") continue;
    const detail = messages.get(name);
    if (!isRoutable(status) && (isRoutable(was) || was === "unknown"))
      out.push({
        type: "Warning",
        reason: EVENT_REASON.BackendUnavailable,
        subject: name,
        message: truncate(`Backend ${name} is ${status}${detail ? `: ${detail}` : ""}`),
      });
    else if (isRoutable(status) && !isRoutable(was) && was !== "unknown")
      out.push({
        type: "Normal",
        reason: EVENT_REASON.BackendRecovered,
        subject: name,
        message: `Backend ${name} is ${status} again`,
      });
  }
  if (after.phase && before.phase && after.phase !== before.phase)
    out.push({
      type: after.phase === "Degraded" || after.phase === "Failed" ? "Warning" : "Normal",
      reason: EVENT_REASON.PhaseChanged,
      subject: `${before.phase}->${after.phase}`,
      message: truncate(`Phase ${before.phase} → ${after.phase}: ${phaseMessage}`),
    });
  return out;
}

/**
 * conflictResolution manual is valid without overrides (vmcp resolves at runtime), but a
 * name two backends advertise without an override renaming one apart is a clash vmcp
 * cannot resolve: say which, once the probes know the tools. "remove" when not manual.
 */
export function toolConflictsStep(
  vmcp: VirtualMCPServer,
  conflicts: readonly ToolConflict[] | undefined,
): StepOutcome | "remove" | undefined {
  if (vmcp.spec.config?.aggregation?.conflictResolution !== "manual") return "remove";
  if (!conflicts) return undefined;
  if (!conflicts.length)
    return {
      conditions: [
        {
          type: CONDITION.ToolConflictsResolved,
          status: "True",
          reason: REASON.NoToolConflicts,
          message: "No two backends advertise the same tool name",
        },
      ],
    };
  const list = conflicts.map((c) => `"${c.name}" (${c.backends.join(", ")})`).join("; ");
  return {
    conditions: [
      {
        type: CONDITION.ToolConflictsResolved,
        status: "False",
        reason: REASON.UnresolvedToolConflicts,
        message: `conflictResolution manual leaves ${conflicts.length} tool name(s) advertised by more than one backend: ${list}; add spec.config.aggregation.tools[].overrides renaming all but one`,
      },
    ],
  };
}

/**
 * ConfigWarning: the builder's warnings, in status and as one Warning Event each time they
 * change (render and preview print the same lines).
 */
export function configWarningStep(
  warnings: readonly string[],
  previous: PreviousConditions,
): StepOutcome | "remove" {
  if (!warnings.length) return "remove";
  const message = warnings.join("\n");
  const changed = previous.get(CONDITION.ConfigWarning)?.message !== message;
  return {
    conditions: [{ type: CONDITION.ConfigWarning, status: "True", reason: REASON.ConfigWarnings, message }],
    ...(changed ? { warnings: [{ reason: REASON.ConfigWarnings, message: truncate(message) }] } : {}),
  };
}

/** status.oidcConfigHash & co.: which version of each shared config the applied config used. */
export interface ReferenceHashes {
  oidcConfigHash: string | undefined;
  authzConfigHash: string | undefined;
  telemetryConfigHash: string | undefined;
}

/**
 * The hashes ToolHive reports for the MCPOIDCConfig, MCPAuthzConfig and MCPTelemetryConfig
 * a VirtualMCPServer references (absent when it references none). Ours hash the canonical
 * spec, so the digits differ from ToolHive's; they change exactly when the spec does.
 */
export function referenceHashes(inputs: VmcpInputs): ReferenceHashes {
  const hashOf = (o: { spec: unknown } | undefined) =>
    o ? sha256(canonicalJson(o.spec)).slice(0, 16) : undefined;
  return {
    oidcConfigHash: hashOf(inputs.oidcConfig),
    authzConfigHash: hashOf(inputs.authzConfig),
    telemetryConfigHash: hashOf(inputs.telemetryConfig),
  };
}
