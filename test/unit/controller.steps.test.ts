// The pure steps of a reconcile: what each says the status should be, and where the
// reconcile ends, without a cache, an engine or an API server.
import assert from "node:assert/strict";
import type { Condition } from "../../api/index.js";
import { CONDITION, EVENT_REASON, REASON, RESOLVED_REASON } from "../../controller/conditions.js";
import type { RawObject } from "../../controller/objects.js";
import type { BackendStatus } from "../../controller/status.js";
import {
  referenceHashes,
  appliedEvent,
  backendStatuses,
  backendsStep,
  configWarningStep,
  groupStep,
  recordsPlan,
  previousConditions,
  readinessStep,
  referencesStep,
  stackAppliedStep,
  stackFailedStep,
  transitionEvents,
  observed,
  validateStep,
  type GroupFacts,
  type ReferenceFacts,
  type StepOutcome,
  podsStep,
  SESSIONS_IN_POD_MEMORY,
} from "../../controller/steps.js";
import type { Build } from "../../program/desired.js";
import { buildFor, example, exampleLoaded, vmcpOf } from "./helpers.js";
import { gatherInputs, objectSet, type AnyObject } from "../../program/inputs.js";

const NS = "team";
const vmcp = (spec: Record<string, unknown> = {}): RawObject => ({
  apiVersion: "toolhive.stacklok.dev/v1beta1",
  kind: "VirtualMCPServer",
  metadata: { name: "gw", namespace: NS, generation: 1 },
  spec: { groupRef: { name: "eng" }, incomingAuth: { type: "anonymous" }, ...spec },
});
const condition = (type: string, status: "True" | "False", reason: string): Condition => ({
  type,
  status,
  reason,
  message: "",
  lastTransitionTime: "2026-03-01T00:00:00Z",
});
const none = previousConditions(undefined);
const cond = (outcome: StepOutcome, type: string) => outcome.conditions.find((c) => c.type === type);

