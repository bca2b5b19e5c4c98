// Validation a user can act on: every problem is reported with the field path, what was
// expected there and what was found. Schema errors come from zod; the cross-field rules
// below are the ones ToolHive's controller enforces plus composite-tool checks it lacks,
// and runtimerules.ts adds the ones ToolHive's vmcp enforces when it loads the config.
import type { z } from "zod";
import type { CompositeTool, WorkflowStep } from "./compositetool.js";
import { checkGoTemplate } from "./gotemplate.js";
import { OBJECT_SCHEMAS, type KindName, type KindObjects } from "./kinds.js";
import { compositeToolRuntimeProblems, runtimeProblems, type RuntimeProblem } from "./runtimerules.js";
import {
  virtualMCPServerSchema,
  type VirtualMCPServer,
  type VirtualMCPServerSpec,
  type BackendAuth,
} from "./virtualmcpserver.js";

export interface FieldError {
  /** Dotted path with [i] for list indices, e.g. spec.config.compositeTools[0].steps[1].id */
  path: string;
  expected: string;
  /** Short JSON of the offending value, or "nothing" when the field is missing. */
  found: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

type PathPart = string | number;

const SAFE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Renders a path as users write it: a.b[0].c, with odd map keys quoted (a["x.y"]). */
export function formatPath(parts: readonly PropertyKey[]): string {
  let out = "";
  for (const part of parts) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      out += SAFE_KEY.test(key) ? (out ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** Short JSON for error messages; "nothing" for a missing value. */
export function describeValue(value: unknown, max = 60): string {
  if (value === undefined) return "nothing";
  const json = JSON.stringify(value) ?? String(value);
  return json.length > max ? `${json.slice(0, max - 1)}…` : json;
}

function fieldError(
  path: readonly PathPart[],
  expected: string,
  value: unknown,
  message?: string,
): FieldError {
  const found = describeValue(value);
  return {
    path: formatPath(path),
    expected,
    found,
    message: message ?? `expected ${expected}, found ${found}`,
  };
}

/** "/^a\\/b/" (RegExp#toString) → "^a/b", the way the CRD and docs spell patterns. */
function regexSource(literal: string): string {
  const m = /^\/(.*)\/[a-z]*$/s.exec(literal);
  return (m?.[1] ?? literal).replaceAll("\\/", "/");
}

function expectedFromIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.expected === "int" ? "an integer" : `a value of type ${issue.expected}`;
    case "invalid_value":
      return issue.values.length === 1
        ? describeValue(issue.values[0])
        : `one of ${issue.values.map((v) => describeValue(v)).join(", ")}`;
    case "too_small":
    case "too_big": {
      const cmp =
        issue.code === "too_small"
          ? issue.inclusive
            ? "at least"
            : "more than"
          : issue.inclusive
            ? "at most"
            : "less than";
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      if (issue.origin === "string") return `a string of ${cmp} ${bound} character(s)`;
      if (issue.origin === "array" || issue.origin === "set") return `a list of ${cmp} ${bound} item(s)`;
      return `a number ${cmp} ${bound}`;
    }
    case "invalid_format":
      return issue.format === "regex" && "pattern" in issue
        ? `a string matching ${regexSource(String(issue.pattern))}`
        : `a valid ${issue.format}`;
    case "not_multiple_of":
      return `a multiple of ${issue.divisor}`;
    case "unrecognized_keys":
      return `no keys other than the known ones (unknown: ${issue.keys.join(", ")})`;
    default:
      return issue.message;
  }
}

/** Translates zod issues (parsed with reportInput) into FieldErrors under `prefix`. */
export function fieldErrorsFromIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly PathPart[] = [],
): FieldError[] {
  return issues.map((issue) => {
    const path = [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))];
    const expected = expectedFromIssue(issue);
    const err = fieldError(path, expected, issue.input);
    // A zod refinement carries its own explanation; keep it.
    return issue.code === "custom" ? { ...err, message: issue.message } : err;
  });
}

