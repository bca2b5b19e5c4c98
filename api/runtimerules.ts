// The rules ToolHive's vmcp (0.44.0) enforces when it loads config.yaml — `vmcp validate`,
// and `vmcp serve` at start-up — checked on the VirtualMCPServer spec, so a config the
// runtime would refuse (a pod that crash-loops) is rejected before anything is applied.
// Each rule states the runtime's reason; paths are the spec fields that config.yaml is
// rendered from, with the renderer's defaults applied where vmcp would see them.
// Rules that need data the spec does not have (tool names, referenced objects) live
// with the controller. Facts from ToolHive's pkg/vmcp/config validator and YAML loader.
import type { CompositeTool, WorkflowStep } from "./compositetool.js";
import { checkGoTemplate } from "./gotemplate.js";
import type { VirtualMCPServerSpec } from "./virtualmcpserver.js";
import { parseDurationMs, vmcpConfigSchema } from "./vmcpconfig.js";

type PathPart = string | number;

/** One broken rule; validate.ts turns it into a FieldError. */
export interface RuntimeProblem {
  path: PathPart[];
  expected: string;
  /** The offending value (undefined when the field is missing). */
  found: unknown;
  message: string;
}

const refuses = (what: string) => `vmcp refuses to start: ${what}`;

function problem(path: PathPart[], expected: string, found: unknown, why: string): RuntimeProblem {
  return { path, expected, found, message: refuses(why) };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

// ---- aggregation -------------------------------------------------------------------

type Aggregation = NonNullable<NonNullable<VirtualMCPServerSpec["config"]>["aggregation"]>;

function aggregationProblems(agg: Aggregation, path: PathPart[]): RuntimeProblem[] {
  const out: RuntimeProblem[] = [];
  const tools = agg.tools ?? [];
  const crc = agg.conflictResolutionConfig;
  if (agg.conflictResolution === "prefix" && crc?.prefixFormat === "") {
    out.push(
      problem(
        [...path, "conflictResolutionConfig", "prefixFormat"],
        "a non-empty prefix format such as {workload}_",
        "",
        "prefixFormat is required for the prefix strategy",
      ),
    );
  }
  // vmcp wants at least one tools entry for manual (overrides are not required: clashes
  // are found at runtime, and the controller reports them once the probes know the tools).
  if (agg.conflictResolution === "manual" && tools.length === 0) {
    out.push(
      problem(
        [...path, "tools"],
        "at least one tools entry when conflictResolution is manual",
        agg.tools,
        'conflictResolution manual without any aggregation.tools entry ("tool overrides are required for manual strategy")',
      ),
    );
  }
  // Conflicts are resolved before visibility is applied: an unlisted backend could win a
  // clash and then be withheld by deny, leaving the tool advertised by nobody.
  if (agg.defaultToolVisibility === "deny" && agg.conflictResolution === "priority") {
    const listed = new Set(tools.map((t) => t.workload));
    (crc?.priorityOrder ?? []).forEach((workload, i) => {
      if (!listed.has(workload))
        out.push(
          problem(
            [...path, "conflictResolutionConfig", "priorityOrder", i],
            `a workload with an aggregation.tools entry (add one for "${workload}" or remove it here)`,
            workload,
            `with defaultToolVisibility deny and the priority strategy, priorityOrder entry "${workload}" has no tools entry; it could win a name conflict and then be withheld, hiding the tool entirely`,
          ),
        );
    });
  }
  const seen = new Set<string>();
  tools.forEach((t, i) => {
    if (t.workload && seen.has(t.workload))
      out.push(
        problem(
          [...path, "tools", i, "workload"],
          "one tools entry per workload",
          t.workload,
          `duplicate workload configuration: ${t.workload}`,
        ),
      );
    seen.add(t.workload);
    for (const [tool, o] of Object.entries(t.overrides ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
      if (!o.name && !o.description)
        out.push(
          problem(
            [...path, "tools", i, "overrides", tool],
            "an override with a name or a description",
            o,
            `tools[${i}].overrides.${tool}: at least one of name or description must be specified`,
          ),
        );
    }
  });
  return out;
}

// ---- operational -------------------------------------------------------------------

type Operational = NonNullable<NonNullable<VirtualMCPServerSpec["config"]>["operational"]>;

/** Defaults the renderer writes (healthCheckTimeout) or vmcp fills in for zero values (the rest). */
const HEALTH_CHECK_INTERVAL_MS = 30_000;
const HEALTH_CHECK_TIMEOUT = "10s";

function operationalProblems(op: Operational, path: PathPart[]): RuntimeProblem[] {
  const out: RuntimeProblem[] = [];
  for (const [workload, d] of Object.entries(op.timeouts?.perWorkload ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    if (parseDurationMs(d) === 0)
      out.push(
        problem(
          [...path, "timeouts", "perWorkload", workload],
          "a positive duration",
          d,
          `operational.timeouts.perWorkload.${workload} must be positive`,
        ),
      );
  }
  const fh = op.failureHandling;
  if (!fh) return out;
  const fhPath = [...path, "failureHandling"];
  if (fh.unhealthyThreshold < 0)
    out.push(
      problem(
        [...fhPath, "unhealthyThreshold"],
        "a positive number of failures",
        fh.unhealthyThreshold,
        "unhealthyThreshold must be positive",
      ),
    );
  // vmcp fills a zero interval with its default; a zero timeout means "no timeout".
  const interval = parseDurationMs(fh.healthCheckInterval) || HEALTH_CHECK_INTERVAL_MS;
  const timeoutText = fh.healthCheckTimeout ?? HEALTH_CHECK_TIMEOUT;
  const timeout = parseDurationMs(timeoutText) ?? 0;
  if (timeout > 0 && timeout >= interval)
    out.push(
      problem(
        [...fhPath, "healthCheckTimeout"],
        `a duration less than healthCheckInterval (${fh.healthCheckInterval || "30s"}), or 0s for none`,
        timeoutText,
        `healthCheckTimeout (${timeoutText}) must be less than healthCheckInterval (${fh.healthCheckInterval || "30s"}) to prevent checks from queuing up`,
      ),
    );
  return out;
}

// ---- passthrough headers -----------------------------------------------------------

/** Headers vmcp never forwards: routing, hop-by-hop, smuggling and spoofing vectors, credentials. */
const RESTRICTED_HEADERS: ReadonlySet<string> = new Set([
  "Host", "Connection", "Keep-Alive", "Te", "Trailer", "Upgrade", "Http2-Settings",
  "Proxy-Authorization", "Proxy-Authenticate", "Proxy-Connection", "Transfer-Encoding",
  "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
  "X-Real-Ip", "Authorization", "Cookie",
]); // prettier-ignore
/** RFC 7230 token characters. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MAX_HEADER_NAME = 256;

/** Go's http.CanonicalHeaderKey for a valid token: each dash-separated word capitalised. */
export function canonicalHeaderKey(name: string): string {
  if (!HEADER_NAME.test(name)) return name;
  return name
    .split("-")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())
    .join("-");
}

function headerProblems(headers: readonly string[], path: PathPart[]): RuntimeProblem[] {
  return headers.flatMap((name, i): RuntimeProblem[] => {
    const at = [...path, i];
    const expected = "an HTTP header name that vmcp may forward";
    if (name === "") return [problem(at, expected, name, `passthroughHeaders[${i}] must not be empty`)];
    const canonical = canonicalHeaderKey(name);
    if (RESTRICTED_HEADERS.has(canonical))
      return [problem(at, expected, name, `"${canonical}" is a restricted header and cannot be forwarded`)];
    if (!HEADER_NAME.test(name) || name.length > MAX_HEADER_NAME)
      return [
        problem(
          at,
          expected,
          name,
          `"${name}" is not a valid HTTP header name (RFC 7230 token of up to 256 bytes)`,
        ),
      ];
    return [];
  });
}

// ---- composite tools ----------------------------------------------------------------

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);

/** The structural checks a JSON Schema compiler makes on the keywords vmcp users write. */
function jsonSchemaProblems(schema: unknown, path: PathPart[], what: string): RuntimeProblem[] {
  if (!isObject(schema))
    return [problem(path, "a JSON Schema object", schema, `${what} is not a JSON Schema`)];
  const out: RuntimeProblem[] = [];
  const bad = (key: string, expected: string) =>
    out.push(problem([...path, key], expected, schema[key], `${what}: invalid JSON Schema keyword ${key}`));
  const type = schema["type"];
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (!types.length || !types.every((t) => typeof t === "string" && JSON_TYPES.has(t)))
      bad("type", `one of ${[...JSON_TYPES].join(", ")} (or a list of them)`);
  }
  const props = schema["properties"];
  if (props !== undefined) {
    if (!isObject(props)) bad("properties", "an object of schemas");
    else
      for (const [k, v] of Object.entries(props))
        out.push(...jsonSchemaProblems(v, [...path, "properties", k], what));
  }
  const req = schema["required"];
  if (
    req !== undefined &&
    (!Array.isArray(req) || !req.every((r) => typeof r === "string") || new Set(req).size !== req.length)
  )
    bad("required", "a list of distinct property names");
  const items = schema["items"];
  if (items !== undefined) {
    if (Array.isArray(items))
      items.forEach((it, i) => out.push(...jsonSchemaProblems(it, [...path, "items", i], what)));
    else out.push(...jsonSchemaProblems(items, [...path, "items"], what));
  }
  return out;
}

