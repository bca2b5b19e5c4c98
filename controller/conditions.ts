// The status vocabulary: every condition type this controller writes, every reason it
// chooses, and the reasons of its Events. ToolHive's names where ToolHive has them; the
// strings are API (users and tools match on them), so renaming one is a breaking change.
// Reasons chosen elsewhere pass through as data: the builder's reference and auth
// problems (program/vmcpconfig.ts RefProblem, program/outgoingauth.ts AuthProblem).

export const CONDITION = {
  Valid: "Valid",
  GroupRefValidated: "GroupRefValidated",
  BackendsDiscovered: "BackendsDiscovered",
  AuthConfigured: "AuthConfigured",
  ReferencesValid: "ReferencesValid",
  ToolConfigRefsValidated: "ToolConfigRefsValidated",
  CompositeToolRefsValidated: "CompositeToolRefsValidated",
  IncomingAuthValidated: "IncomingAuthValidated",
  OIDCConfigRefValidated: "OIDCConfigRefValidated",
  AuthzConfigRefValidated: "AuthzConfigRefValidated",
  TelemetryConfigRefValidated: "TelemetryConfigRefValidated",
  EmbeddingServerReady: "EmbeddingServerReady",
  PodTemplateValidated: "PodTemplateValidated",
  StackApplied: "StackApplied",
  /** Only with conflictResolution manual, once the probes know the backends' tools. */
  ToolConflictsResolved: "ToolConflictsResolved",
  /** Every pod of the Deployment ready, or the reason one is not (CrashLoopBackOff, …). */
  PodsReady: "PodsReady",
  /**
   * True while the builder has warnings (the config runs, but not as it reads: a filter
   * hiding a renamed tool, an exposed anonymous Service…); removed when there are none.
   */
  ConfigWarning: "ConfigWarning",
  Ready: "Ready",
} as const;

/** Prefix of the per-backend auth conditions (`BackendAuthConfig-<name>`), pruned when stale. */
export const BACKEND_AUTH_PREFIX = "BackendAuthConfig-";
export type BackendAuthCondition = `${typeof BACKEND_AUTH_PREFIX}${string}`;
export const backendAuthCondition = (backend: string): BackendAuthCondition =>
  `${BACKEND_AUTH_PREFIX}${backend}`;

export type ConditionType = (typeof CONDITION)[keyof typeof CONDITION] | BackendAuthCondition;

const CONDITION_TYPES: ReadonlySet<string> = new Set(Object.values(CONDITION));
/** Whether this controller writes conditions of `type` (the rest are another writer's). */
export const isOurCondition = (type: string): boolean =>
  CONDITION_TYPES.has(type) || type.startsWith(BACKEND_AUTH_PREFIX);

/** The builder's reference conditions (program/vmcpconfig.ts RefProblem["condition"]). */
export const REFERENCE_CONDITIONS = [
  CONDITION.ToolConfigRefsValidated,
  CONDITION.CompositeToolRefsValidated,
  CONDITION.IncomingAuthValidated,
  CONDITION.OIDCConfigRefValidated,
  CONDITION.AuthzConfigRefValidated,
  CONDITION.TelemetryConfigRefValidated,
  CONDITION.EmbeddingServerReady,
  CONDITION.PodTemplateValidated,
] as const;
export type ReferenceCondition = (typeof REFERENCE_CONDITIONS)[number];