describe("reconcile steps (pure)", () => {
  describe("conditions table", () => {
    it("spells every condition type and reason as its own key (no derived strings)", () => {
      for (const table of [CONDITION, REASON, EVENT_REASON])
        for (const [key, value] of Object.entries(table)) assert.equal(value, key);
      for (const [type, reason] of Object.entries(RESOLVED_REASON))
        assert.ok(Object.values(REASON).includes(reason), `${type} → ${reason}`);
    });
  });

  describe("validate", () => {
    it("a valid spec: Valid=True, the parsed object, the reconcile goes on", () => {
      const result = validateStep(vmcp(), none);
      assert.equal(result.vmcp?.metadata.name, "gw");
      assert.deepEqual(cond(result.outcome, "Valid"), {
        type: "Valid",
        status: "True",
        reason: "ValidationSucceeded",
        message: "The spec is valid",
      });
      assert.equal(result.outcome.stop, undefined);
    });

    it("an invalid spec is terminal, names the field, and warns only when it becomes invalid", () => {
      const raw = vmcp({ config: { aggregation: { conflictResolution: "priority" } } });
      const first = validateStep(raw, none);
      assert.equal(first.vmcp, undefined);
      assert.deepEqual(first.outcome.stop, { kind: "terminal", reason: "ValidationFailed" });
      assert.equal(first.outcome.phase?.phase, "Failed");
      assert.match(first.outcome.phase?.message ?? "", /^Invalid spec: .*priorityOrder/);
      assert.equal(cond(first.outcome, "Ready")?.status, "False");
      assert.equal(first.outcome.warnings?.[0]?.reason, "ValidationFailed");
      const again = validateStep(
        raw,
        previousConditions({ conditions: [condition("Valid", "False", "ValidationFailed")] }),
      );
      assert.equal(again.outcome.warnings, undefined, "no repeated event");
    });
  });

  describe("group", () => {
    const facts = (group: GroupFacts["group"], extra: Partial<GroupFacts> = {}): GroupFacts => ({
      namespace: NS,
      groupName: "eng",
      group,
      invalid: undefined,
      hasApplied: false,
      previous: none,
      ...extra,
    });
    const group = (phase?: string) =>
      ({
        metadata: { name: "eng" },
        spec: {},
        ...(phase ? { status: { phase } } : {}),
      }) as GroupFacts["group"];

    it("a Ready group, or one nobody reports on, is usable", () => {
      assert.equal(groupStep(facts(group("Ready"))).stop, undefined);
      assert.equal(
        cond(groupStep(facts(group("Ready"))), "GroupRefValidated")?.message,
        "MCPGroup eng is Ready",
      );
      assert.equal(cond(groupStep(facts(group())), "GroupRefValidated")?.message, "MCPGroup eng exists");
    });

    it("missing, invalid or not Ready: Pending and a retry with the reason", () => {
      const missing = groupStep(facts(undefined));
      assert.deepEqual(missing.stop, { kind: "retry", reason: "GroupRefNotFound" });
      assert.equal(missing.phase?.phase, "Pending");
      assert.equal(missing.warnings?.[0]?.message, "MCPGroup eng not found in namespace team");
      const invalid = groupStep(facts(undefined, { invalid: "spec: bad" }));
      assert.equal(cond(invalid, "GroupRefValidated")?.reason, "GroupRefInvalid");
      assert.match(cond(invalid, "GroupRefValidated")?.message ?? "", /is invalid: spec: bad/);
      const pending = groupStep(facts(group("Pending"), { hasApplied: true }));
      assert.deepEqual(pending.stop, { kind: "retry", reason: "GroupRefNotReady" });
      assert.match(cond(pending, "Ready")?.message ?? "", /keeps running$/);
      const repeated = groupStep(
        facts(undefined, {
          previous: previousConditions({
            conditions: [condition("GroupRefValidated", "False", "GroupRefNotFound")],
          }),
        }),
      );
      assert.equal(repeated.warnings, undefined);
    });
  });

  describe("backends", () => {
    it("counts usable backends and names the ones left out", () => {
      const built = buildFor(example("basic"));
      const backends = backendStatuses(built);
      const all = backendsStep(built, backends, "engineering");
      assert.equal(
        cond(all, "BackendsDiscovered")?.message,
        `Discovered ${backends.length} backend(s), ${backends.length} usable`,
      );
      assert.equal(cond(all, "AuthConfigured")?.status, "True");
      assert.equal(all.removeConditionsWithPrefix, "BackendAuthConfig-");
      const degraded: BackendStatus[] = [
        ...backends,
        { name: "late", status: "unavailable", message: "left out: no URL yet" },
      ];
      assert.match(
        cond(backendsStep(built, degraded, "engineering"), "BackendsDiscovered")?.message ?? "",
        /usable; left out: late \(left out: no URL yet\)$/,
      );
      const empty = backendsStep(built, [], "engineering");
      assert.equal(cond(empty, "BackendsDiscovered")?.reason, "NoBackends");
    });

    it("one False condition per backend with an auth problem, none for the default", () => {
      const built = buildFor(example("basic"));
      const withProblems: Build = {
        ...built,
        auth: {
          ...built.auth,
          problems: [
            { scope: "github", authConfigRef: "gh", reason: "AuthConfigNotFound", message: "gh not found" },
            { scope: "default", authConfigRef: "d", reason: "AuthInvalid", message: "bad default" },
          ],
        },
      };
      const outcome = backendsStep(withProblems, backendStatuses(withProblems), "engineering");
      assert.deepEqual(cond(outcome, "BackendAuthConfig-github"), {
        type: "BackendAuthConfig-github",
        status: "False",
        reason: "AuthConfigNotFound",
        message: "gh not found",
      });
      assert.equal(cond(outcome, "BackendAuthConfig-default"), undefined);
      assert.equal(cond(outcome, "AuthConfigured")?.message, "github: gh not found\ndefault: bad default");
    });
  });

  describe("references", () => {
    const built = buildFor(example("basic"));
    const facts = (extra: Partial<ReferenceFacts> = {}): ReferenceFacts => ({
      refs: [{ kind: "MCPToolConfig", namespace: NS, name: "tc" }],
      members: [],
      invalid: new Map(),
      invalidMembers: [],
      groupName: "eng",
      built,
      hasApplied: false,
      previous: none,
      ...extra,
    });
    const broken: Build = {
      ...built,
      problems: [
        {
          condition: "ToolConfigRefsValidated",
          reason: "ToolConfigNotFound",
          message: "MCPToolConfig tc not found",
        },
      ],
      desired: undefined,
    };

    it("sets nothing while every reference was always fine", () => {
      assert.deepEqual(referencesStep(facts()), { conditions: [] });
    });

    it("reports invalid referenced objects, a member's auth config included", () => {
      const member = {
        object: { spec: { externalAuthConfigRef: { name: "gh" } } },
      } as ReferenceFacts["members"][number];
      const outcome = referencesStep(
        facts({
          members: [member],
          invalid: new Map([
            ["MCPToolConfig tc", "spec.toolsFilter: expected array"],
            ["MCPExternalAuthConfig gh", "spec.type: required"],
            ["MCPToolConfig unrelated", "ignored"],
          ]),
        }),
      );
      assert.equal(cond(outcome, "ReferencesValid")?.reason, "ReferencedObjectInvalid");
      assert.equal(
        cond(outcome, "ReferencesValid")?.message,
        "MCPToolConfig tc: spec.toolsFilter: expected array\nMCPExternalAuthConfig gh: spec.type: required",
      );
    });

    it("names a group member that fails schema validation, with its field error, and warns once", () => {
      const invalidMembers = [
        {
          kind: "MCPServer" as const,
          name: "fetch",
          errors: "spec.transport: expected one of stdio, found carrier-pigeon",
        },
      ];
      const outcome = referencesStep(facts({ invalidMembers }));
      const expected =
        "MCPServer fetch (member of MCPGroup eng, left out): spec.transport: expected one of stdio, found carrier-pigeon";
      assert.deepEqual(cond(outcome, "ReferencesValid"), {
        type: "ReferencesValid",
        status: "False",
        reason: "GroupMemberInvalid",
        message: expected,
      });
      assert.deepEqual(outcome.warnings, [{ reason: "GroupMemberInvalid", message: expected }]);
      const again = referencesStep(
        facts({
          invalidMembers,
          previous: previousConditions({
            conditions: [
              { ...condition("ReferencesValid", "False", "GroupMemberInvalid"), message: expected },
            ],
          }),
        }),
      );
      assert.equal(again.warnings, undefined, "no repeated event");
      assert.equal(outcome.stop, undefined, "the valid members are still served");
    });

    it("a reference problem ends the reconcile without touching the stack: Failed, or Degraded once applied", () => {
      const first = referencesStep(facts({ built: broken }));
      assert.deepEqual(first.stop, { kind: "done" });
      assert.equal(first.phase?.phase, "Failed");
      assert.equal(cond(first, "ToolConfigRefsValidated")?.reason, "ToolConfigNotFound");
      assert.equal(cond(first, "Ready")?.reason, "ToolConfigNotFound");
      assert.equal(first.warnings?.[0]?.reason, "ToolConfigNotFound");
      const applied = referencesStep(
        facts({
          built: broken,
          hasApplied: true,
          previous: previousConditions({ conditions: [condition("Ready", "False", "ToolConfigNotFound")] }),
        }),
      );
      assert.equal(applied.phase?.phase, "Degraded");
      assert.match(cond(applied, "Ready")?.message ?? "", /keeps running$/);
      assert.equal(applied.warnings, undefined, "no repeated event");
    });

    it("a condition that was False turns True with its own reason", () => {
      const previous = previousConditions({
        conditions: [
          condition("ReferencesValid", "False", "ReferencedObjectInvalid"),
          condition("ToolConfigRefsValidated", "False", "ToolConfigNotFound"),
          condition("CompositeToolRefsValidated", "False", "CompositeToolRefNotFound"),
          condition("IncomingAuthValidated", "False", "OIDCConfigRefUnsupported"),
        ],
      });
      const outcome = referencesStep(facts({ previous }));
      assert.deepEqual(
        outcome.conditions.map((c) => [c.type, c.status, c.reason]),
        [
          ["ReferencesValid", "True", "ReferencesValid"],
          ["ToolConfigRefsValidated", "True", "ToolConfigRefsValid"],
          ["CompositeToolRefsValidated", "True", "CompositeToolRefsValid"],
          ["IncomingAuthValidated", "True", "IncomingAuthValid"],
        ],
      );
      assert.equal(outcome.stop, undefined);
    });
  });

  describe("stack", () => {
    const stack = { namespace: NS, name: "gw" };
    it("records the plan of every up, and of a repair only when the desired state changed too", () => {
      assert.equal(recordsPlan({ action: "up", reason: "r" }, "h", "h2"), true);
      assert.equal(recordsPlan({ action: "repair", reason: "r" }, "h", "h"), false);
      assert.equal(recordsPlan({ action: "repair", reason: "r" }, "h", "h2"), true);
      assert.equal(recordsPlan({ action: "skip" }, "h", "h"), false);
    });

    it("StackApplied=True at the desired hash, nothing while waiting for a change to show", () => {
      assert.equal(
        cond(stackAppliedStep(stack, { action: "skip" }, "abc", "abc"), "StackApplied")?.message,
        "Stack team.gw is at abc",
      );
      assert.deepEqual(stackAppliedStep(stack, { action: "wait", ms: 5, reason: "r" }, "old", "new"), {
        conditions: [],
      });
      assert.equal(
        stackAppliedStep(stack, { action: "wait", ms: 5, reason: "r" }, "new", "new").conditions.length,
        1,
      );
    });

    it("a failed up: StackApplied and Ready False, a Warning, Degraded once something was applied", () => {
      const failed = stackFailedStep(stack, "pulumi exploded", true);
      assert.equal(cond(failed, "StackApplied")?.message, "Stack team.gw: pulumi exploded");
      assert.equal(cond(failed, "Ready")?.reason, "StackUpdateFailed");
      assert.equal(failed.phase?.phase, "Degraded");
      assert.equal(failed.warnings?.[0]?.reason, "StackUpdateFailed");
      assert.equal(stackFailedStep(stack, "x", false).phase?.phase, "Failed");
      assert.equal(failed.stop, undefined, "the error itself goes to the queue's backoff");
    });

    it("names the applied event after the action", () => {
      const up: Parameters<typeof appliedEvent>[2] = {
        summary: { create: 2 },
        durationMs: 1500,
        outputs: { url: "u", configChecksum: "c", desiredHash: "h", objects: [] },
      };
      assert.deepEqual(appliedEvent(stack, { action: "repair", reason: "Deployment gw is missing" }, up), {
        reason: "DriftRepaired",
        verb: "repaired",
        message: "Stack team.gw repaired in 1.5s (create=2): Deployment gw is missing",
      });
      assert.equal(appliedEvent(stack, { action: "up", reason: "r" }, up).reason, "StackUpdated");
    });
  });

  describe("readiness", () => {
    const ready = { ready: true, message: "1 pod(s) ready" };
    const backend = (name: string, status: BackendStatus["status"]): BackendStatus => ({ name, status });
    const summary = (outcome: StepOutcome) => [
      cond(outcome, "Ready")?.status,
      cond(outcome, "Ready")?.reason,
      outcome.phase?.phase,
    ];

    const row = (mode: "fail" | "best_effort" | undefined, ...statuses: BackendStatus["status"][]) =>
      summary(
        readinessStep(
          ready,
          statuses.map((status, i) => backend(`b${i}`, status)),
          mode,
        ),
      );

    it("the phase table, row by row: never Ready without a routable backend", () => {
      assert.deepEqual(
        summary(readinessStep({ ready: false, message: "waiting" }, [backend("a", "ready")])),
        ["False", "DeploymentNotReady", "Pending"],
      );
      assert.deepEqual(row(undefined), ["False", "NoBackends", "Pending"]);
      assert.deepEqual(row(undefined, "unknown", "unknown"), ["False", "BackendsPending", "Pending"]);
      assert.deepEqual(row(undefined, "unavailable", "unknown"), ["False", "BackendsPending", "Pending"]);
      assert.deepEqual(row(undefined, "unavailable", "unavailable", "unavailable"), [
        "False",
        "NoRoutableBackends",
        "Failed",
      ]);
      assert.deepEqual(row("best_effort", "unavailable", "unavailable", "unavailable"), [
        "False",
        "NoRoutableBackends",
        "Degraded",
      ]);
      assert.deepEqual(row(undefined, "ready", "unavailable"), ["True", "SomeBackendsUnhealthy", "Degraded"]);
      assert.deepEqual(row(undefined, "ready", "degraded"), ["True", "SomeBackendsUnhealthy", "Degraded"]);
      assert.deepEqual(row(undefined, "ready", "unauthenticated"), ["True", "AllBackendsRoutable", "Ready"]);
      assert.deepEqual(row(undefined, "ready", "unknown"), ["True", "AllBackendsRoutable", "Ready"]);
    });

    it("0 of 3 usable says so, not 'no backends'", () => {
      const outcome = readinessStep(ready, [
        backend("a", "unavailable"),
        backend("b", "unavailable"),
        backend("c", "unavailable"),
      ]);
      assert.equal(
        cond(outcome, "Ready")?.message,
        "1 pod(s) ready; No routable backend: 0/3 routable (0 ready, 0 degraded, 0 unauthenticated, 3 unavailable, 0 not checked yet)",
      );
      assert.equal(outcome.phase?.phase, "Failed");
    });
  });

  describe("transitions", () => {
    const at = (
      phase: "Ready" | "Degraded" | "Failed" | undefined,
      ...b: [string, BackendStatus["status"]][]
    ) =>
      observed(
        phase,
        b.map(([name, status]) => ({ name, status })),
      );
    const events = (before: ReturnType<typeof at>, after: ReturnType<typeof at>) =>
      transitionEvents(before, after, "1/2 routable", new Map([["a", "connection refused"]])).map((e) => [
        e.type,
        e.reason,
        e.subject,
        e.message,
      ]);

    it("a backend going down or failing its first check, and recovering, are Events; the rest is quiet", () => {
      assert.deepEqual(events(at("Ready", ["a", "ready"]), at("Ready", ["a", "unavailable"])), [
        ["Warning", "BackendUnavailable", "a", "Backend a is unavailable: connection refused"],
      ]);
      assert.deepEqual(events(at("Ready", ["a", "unknown"]), at("Ready", ["a", "unavailable"])), [
        ["Warning", "BackendUnavailable", "a", "Backend a is unavailable: connection refused"],
      ]);
      assert.deepEqual(events(at("Ready", ["a", "unavailable"]), at("Ready", ["a", "ready"])), [
        ["Normal", "BackendRecovered", "a", "Backend a is ready again"],
      ]);
      assert.deepEqual(events(at("Ready", ["a", "unknown"]), at("Ready", ["a", "ready"])), []);
      assert.deepEqual(events(at("Ready", ["a", "ready"]), at("Ready", ["a", "degraded"])), []);
      assert.deepEqual(events(at("Ready"), at("Ready", ["new", "unavailable"])), []);
      assert.deepEqual(events(at("Ready", ["a", "ready"]), at("Ready", ["a", "unknown"])), []);
    });

    it("a phase change is an Event, a Warning when it turns Degraded or Failed", () => {
      assert.deepEqual(events(at("Ready"), at("Degraded")), [
        ["Warning", "PhaseChanged", "Ready->Degraded", "Phase Ready → Degraded: 1/2 routable"],
      ]);
      assert.deepEqual(events(at("Failed"), at("Ready")), [
        ["Normal", "PhaseChanged", "Failed->Ready", "Phase Failed → Ready: 1/2 routable"],
      ]);
      assert.deepEqual(events(at(undefined), at("Ready")), [], "the first phase is not a change");
    });
  });

  describe("config warnings", () => {
    it("a warning is a True ConfigWarning and one Warning Event per change; none removes it", () => {
      const first = configWarningStep(["filter hides logs"], none);
      assert.notEqual(first, "remove");
      if (first === "remove") return;
      assert.deepEqual(first.conditions, [
        { type: "ConfigWarning", status: "True", reason: "ConfigWarnings", message: "filter hides logs" },
      ]);
      assert.deepEqual(first.warnings, [{ reason: "ConfigWarnings", message: "filter hides logs" }]);
      const seen = previousConditions({
        conditions: [
          { ...condition("ConfigWarning", "True", "ConfigWarnings"), message: "filter hides logs" },
        ],
      });
      const again = configWarningStep(["filter hides logs"], seen);
      assert.ok(again !== "remove" && again.warnings === undefined, "the same warnings: no new Event");
      const other = configWarningStep(["filter hides logs", "exposed"], seen);
      assert.ok(other !== "remove" && other.warnings?.length === 1, "a changed set: one Event");
      assert.equal(configWarningStep([], seen), "remove");
    });
  });
});