function parametersProblems(params: Record<string, unknown> | undefined, path: PathPart[]): RuntimeProblem[] {
  if (!params || Object.keys(params).length === 0) return [];
  if (params["type"] !== "object")
    return [
      problem(
        [...path, "type"],
        '"object" (MCP tools take named parameters)',
        params["type"],
        "composite tool parameters must be a JSON Schema with type object",
      ),
    ];
  return jsonSchemaProblems(params, path, "parameters");
}

const GO_IDENT = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MAX_PARALLEL = 50;
const MAX_ITERATIONS = 1000;

function forEachProblems(step: WorkflowStep, path: PathPart[]): RuntimeProblem[] {
  const out: RuntimeProblem[] = [];
  for (const key of ["tool", "message"] as const) {
    if (step[key])
      out.push(
        problem(
          [...path, key],
          "nothing on a forEach step (set it on the inner step)",
          step[key],
          `a forEach step must not have '${key}'`,
        ),
      );
  }
  const innerType = step.step?.["type"];
  if (innerType !== undefined && innerType !== "" && innerType !== "tool")
    out.push(
      problem(
        [...path, "step", "type"],
        '"tool" (only tool inner steps are supported)',
        innerType,
        "forEach inner steps must be tool steps",
      ),
    );
  if (step.itemVar && (!GO_IDENT.test(step.itemVar) || step.itemVar === "index"))
    out.push(
      problem(
        [...path, "itemVar"],
        'a Go identifier other than "index"',
        step.itemVar,
        step.itemVar === "index"
          ? "itemVar cannot be 'index' (reserved)"
          : "itemVar must be a valid Go identifier",
      ),
    );
  const limits = [
    ["maxParallel", step.maxParallel, MAX_PARALLEL],
    ["maxIterations", step.maxIterations, MAX_ITERATIONS],
  ] as const;
  for (const [key, value, max] of limits) {
    if (value !== undefined && (value < 0 || value > max))
      out.push(
        problem([...path, key], `a number from 0 to ${max}`, value, `${key} must be between 0 and ${max}`),
      );
  }
  return out;
}