/** One line per error, for CLIs and condition messages. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path}: expected ${e.expected}, found ${e.found}`).join("\n");
}

// ---- composite tools -------------------------------------------------------------

/** ToolHive's tool reference grammar: `workload.tool`, or an aggregated tool name. */
const TOOL_REF = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
const TOOL_REF_EXPECTED = 'a tool reference "workload.tool" (letters, digits, ".", "_", "-")';

function isToolRef(tool: string): boolean {
  return TOOL_REF.test(tool);
}

function fromRuntime(p: RuntimeProblem): FieldError {
  return fieldError(p.path, p.expected, p.found, p.message);
}

/** Template strings inside a JSON value, with their sub-paths (arguments may nest). */
function templateStrings(value: unknown, path: PathPart[]): [PathPart[], string][] {
  if (typeof value === "string") return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => templateStrings(v, [...path, i]));
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => templateStrings(v, [...path, k]));
  }
  return [];
}

/**
 * `checked`: vmcp validate parses this template too. Otherwise (nested arguments, output
 * values) vmcp first parses it when a call expands it, and fails the call.
 */
function checkTemplate(
  path: PathPart[],
  src: string,
  stepIds: ReadonlySet<string>,
  checked = true,
): FieldError[] {
  const { error, refs } = checkGoTemplate(src);
  const atRuntime = checked ? "" : "; vmcp would fail every call of the tool when it expands it";
  if (error)
    return [fieldError(path, "a valid Go template", src, `invalid Go template: ${error}${atRuntime}`)];
  // Only .steps.<id> can be checked against the workflow; params come from the caller.
  const unknown = new Set(
    refs
      .filter((r) => r.startsWith(".steps."))
      .map((r) => r.split(".")[2] ?? "")
      .filter((id) => !stepIds.has(id)),
  );
  return [...unknown].map((id) =>
    fieldError(
      path,
      "references to declared steps only",
      src,
      `template reads .steps.${id}, but no step has id "${id}": at runtime vmcp finds nothing there and passes the text "<no value>" instead`,
    ),
  );
}

/** Finds one dependency cycle (as step ids, first repeated at the end), if any. */
export function findStepCycle(
  steps: readonly Pick<WorkflowStep, "id" | "dependsOn">[],
): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.id, s.dependsOn ?? []]));
  const state = new Map<string, "visiting" | "done">();
  const trail: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === "done" || !deps.has(id)) return undefined;
    if (state.get(id) === "visiting") return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, "visiting");
    trail.push(id);
    for (const dep of deps.get(id) ?? []) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    trail.pop();
    state.set(id, "done");
    return undefined;
  };
  for (const step of steps) {
    const cycle = visit(step.id);
    if (cycle) return cycle;
  }
  return undefined;
}