describe("PodsReady: what a rollout does to sessions", () => {
  const ready = { total: 1, ready: 1, allReady: true, problem: undefined };
  it("says that rollouts end sessions when they live in pod memory, and nothing more with Redis", () => {
    const podMemory = podsStep(ready, false).conditions?.[0];
    assert.equal(podMemory?.status, "True");
    assert.equal(podMemory?.message, `1/1 pod(s) ready; ${SESSIONS_IN_POD_MEMORY}`);
    assert.match(podMemory?.message ?? "", /spec\.sessionStorage redis.*ends every client's session/);
    assert.equal(podsStep(ready, true).conditions?.[0]?.message, "1/1 pod(s) ready");
  });
});

describe("referenceHashes (status.oidcConfigHash, authzConfigHash, telemetryConfigHash)", () => {
  const hashesOf = (objects: readonly AnyObject[], name: string) =>
    referenceHashes(gatherInputs(objectSet(objects), vmcpOf(objects, name)));

  it("hashes each referenced shared config, and only those", () => {
    const { objects } = exampleLoaded("oidc-authz");
    const shared = hashesOf(objects, "finance-shared");
    assert.match(shared.oidcConfigHash ?? "", /^[0-9a-f]{16}$/);
    assert.match(shared.authzConfigHash ?? "", /^[0-9a-f]{16}$/);
    assert.equal(shared.telemetryConfigHash, undefined);
    assert.equal(hashesOf(objects, "finance-inline").authzConfigHash, undefined, "inline authz has no ref");
    const { objects: sc } = exampleLoaded("shared-configs");
    assert.match(hashesOf(sc, "platform-tools").telemetryConfigHash ?? "", /^[0-9a-f]{16}$/);
  });

  it("changes when the referenced spec changes, not with its metadata", () => {
    const { objects } = exampleLoaded("oidc-authz");
    const before = hashesOf(objects, "finance-shared");
    const relabelled = objects.map((o) =>
      o.kind === "MCPOIDCConfig" ? { ...o, metadata: { ...o.metadata, labels: { a: "b" } } } : o,
    ) as AnyObject[];
    assert.deepEqual(hashesOf(relabelled, "finance-shared"), before);
    const changed = objects.map((o) =>
      o.kind === "MCPAuthzConfig"
        ? { ...o, spec: { ...o.spec, config: { policies: ["forbid(principal, action, resource);"] } } }
        : o,
    ) as AnyObject[];
    const after = hashesOf(changed, "finance-shared");
    assert.equal(after.oidcConfigHash, before.oidcConfigHash);
    assert.notEqual(after.authzConfigHash, before.authzConfigHash);
  });
});