/** `.steps.<id>.output.<field>` references, as vmcp extracts them to check defaultResults. */
function outputFieldRefs(src: string): { stepId: string; field: string }[] {
  return checkGoTemplate(src)
    .fields.map((f) => f.split("."))
    .filter((p) => p[1] === "steps" && p[3] === "output" && p.length >= 5)
    .map((p) => ({ stepId: p[2] ?? "", field: p[4] ?? "" }));
}

function stepTemplates(step: WorkflowStep): string[] {
  const args = Object.values(step.arguments ?? {}).filter((v): v is string => typeof v === "string");
  return [step.condition, ...args, step.message].filter((s): s is string => !!s);
}

function outputTemplates(properties: unknown): string[] {
  if (!isObject(properties)) return [];
  return Object.values(properties).flatMap((p) =>
    isObject(p)
      ? [...(typeof p["value"] === "string" ? [p["value"]] : []), ...outputTemplates(p["properties"])]
      : [],
  );
}

/**
 * A step with a condition, or with onError continue, may produce no output; vmcp then
 * uses its defaultResults, so every output field a later template reads needs a default.
 */
function defaultResultsProblems(tool: CompositeTool, path: PathPart[]): RuntimeProblem[] {
  const skippable = new Map<string, number>();
  tool.steps.forEach((s, i) => {
    if (s.condition || s.onError?.action === "continue") skippable.set(s.id, i);
  });
  if (!skippable.size) return [];
  const out: RuntimeProblem[] = [];
  const reported = new Set<string>();
  const readers: [string, string[]][] = [
    ...tool.steps.map((s): [string, string[]] => [`step ${s.id}`, stepTemplates(s)]),
    ["the output", outputTemplates(tool.output?.properties)],
  ];
  for (const [reader, templates] of readers) {
    for (const { stepId, field } of templates.flatMap(outputFieldRefs)) {
      const index = skippable.get(stepId);
      if (index === undefined) continue;
      const defaults = tool.steps[index]?.defaultResults;
      if (isObject(defaults) && field in defaults) continue;
      if (reported.has(`${stepId}.${field}`)) continue;
      reported.add(`${stepId}.${field}`);
      out.push(
        problem(
          [...path, "steps", index, "defaultResults"],
          `a default for output field "${field}"`,
          defaults,
          `step "${stepId}" may be skipped and field "${field}" is read by ${reader}, so defaultResults.${field} is required`,
        ),
      );
    }
  }
  return out;
}