export const REASON = {
  // Valid
  ValidationSucceeded: "ValidationSucceeded",
  ValidationFailed: "ValidationFailed",
  // GroupRefValidated (and Ready while the group is unusable)
  GroupRefValid: "GroupRefValid",
  GroupRefNotFound: "GroupRefNotFound",
  GroupRefInvalid: "GroupRefInvalid",
  GroupRefNotReady: "GroupRefNotReady",
  // BackendsDiscovered
  BackendsDiscovered: "BackendsDiscovered",
  NoBackends: "NoBackends",
  // AuthConfigured
  AuthValid: "AuthValid",
  AuthInvalid: "AuthInvalid",
  // ReferencesValid
  ReferencesValid: "ReferencesValid",
  ReferencedObjectInvalid: "ReferencedObjectInvalid",
  /** A member of the group fails schema validation (and is left out). */
  GroupMemberInvalid: "GroupMemberInvalid",
  // The builder's reference conditions once resolved again (False carries the problem's reason)
  ToolConfigRefsValid: "ToolConfigRefsValid",
  CompositeToolRefsValid: "CompositeToolRefsValid",
  IncomingAuthValid: "IncomingAuthValid",
  OIDCConfigRefValid: "OIDCConfigRefValid",
  AuthzConfigRefValid: "AuthzConfigRefValid",
  TelemetryConfigRefValid: "TelemetryConfigRefValid",
  EmbeddingServerReady: "EmbeddingServerReady",
  PodTemplateValid: "PodTemplateValid",
  /** Ready=False for a reference problem that came without a reason. */
  ReferenceProblem: "ReferenceProblem",
  /** The builder's reference condition without a reason of its own. */
  Invalid: "Invalid",
  // ConfigWarning
  ConfigWarnings: "ConfigWarnings",
  // ToolConflictsResolved
  NoToolConflicts: "NoToolConflicts",
  UnresolvedToolConflicts: "UnresolvedToolConflicts",
  // StackApplied (and Ready when the stack failed)
  StackUpToDate: "StackUpToDate",
  StackUpdateFailed: "StackUpdateFailed",
  /** Before the first apply: an object of a derived name exists and is not ours (steps.ts adoptionStep). */
  ObjectConflict: "ObjectConflict",
  /** Before the first apply: an object left by a deleted VirtualMCPServer of this name, not yet collected. */
  ObjectPendingDeletion: "ObjectPendingDeletion",
  /** `--preview-gate replacements`: the change would replace the Deployment/Service or move a selector (steps.ts gateStep). */
  ChangeNeedsApproval: "ChangeNeedsApproval",
  // Ready, by the phase table (steps.ts phaseFor); also NoBackends. ToolHive's vmcp names.
  DeploymentNotReady: "DeploymentNotReady",
  PodsReady: "PodsReady",
  /** Pods not ready yet with no waiting reason to report (starting, probes pending). */
  PodsStarting: "PodsStarting",
  AllBackendsRoutable: "AllBackendsRoutable",
  SomeBackendsUnhealthy: "SomeBackendsUnhealthy",
  NoRoutableBackends: "NoRoutableBackends",
  BackendsPending: "BackendsPending",
} as const;

export type Reason = (typeof REASON)[keyof typeof REASON];

/** The reason a builder reference condition turns True with. */
export const RESOLVED_REASON: Readonly<Record<ReferenceCondition, Reason>> = {
  ToolConfigRefsValidated: REASON.ToolConfigRefsValid,
  CompositeToolRefsValidated: REASON.CompositeToolRefsValid,
  IncomingAuthValidated: REASON.IncomingAuthValid,
  OIDCConfigRefValidated: REASON.OIDCConfigRefValid,
  AuthzConfigRefValidated: REASON.AuthzConfigRefValid,
  TelemetryConfigRefValidated: REASON.TelemetryConfigRefValid,
  EmbeddingServerReady: REASON.EmbeddingServerReady,
  PodTemplateValidated: REASON.PodTemplateValid,
};

/** Reasons of the Events that are not also condition reasons. */
export const EVENT_REASON = {
  Preview: "Preview",
  StackUpdated: "StackUpdated",
  DriftRepaired: "DriftRepaired",
  StackDestroyed: "StackDestroyed",
  StackDestroyFailed: "StackDestroyFailed",
  /** The phase changed (Warning when it left Ready or Pending for Degraded or Failed). */
  PhaseChanged: "PhaseChanged",
  /** A backend stopped being routable. */
  BackendUnavailable: "BackendUnavailable",
  /** A backend that was unavailable is routable again. */
  BackendRecovered: "BackendRecovered",
} as const;