function checkStep(step: WorkflowStep, path: PathPart[], stepIds: ReadonlySet<string>): FieldError[] {
  const errors: FieldError[] = [];
  if (step.type === "tool" && step.tool === undefined) {
    errors.push(
      fieldError([...path, "tool"], TOOL_REF_EXPECTED, undefined, "a tool step needs the tool to call"),
    );
  }
  if (step.tool !== undefined && !isToolRef(step.tool)) {
    errors.push(fieldError([...path, "tool"], TOOL_REF_EXPECTED, step.tool));
  }
  if (step.type === "elicitation" && !step.message) {
    errors.push(
      fieldError(
        [...path, "message"],
        "a prompt for the user",
        step.message,
        "an elicitation step needs a message",
      ),
    );
  }
  if (step.onError?.action === "retry" && (step.onError.retryCount ?? 0) < 1) {
    errors.push(
      fieldError(
        [...path, "onError", "retryCount"],
        "at least 1 when action is retry",
        step.onError.retryCount,
      ),
    );
  }
  (step.dependsOn ?? []).forEach((dep, i) => {
    if (!stepIds.has(dep)) {
      errors.push(
        fieldError([...path, "dependsOn", i], `the id of another step (${[...stepIds].join(", ")})`, dep),
      );
    }
  });
  for (const [p, src] of templateStrings(step.arguments, [...path, "arguments"]))
    errors.push(...checkTemplate(p, src, stepIds, p.length === path.length + 2));
  for (const key of ["condition", "message", "collection"] as const) {
    const src = step[key];
    if (src !== undefined) errors.push(...checkTemplate([...path, key], src, stepIds));
  }
  if (step.type === "forEach") {
    if (!step.collection)
      errors.push(fieldError([...path, "collection"], "a Go template yielding the items", step.collection));
    const inner = step.step;
    // The inner step is free-form; vmcp's YAML decoder reads any scalar as the tool name.
    const raw = inner?.["tool"];
    const innerTool = typeof raw === "number" || typeof raw === "boolean" ? String(raw) : raw;
    if (typeof innerTool !== "string" || !isToolRef(innerTool)) {
      errors.push(fieldError([...path, "step", "tool"], TOOL_REF_EXPECTED, innerTool));
    }
    for (const [p, src] of templateStrings(inner?.["arguments"], [...path, "step", "arguments"])) {
      errors.push(...checkTemplate(p, src, stepIds, p.length === path.length + 3));
    }
  }
  return errors;
}

function checkOutputValues(
  properties: unknown,
  path: PathPart[],
  stepIds: ReadonlySet<string>,
): FieldError[] {
  if (typeof properties !== "object" || properties === null) return [];
  return Object.entries(properties).flatMap(([name, prop]) => {
    if (typeof prop !== "object" || prop === null) return [];
    const value: unknown = (prop as Record<string, unknown>)["value"];
    const nested: unknown = (prop as Record<string, unknown>)["properties"];
    return [
      ...(typeof value === "string" ? checkTemplate([...path, name, "value"], value, stepIds, false) : []),
      ...checkOutputValues(nested, [...path, name, "properties"], stepIds),
    ];
  });
}

/** Cross-field rules of one composite tool (inline or a VirtualMCPCompositeToolDefinition spec). */
export function checkCompositeTool(tool: CompositeTool, path: readonly PathPart[]): FieldError[] {
  const errors: FieldError[] = [];
  const stepIds = new Set<string>();
  tool.steps.forEach((step, i) => {
    if (stepIds.has(step.id)) {
      errors.push(
        fieldError(
          [...path, "steps", i, "id"],
          "a step id unique within the tool",
          step.id,
          `step id "${step.id}" is used twice`,
        ),
      );
    }
    stepIds.add(step.id);
  });
  if (tool.steps.length === 0) errors.push(fieldError([...path, "steps"], "at least one step", tool.steps));
  tool.steps.forEach((step, i) => errors.push(...checkStep(step, [...path, "steps", i], stepIds)));
  const cycle = findStepCycle(tool.steps);
  if (cycle) {
    const index = tool.steps.findIndex((s) => s.id === cycle[0]);
    const found = `cycle ${cycle.join(" -> ")}`;
    errors.push({
      path: formatPath([...path, "steps", index, "dependsOn"]),
      expected: "steps without a dependency cycle",
      found,
      message: `steps depend on each other in a ${found}`,
    });
  }
  errors.push(...checkOutputValues(tool.output?.properties, [...path, "output", "properties"], stepIds));
  errors.push(...compositeToolRuntimeProblems(tool, path).map(fromRuntime));
  return errors;
}

// ---- VirtualMCPServer ------------------------------------------------------------