/** Runtime rules of one composite tool (inline, or a VirtualMCPCompositeToolDefinition spec). */
export function compositeToolRuntimeProblems(
  tool: CompositeTool,
  path: readonly PathPart[],
): RuntimeProblem[] {
  const at = [...path];
  const out: RuntimeProblem[] = [];
  if (!tool.name)
    out.push(problem([...at, "name"], "a tool name", tool.name, "a composite tool needs a name"));
  if (!tool.description)
    out.push(
      problem(
        [...at, "description"],
        "a description of the tool",
        tool.description,
        "a composite tool needs a description",
      ),
    );
  out.push(...parametersProblems(tool.parameters, [...at, "parameters"]));
  tool.steps.forEach((step, i) => {
    const sp = [...at, "steps", i];
    if (!step.id) out.push(problem([...sp, "id"], "a step id", step.id, "every step needs an id"));
    if (step.type === "forEach") out.push(...forEachProblems(step, sp));
    if (step.schema && Object.keys(step.schema).length)
      out.push(...jsonSchemaProblems(step.schema, [...sp, "schema"], "schema"));
    if (step.defaultResults !== undefined && !isObject(step.defaultResults))
      out.push(
        problem(
          [...sp, "defaultResults"],
          "an object of output fields",
          step.defaultResults,
          "defaultResults must be an object",
        ),
      );
  });
  out.push(...defaultResultsProblems(tool, at));
  return out;
}

/**
 * spec.config keeps fields it does not know and the renderer writes them to config.yaml,
 * but vmcp loads that file strictly: an unknown field stops it.
 */
function unknownFieldProblems(config: Record<string, unknown>): RuntimeProblem[] {
  const known = new Set(Object.keys(vmcpConfigSchema.shape));
  return Object.keys(config)
    .filter((k) => !known.has(k))
    .sort()
    .map((k) =>
      problem(
        ["spec", "config", k],
        `one of the fields vmcp knows (${[...known].sort().join(", ")})`,
        config[k],
        `vmcp reads config.yaml strictly and does not know the field ${k}`,
      ),
    );
}

/** Runtime rules of a VirtualMCPServer spec (composite tools are checked per tool). */
export function runtimeProblems(spec: VirtualMCPServerSpec): RuntimeProblem[] {
  const config = spec.config;
  const out: RuntimeProblem[] = config ? unknownFieldProblems(config) : [];
  if (config?.aggregation)
    out.push(...aggregationProblems(config.aggregation, ["spec", "config", "aggregation"]));
  if (config?.operational)
    out.push(...operationalProblems(config.operational, ["spec", "config", "operational"]));
  // The renderer writes spec.passthroughHeaders when set, else spec.config.passthroughHeaders.
  if (spec.passthroughHeaders?.length)
    out.push(...headerProblems(spec.passthroughHeaders, ["spec", "passthroughHeaders"]));
  else if (config?.passthroughHeaders)
    out.push(...headerProblems(config.passthroughHeaders, ["spec", "config", "passthroughHeaders"]));
  return out;
}