function checkBackendAuth(auth: BackendAuth, path: PathPart[]): FieldError[] {
  if (auth.type !== "externalAuthConfigRef" || auth.externalAuthConfigRef?.name) return [];
  return [
    fieldError(
      [...path, "externalAuthConfigRef", "name"],
      "the name of an MCPExternalAuthConfig when type is externalAuthConfigRef",
      auth.externalAuthConfigRef?.name,
    ),
  ];
}

/** Cross-field rules on a schema-valid VirtualMCPServer spec (paths start at "spec"). */
export function checkVirtualMCPServerSpec(spec: VirtualMCPServerSpec): FieldError[] {
  const errors: FieldError[] = [];
  if (!spec.groupRef.name)
    errors.push(fieldError(["spec", "groupRef", "name"], "the name of an MCPGroup", spec.groupRef.name));
  const out = spec.outgoingAuth;
  if (out?.default) errors.push(...checkBackendAuth(out.default, ["spec", "outgoingAuth", "default"]));
  for (const [name, auth] of Object.entries(out?.backends ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    errors.push(...checkBackendAuth(auth, ["spec", "outgoingAuth", "backends", name]));
  }
  const agg = spec.config?.aggregation;
  const aggPath = ["spec", "config", "aggregation"];
  if (agg?.conflictResolution === "priority" && !agg.conflictResolutionConfig?.priorityOrder?.length) {
    errors.push(
      fieldError(
        [...aggPath, "conflictResolutionConfig", "priorityOrder"],
        "a non-empty list of workloads when conflictResolution is priority",
        agg.conflictResolutionConfig?.priorityOrder,
      ),
    );
  }
  (agg?.tools ?? []).forEach((t, i) => {
    if (!t.workload)
      errors.push(
        fieldError([...aggPath, "tools", i, "workload"], "the name of a backend workload", t.workload),
      );
    if (t.toolConfigRef && !t.toolConfigRef.name) {
      errors.push(
        fieldError(
          [...aggPath, "tools", i, "toolConfigRef", "name"],
          "the name of an MCPToolConfig",
          t.toolConfigRef.name,
        ),
      );
    }
  });
  const names = new Map<string, number>();
  (spec.config?.compositeTools ?? []).forEach((tool, i) => {
    const path = ["spec", "config", "compositeTools", i];
    const first = names.get(tool.name);
    if (first !== undefined) {
      errors.push(
        fieldError(
          [...path, "name"],
          "a composite tool name unique within the server",
          tool.name,
          `also the name of compositeTools[${first}]`,
        ),
      );
    } else names.set(tool.name, i);
    errors.push(...checkCompositeTool(tool, path));
  });
  if (spec.embeddingServerRef && !spec.embeddingServerRef.name) {
    errors.push(
      fieldError(
        ["spec", "embeddingServerRef", "name"],
        "the name of an EmbeddingServer",
        spec.embeddingServerRef.name,
      ),
    );
  }
  errors.push(...runtimeProblems(spec).map(fromRuntime));
  return errors;
}

export function validateVirtualMCPServer(obj: unknown): ValidationResult<VirtualMCPServer> {
  const parsed = virtualMCPServerSchema.safeParse(obj, { reportInput: true });
  if (!parsed.success) return { ok: false, errors: fieldErrorsFromIssues(parsed.error.issues) };
  const errors = checkVirtualMCPServerSpec(parsed.data.spec);
  return errors.length ? { ok: false, errors } : { ok: true, value: parsed.data };
}

/** Schema-validates any ToolHive kind; VirtualMCPServer and composite definitions also get their cross-field rules. */
type Issue = z.core.$ZodIssue;

function getPath(root: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (cur, k) => (cur && typeof cur === "object" ? (cur as Record<PropertyKey, unknown>)[k] : undefined),
    root,
  );
}

function setPath(root: unknown, path: readonly PropertyKey[], value: unknown): void {
  const parent = getPath(root, path.slice(0, -1));
  if (parent && typeof parent === "object") {
    const key = path[path.length - 1] as PropertyKey;
    if (value === undefined) delete (parent as Record<PropertyKey, unknown>)[key];
    else (parent as Record<PropertyKey, unknown>)[key] = value;
  }
}

/**
 * Status is written by other controllers (ToolHive's operator writes MCPServer phases such
 * as "Running"): it is read leniently. A string outside our enums is kept as written, any
 * other status value our schema does not take is left out — never a reason to drop the
 * whole object (a backend would vanish from its group). Spec errors still fail.
 */
function parseLenientStatus(schema: z.ZodType, obj: unknown): ReturnType<z.ZodType["safeParse"]> {
  const first = schema.safeParse(obj, { reportInput: true });
  if (first.success) return first;
  const onlyStatus = first.error.issues.every((i: Issue) => i.path[0] === "status");
  if (!onlyStatus) return first;
  const copy = structuredClone(obj);
  const kept: { path: PropertyKey[]; value: string }[] = [];
  for (const issue of first.error.issues) {
    const raw = getPath(copy, issue.path);
    if (typeof raw === "string" && issue.code === "invalid_value")
      kept.push({ path: issue.path, value: raw });
    setPath(copy, issue.path, undefined);
  }
  const second = schema.safeParse(copy, { reportInput: true });
  if (!second.success) return first;
  for (const k of kept) setPath(second.data, k.path, k.value);
  return second;
}

export function parseObject<K extends KindName>(kind: K, obj: unknown): ValidationResult<KindObjects[K]> {
  const parsed = parseLenientStatus(OBJECT_SCHEMAS[kind], obj);
  if (!parsed.success) return { ok: false, errors: fieldErrorsFromIssues(parsed.error.issues) };
  const value = parsed.data as KindObjects[K];
  let errors: FieldError[] = [];
  if (kind === "VirtualMCPServer") {
    errors = checkVirtualMCPServerSpec((value as KindObjects["VirtualMCPServer"]).spec);
  } else if (kind === "VirtualMCPCompositeToolDefinition") {
    errors = checkCompositeTool((value as KindObjects["VirtualMCPCompositeToolDefinition"]).spec, ["spec"]);
  }
  return errors.length ? { ok: false, errors } : { ok: true, value };
}

// ---- manual conflict resolution ---------------------------------------------------

/**
 * With conflictResolution manual, vMCP refuses to start when two backends advertise the
 * same tool name. Given each backend's tool names (from discovery), lists every clash the
 * overrides and filters in spec.config.aggregation.tools leave unresolved.
 */
export function checkManualConflicts(
  spec: Pick<VirtualMCPServerSpec, "config">,
  toolsByWorkload: Readonly<Record<string, readonly string[]>>,
): FieldError[] {
  const agg = spec.config?.aggregation;
  if (agg?.conflictResolution !== "manual") return [];
  const byName = new Map<string, { workload: string; tool: string }[]>();
  for (const workload of Object.keys(toolsByWorkload).sort()) {
    const cfg = agg.tools?.find((t) => t.workload === workload);
    if (agg.excludeAllTools || cfg?.excludeAll) continue;
    for (const tool of toolsByWorkload[workload] ?? []) {
      if (cfg?.filter?.length && !cfg.filter.includes(tool)) continue;
      const name = cfg?.overrides?.[tool]?.name || tool;
      byName.set(name, [...(byName.get(name) ?? []), { workload, tool }]);
    }
  }
  return [...byName.entries()]
    .filter(([, owners]) => owners.length > 1)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, owners]) => ({
      path: "spec.config.aggregation.tools",
      expected: `an override renaming "${name}" in all but one of ${owners.map((o) => o.workload).join(", ")}`,
      found: `"${name}" from ${owners.map((o) => (o.tool === name ? o.workload : `${o.workload} (${o.tool})`)).join(", ")}`,
      message: `tool name "${name}" clashes between ${owners.map((o) => o.workload).join(" and ")}; add an override`,
    }));
}
