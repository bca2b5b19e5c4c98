// Seeded generators for property-style tests (no fast-check here: a small PRNG and a
// catalogue of mutations).
//
//   rng(seed)                  mulberry32: the same seed gives the same sequence everywhere
//   validVirtualMCPServer(r)   a random VALID VirtualMCPServer using most of the spec
//   invalidCases(seed, n)      n invalid ones: a valid base with 1–2 mutations, each naming
//                              the field path an error must start with
//
// Every mutation says whether it breaks the schema (zod, and mostly the CRD at admission)
// or a cross-field rule (only validateVirtualMCPServer sees it), and whether it can be
// created on an API server at all (apiVersion/kind/metadata mutations cannot).
import { formatPath } from "../../api/validate.js";

export interface Rng {
  /** [0, 1) */
  next(): number;
  /** integer in [0, n) */
  int(n: number): number;
  /** integer in [lo, hi] */
  range(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  bool(p?: number): boolean;
  shuffle<T>(items: readonly T[]): T[];
  /** A fresh generator seeded from this one (for independent streams). */
  fork(): Rng;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    range: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (items) => {
      if (!items.length) throw new Error("pick from an empty list");
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    bool: (p = 0.5) => next() < p,
    shuffle: (items) => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [out[i], out[j]] = [out[j] as (typeof out)[number], out[i] as (typeof out)[number]];
      }
      return out;
    },
    fork: () => rng(Math.floor(next() * 2 ** 32)),
  };
  return r;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };
type Part = string | number;

export const clone = <T>(v: T): T => structuredClone(v);

function getAt(obj: Json, path: readonly Part[]): Json | undefined {
  let cur: Json | undefined = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, Json>)[p as string];
  }
  return cur;
}

function parentOf(obj: Json, path: readonly Part[]): Record<string, Json> {
  const parent = getAt(obj, path.slice(0, -1));
  if (parent === null || typeof parent !== "object" || parent === undefined)
    throw new Error(`no parent at ${formatPath(path)}`);
  return parent as Record<string, Json>;
}

function setAt(obj: Json, path: readonly Part[], value: Json): void {
  parentOf(obj, path)[path[path.length - 1] as string] = value;
}

function deleteAt(obj: Json, path: readonly Part[]): void {
  delete parentOf(obj, path)[path[path.length - 1] as string];
}

// ---- a valid VirtualMCPServer ----------------------------------------------------------

export const WORKLOADS = ["alpha", "beta", "gamma"] as const;
const TOOLS = ["get_item", "list_items", "search", "create_item", "delete_item"] as const;

function compositeTool(r: Rng, index: number): JsonObject {
  const n = r.range(2, 4);
  const steps: JsonObject[] = [];
  for (let k = 0; k < n; k++) {
    const id = `s${k}`;
    const step: JsonObject = {
      id,
      type: "tool",
      tool: `${r.pick(WORKLOADS)}.${r.pick(TOOLS)}`,
      arguments: {
        id: "{{.params.id}}",
        ...(k > 0 ? { prev: `{{.steps.s${k - 1}.output.id}}` } : {}),
        nested: { list: ['{{printf "%s" .params.id}}', 1, true] },
      },
    };
    if (k > 0) step.dependsOn = [`s${k - 1}`];
    if (r.bool(0.4))
      step.onError = r.bool(0.7)
        ? { action: "retry", retryCount: r.range(1, 3), retryDelay: "5s" }
        : { action: "continue" };
    if (r.bool(0.3)) step.condition = k > 0 ? `{{if .steps.s${k - 1}.output.ok}}true{{end}}` : "true";
    // A step that may be skipped (condition, onError continue) gives defaults for the
    // output fields later steps and the output read (vmcp requires them).
    if (step.condition || (step.onError as JsonObject | undefined)?.action === "continue")
      step.defaultResults = { id: "", ok: false };
    if (r.bool(0.3)) step.timeout = r.pick(["30s", "1m", "1m30s"]);
    steps.push(step);
  }
  if (r.bool(0.3))
    steps.push({
      id: "confirm",
      type: "elicitation",
      message: "Proceed with {{.params.id}}?",
      schema: { type: "object", properties: { ok: { type: "boolean" } } },
      dependsOn: ["s0"],
    });
  if (r.bool(0.3))
    steps.push({
      id: "each",
      type: "forEach",
      collection: "{{json .steps.s0.output.items}}",
      itemVar: "item",
      maxParallel: 2,
      step: { tool: "beta.get_item", arguments: { id: "{{.forEach.item}}" } },
      dependsOn: ["s0"],
    });
  return {
    name: `tool_${index}`,
    description: `composite tool ${index}`,
    parameters: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
    timeout: r.pick(["2m", "90s", "1h"]),
    steps,
    output: {
      properties: { result: { type: "string", value: `{{.steps.s${n - 1}.output.id}}` } },
      required: ["result"],
    },
  };
}

/** A random, valid VirtualMCPServer exercising most of the spec (asserted valid by the tests). */
export function validVirtualMCPServer(r: Rng, name = "fuzz", namespace = "default"): JsonObject {
  const toolEntries: JsonObject[] = r
    .shuffle(WORKLOADS)
    .slice(0, r.range(1, 3))
    .map((workload, i) => {
      const e: JsonObject = { workload };
      if (r.bool(0.6)) e.filter = r.shuffle(TOOLS).slice(0, r.range(1, 3));
      if (i === 0 || r.bool(0.4))
        e.overrides = { get_item: { name: `${workload}_fetch`, description: "fetch one item" } };
      if (r.bool(0.3)) e.toolConfigRef = { name: `${workload}-tools` };
      if (r.bool(0.2)) e.excludeAll = false;
      return e;
    });
  const mode = r.pick(["prefix", "priority", "manual"] as const);
  const aggregation: JsonObject = { conflictResolution: mode, tools: toolEntries };
  if (mode === "prefix")
    aggregation.conflictResolutionConfig = { prefixFormat: r.pick(["{workload}_", "{workload}."]) };
  if (r.bool(0.3)) aggregation.defaultToolVisibility = r.pick(["allow", "deny"]);
  // With deny, vmcp wants every priorityOrder workload to have a tools entry.
  const ranked =
    aggregation.defaultToolVisibility === "deny" ? toolEntries.map((e) => e.workload) : WORKLOADS;
  if (mode === "priority")
    aggregation.conflictResolutionConfig = {
      priorityOrder: r.shuffle(ranked as readonly string[]).slice(0, r.range(1, ranked.length)),
    };
  if (r.bool(0.2)) aggregation.excludeAllTools = false;
  const spec: JsonObject = {
    groupRef: { name: r.pick(["tools", "team-a", "g1"]) },
    incomingAuth: { type: "anonymous" },
    outgoingAuth: {
      source: "discovered",
      default: { type: "discovered" },
      backends: { alpha: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "alpha-auth" } } },
    },
    serviceType: r.pick(["ClusterIP", "NodePort", "LoadBalancer"]),
    sessionAffinity: r.pick(["ClientIP", "None"]),
    replicas: r.range(0, 5),
    passthroughHeaders: ["X-Request-Id"],
    imagePullSecrets: [{ name: "regcred" }],
    telemetryConfigRef: { name: "otel" },
    config: {
      aggregation,
      compositeTools: Array.from({ length: r.range(1, 3) }, (_, i) => compositeTool(r, i)),
      operational: {
        // Zero values are valid: vmcp fills in its defaults (30s, 30s, 3).
        timeouts: { default: r.pick(["30s", "1m", "0s"]), perWorkload: { alpha: "10s" } },
        failureHandling: {
          healthCheckInterval: r.pick(["30s", "15s", "1m", "0s"]),
          unhealthyThreshold: r.range(0, 5),
          healthCheckTimeout: r.pick(["10s", "5s", "0s"]),
          partialFailureMode: r.pick(["fail", "best_effort"]),
          circuitBreaker: {
            enabled: r.bool(),
            failureThreshold: r.range(1, 10),
            timeout: r.pick(["60s", "1s", "2m"]),
          },
        },
      },
      metadata: { team: "platform" },
    },
  };
  return {
    apiVersion: r.pick(["toolhive.stacklok.dev/v1beta1", "toolhive.stacklok.dev/v1alpha1"]),
    kind: "VirtualMCPServer",
    metadata: { name, namespace },
    spec,
  };
}

// ---- mutations ---------------------------------------------------------------------------

export type Level = "schema" | "rule";

export interface Applied {
  /** The field path an error must start with. */
  expect: string;
  /** What the error's `found`/`message` must also match (cycles, duplicates), if anything. */
  mentions?: RegExp;
  /** The subtree the mutation changed (two mutations of a case touch disjoint subtrees). */
  touched: Part[];
}

export interface Mutation {
  id: string;
  level: Level;
  /** False when an API server cannot even hold the object (apiVersion, kind, metadata). */
  cluster: boolean;
  /** Returns undefined when the base offers nothing to mutate this way. */
  apply(r: Rng, obj: JsonObject): Applied | undefined;
}

const SPEC = ["spec"] as const;
const CONFIG = ["spec", "config"] as const;
const AGG = ["spec", "config", "aggregation"] as const;
const FH = ["spec", "config", "operational", "failureHandling"] as const;

const toolsOf = (obj: JsonObject): JsonObject[] =>
  (getAt(obj, [...CONFIG, "compositeTools"]) as JsonObject[] | undefined) ?? [];
const stepsOf = (tool: JsonObject): JsonObject[] => (tool.steps as JsonObject[] | undefined) ?? [];

/** Picks a composite tool and one of its steps matching `pred`. */
function pickStep(
  r: Rng,
  obj: JsonObject,
  pred: (s: JsonObject) => boolean = () => true,
): { path: Part[]; step: JsonObject; tool: JsonObject; ti: number; si: number } | undefined {
  const candidates: { ti: number; si: number }[] = [];
  toolsOf(obj).forEach((t, ti) =>
    stepsOf(t).forEach((s, si) => {
      if (pred(s)) candidates.push({ ti, si });
    }),
  );
  if (!candidates.length) return undefined;
  const { ti, si } = r.pick(candidates);
  const tool = toolsOf(obj)[ti] as JsonObject;
  return {
    path: [...CONFIG, "compositeTools", ti, "steps", si],
    step: stepsOf(tool)[si] as JsonObject,
    tool,
    ti,
    si,
  };
}

function pickToolEntry(r: Rng, obj: JsonObject): { path: Part[]; entry: JsonObject } | undefined {
  const entries = (getAt(obj, [...AGG, "tools"]) as JsonObject[] | undefined) ?? [];
  if (!entries.length) return undefined;
  const i = r.int(entries.length);
  return { path: [...AGG, "tools", i], entry: entries[i] as JsonObject };
}

/** Sets a field (which must exist, unless `create`) to `value`; the error is expected at `expectPath ?? path`. */
function setField(
  obj: JsonObject,
  path: Part[],
  value: Json,
  opts: { create?: boolean; expectPath?: Part[] } = {},
): Applied | undefined {
  if (!opts.create && getAt(obj, path) === undefined) return undefined;
  if (getAt(obj, path.slice(0, -1)) === undefined) return undefined;
  setAt(obj, path, value);
  return { expect: formatPath(opts.expectPath ?? path), touched: path };
}

function removeField(obj: JsonObject, path: Part[]): Applied | undefined {
  if (getAt(obj, path) === undefined) return undefined;
  deleteAt(obj, path);
  return { expect: formatPath(path), touched: path };
}

/** A mutation that sets a fixed path to one of `values`. */
function fixed(
  id: string,
  level: Level,
  path: readonly Part[],
  values: readonly Json[],
  cluster = true,
): Mutation {
  return {
    id,
    level,
    cluster,
    apply: (r, obj) => setField(obj, [...path], clone(r.pick(values)), { create: true }),
  };
}

/** A mutation on a random composite-tool step. */
function onStep(
  id: string,
  level: Level,
  field: Part[],
  values: readonly Json[],
  pred?: (s: JsonObject) => boolean,
): Mutation {
  return {
    id,
    level,
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, pred);
      return s ? setField(obj, [...s.path, ...field], clone(r.pick(values)), { create: true }) : undefined;
    },
  };
}

const BROKEN_TEMPLATES = [
  "{{.params.id",
  "{{if .params.id}}x",
  "x{{end}}",
  "{{nosuchfn .params.id}}",
  "{{.params.id | | len}}",
  "{{(.params.id}}",
  "{{else}}",
  "{{/* unclosed comment }}",
  "{{$undeclared}}",
  "{{range .params.items}}{{.}}",
  "{{ if }}yes{{end}}",
] as const;

const CATALOGUE: readonly Mutation[] = [
  // wrong types
  fixed("type:serviceType", "schema", [...SPEC, "serviceType"], [42, true, ["ClusterIP"]]),
  fixed("type:replicas", "schema", [...SPEC, "replicas"], ["3", true, { n: 3 }]),
  fixed("type:groupRef", "schema", [...SPEC, "groupRef"], ["tools", 7, ["tools"]]),
  fixed("type:groupRef.name", "schema", [...SPEC, "groupRef", "name"], [7, false, { name: "x" }]),
  fixed("type:incomingAuth", "schema", [...SPEC, "incomingAuth"], ["anonymous", 1]),
  fixed("type:config", "schema", [...CONFIG], [["a"], "config", 3]),
  fixed("type:config.name", "schema", [...CONFIG, "name"], [5, ["x"]]),
  fixed("type:aggregation", "schema", [...AGG], ["prefix", 1, ["prefix"]]),
  fixed("type:aggregation.tools", "schema", [...AGG, "tools"], [{ workload: "alpha" }, "alpha"]),
  fixed("type:excludeAllTools", "schema", [...AGG, "excludeAllTools"], ["yes", 1]),
  fixed("type:compositeTools", "schema", [...CONFIG, "compositeTools"], [{}, "tool_0", 0]),
  fixed("type:passthroughHeaders", "schema", [...SPEC, "passthroughHeaders"], ["X-Request-Id", [1, 2]]),
  fixed("type:imagePullSecrets", "schema", [...SPEC, "imagePullSecrets", 0, "name"], [1, true]),
  fixed("type:outgoingAuth.backends", "schema", [...SPEC, "outgoingAuth", "backends"], [["alpha"], "alpha"]),
  fixed("type:unhealthyThreshold", "schema", [...FH, "unhealthyThreshold"], ["3", 2.5]),
  fixed("type:circuitBreaker.enabled", "schema", [...FH, "circuitBreaker", "enabled"], ["true", 1]),
  fixed(
    "type:perWorkload",
    "schema",
    [...CONFIG, "operational", "timeouts", "perWorkload"],
    ["10s", ["10s"]],
  ),
  {
    id: "type:config.metadata",
    level: "schema",
    cluster: true,
    apply: (_r, obj) =>
      setField(obj, [...CONFIG, "metadata"], { team: 1 }, { expectPath: [...CONFIG, "metadata", "team"] }),
  },
  {
    id: "type:tools[].filter",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e
        ? setField(obj, [...e.path, "filter"], r.pick(["get_item", 3, { a: 1 }]), { create: true })
        : undefined;
    },
  },
  {
    id: "type:tools[].workload",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e ? setField(obj, [...e.path, "workload"], r.pick([5, null, ["alpha"]])) : undefined;
    },
  },
  {
    id: "type:tools[].overrides",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e
        ? setField(obj, [...e.path, "overrides", "get_item", "name"], r.pick([1, false]), { create: true })
        : undefined;
    },
  },
  {
    id: "type:steps",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      return setField(obj, [...CONFIG, "compositeTools", ti, "steps"], r.pick(["s0", { id: "s0" }, 2]));
    },
  },
  onStep("type:step.id", "schema", ["id"], [3, null, ["s0"]]),
  onStep("type:step.dependsOn", "schema", ["dependsOn"], ["s0", [1], { s: "s0" }]),
  onStep("type:step.arguments", "schema", ["arguments"], ["id=1", ["{{.params.id}}"], 9]),
  onStep(
    "type:step.onError.retryCount",
    "schema",
    ["onError", "retryCount"],
    ["2", 1.5],
    (s) => "onError" in s,
  ),
  onStep("type:step.maxParallel", "schema", ["maxParallel"], ["2", 0.5], (s) => s.type === "forEach"),
  {
    id: "type:output.properties",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      return setField(obj, [...CONFIG, "compositeTools", ti, "output", "properties"], r.pick([[], "result"]));
    },
  },
  fixed("type:apiVersion", "schema", ["apiVersion"], [1, null], false),
  fixed("type:metadata.labels", "schema", ["metadata", "labels"], [{ a: 1 }, "a=b"], false),

  // bad enums
  fixed("enum:serviceType", "schema", [...SPEC, "serviceType"], ["Ingress", "clusterip", ""]),
  fixed("enum:sessionAffinity", "schema", [...SPEC, "sessionAffinity"], ["Sticky", "none"]),
  fixed("enum:incomingAuth.type", "schema", [...SPEC, "incomingAuth", "type"], ["basic", "OIDC", ""]),
  fixed("enum:outgoingAuth.source", "schema", [...SPEC, "outgoingAuth", "source"], ["static", "Discovered"]),
  fixed(
    "enum:outgoingAuth.default.type",
    "schema",
    [...SPEC, "outgoingAuth", "default", "type"],
    ["bearer", "none"],
  ),
  fixed(
    "enum:outgoingAuth.backends.type",
    "schema",
    [...SPEC, "outgoingAuth", "backends", "alpha", "type"],
    ["token", "inline"],
  ),
  fixed("enum:conflictResolution", "schema", [...AGG, "conflictResolution"], ["first", "Prefix", "merge"]),
  fixed("enum:defaultToolVisibility", "schema", [...AGG, "defaultToolVisibility"], ["hidden", "Allow"]),
  fixed("enum:partialFailureMode", "schema", [...FH, "partialFailureMode"], ["partial", "best-effort"]),
  fixed("enum:logLevel", "schema", [...CONFIG, "operational", "logLevel"], ["info", "trace"]),
  onStep("enum:step.type", "schema", ["type"], ["loop", "Tool", "call"]),
  onStep("enum:step.onError.action", "schema", ["onError", "action"], ["ignore", "Retry", "skip"]),
  onStep(
    "enum:step.onDecline.action",
    "schema",
    ["onDecline"],
    [{ action: "later" }, { action: "Abort" }],
    (s) => s.type === "elicitation",
  ),
  {
    id: "enum:output.type",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      return setField(
        obj,
        [...CONFIG, "compositeTools", ti, "output", "properties", "result", "type"],
        r.pick(["date", "str", "Object"]),
      );
    },
  },
  fixed(
    "enum:apiVersion",
    "schema",
    ["apiVersion"],
    ["toolhive.stacklok.dev/v2", "toolhive.stacklok.dev/v1"],
    false,
  ),
  fixed("enum:kind", "schema", ["kind"], ["VirtualMCPServers", "MCPServer"], false),
  {
    id: "enum:staticBackend.transport",
    level: "schema",
    cluster: true,
    apply: (r, obj) =>
      setField(
        obj,
        [...CONFIG, "backends"],
        [
          {
            name: "static",
            url: "http://static.example.test/mcp",
            transport: r.pick(["stdio", "http", "SSE"]),
          },
        ],
        { create: true, expectPath: [...CONFIG, "backends", 0, "transport"] },
      ),
  },

  // missing required fields
  { id: "missing:spec", level: "schema", cluster: true, apply: (_r, obj) => removeField(obj, ["spec"]) },
  {
    id: "missing:groupRef",
    level: "schema",
    cluster: true,
    apply: (_r, obj) => removeField(obj, [...SPEC, "groupRef"]),
  },
  {
    id: "missing:groupRef.name",
    level: "schema",
    cluster: true,
    apply: (_r, obj) => removeField(obj, [...SPEC, "groupRef", "name"]),
  },
  {
    id: "missing:incomingAuth",
    level: "schema",
    cluster: true,
    apply: (_r, obj) => removeField(obj, [...SPEC, "incomingAuth"]),
  },
  {
    id: "missing:incomingAuth.type",
    level: "schema",
    cluster: true,
    apply: (_r, obj) => removeField(obj, [...SPEC, "incomingAuth", "type"]),
  },
  {
    id: "missing:telemetryConfigRef.name",
    level: "schema",
    cluster: true,
    apply: (_r, obj) => removeField(obj, [...SPEC, "telemetryConfigRef", "name"]),
  },
  {
    id: "missing:metadata.name",
    level: "schema",
    cluster: false,
    apply: (_r, obj) => removeField(obj, ["metadata", "name"]),
  },
  {
    id: "missing:compositeTool.name",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      return tools.length
        ? removeField(obj, [...CONFIG, "compositeTools", r.int(tools.length), "name"])
        : undefined;
    },
  },
  {
    id: "missing:compositeTool.steps",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      return tools.length
        ? removeField(obj, [...CONFIG, "compositeTools", r.int(tools.length), "steps"])
        : undefined;
    },
  },
  {
    id: "missing:output.properties",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      return tools.length
        ? removeField(obj, [...CONFIG, "compositeTools", r.int(tools.length), "output", "properties"])
        : undefined;
    },
  },
  {
    id: "missing:output.type",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      return tools.length
        ? removeField(obj, [
            ...CONFIG,
            "compositeTools",
            r.int(tools.length),
            "output",
            "properties",
            "result",
            "type",
          ])
        : undefined;
    },
  },
  {
    id: "missing:step.id",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj);
      return s ? removeField(obj, [...s.path, "id"]) : undefined;
    },
  },
  {
    id: "missing:tools[].workload",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e ? removeField(obj, [...e.path, "workload"]) : undefined;
    },
  },
  {
    id: "missing:staticBackend.url",
    level: "schema",
    cluster: true,
    apply: (_r, obj) =>
      setField(obj, [...CONFIG, "backends"], [{ name: "static", transport: "sse" }], {
        create: true,
        expectPath: [...CONFIG, "backends", 0, "url"],
      }),
  },

  // empty strings where the schema wants some
  fixed("empty:groupRef.name", "schema", [...SPEC, "groupRef", "name"], [""]),
  fixed("empty:telemetryConfigRef.name", "schema", [...SPEC, "telemetryConfigRef", "name"], [""]),
  fixed("empty:metadata.name", "schema", ["metadata", "name"], [""], false),

  // bad durations
  fixed(
    "duration:timeouts.default",
    "schema",
    [...CONFIG, "operational", "timeouts", "default"],
    ["30", "5 s", "1d", "-5s", "s"],
  ),
  fixed(
    "duration:timeouts.perWorkload",
    "schema",
    [...CONFIG, "operational", "timeouts", "perWorkload", "alpha"],
    ["soon", "10", "10sec"],
  ),
  fixed(
    "duration:healthCheckInterval",
    "schema",
    [...FH, "healthCheckInterval"],
    ["30", "half a minute", "1w"],
  ),
  fixed("duration:healthCheckTimeout", "schema", [...FH, "healthCheckTimeout"], ["", "10 s", "ten"]),
  fixed(
    "duration:circuitBreaker.timeout",
    "schema",
    [...FH, "circuitBreaker", "timeout"],
    ["500ms", "0s", "999ms", "100us"],
  ),
  {
    id: "duration:compositeTool.timeout",
    level: "schema",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      return tools.length
        ? setField(
            obj,
            [...CONFIG, "compositeTools", r.int(tools.length), "timeout"],
            r.pick(["2 minutes", "2", "PT2M"]),
          )
        : undefined;
    },
  },
  onStep("duration:step.timeout", "schema", ["timeout"], ["1d", "30", "forever"]),
  onStep(
    "duration:step.retryDelay",
    "schema",
    ["onError", "retryDelay"],
    ["-5s", "5", "5 secs"],
    (s) => "onError" in s,
  ),

  // numbers out of range
  fixed("range:replicas", "schema", [...SPEC, "replicas"], [-1, -100, 1.5, 2 ** 31]),
  fixed(
    "range:circuitBreaker.failureThreshold",
    "schema",
    [...FH, "circuitBreaker", "failureThreshold"],
    [0, -3, 1.5],
  ),

  // patterns
  {
    id: "pattern:staticBackend.url",
    level: "schema",
    cluster: true,
    apply: (r, obj) =>
      setField(
        obj,
        [...CONFIG, "backends"],
        [
          {
            name: "static",
            url: r.pick(["ftp://x.example.test", "static.example.test/mcp", ""]),
            transport: "sse",
          },
        ],
        { create: true, expectPath: [...CONFIG, "backends", 0, "url"] },
      ),
  },
  {
    id: "pattern:config.oidc.issuer",
    level: "schema",
    cluster: true,
    apply: (r, obj) =>
      setField(
        obj,
        [...CONFIG, "incomingAuth"],
        {
          type: "oidc",
          oidc: { issuer: r.pick(["issuer.example.test", "ws://i"]), clientId: "c", audience: "a" },
        },
        { create: true, expectPath: [...CONFIG, "incomingAuth", "oidc", "issuer"] },
      ),
  },

  // ---- cross-field rules (pass the schema; only validateVirtualMCPServer rejects them) ----
  {
    id: "rule:priority-without-order",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      setAt(obj, [...AGG, "conflictResolution"], "priority");
      const crc = r.pick<Json | undefined>([
        undefined,
        { priorityOrder: [] },
        { prefixFormat: "{workload}_" },
      ]);
      if (crc) setAt(obj, [...AGG, "conflictResolutionConfig"], crc);
      else deleteAt(obj, [...AGG, "conflictResolutionConfig"]);
      return { expect: formatPath([...AGG, "conflictResolutionConfig", "priorityOrder"]), touched: [...AGG] };
    },
  },
  {
    id: "rule:manual-without-tools",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      setAt(obj, [...AGG, "conflictResolution"], "manual");
      if (r.bool()) deleteAt(obj, [...AGG, "tools"]);
      else setAt(obj, [...AGG, "tools"], []);
      return { expect: formatPath([...AGG, "tools"]), touched: [...AGG] };
    },
  },
  {
    id: "rule:duplicate-tool-name",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const src = r.int(tools.length);
      if (tools.length > 1 && r.bool()) {
        const dst = r.pick(tools.map((_, i) => i).filter((i) => i !== src));
        (tools[dst] as JsonObject).name = (tools[src] as JsonObject).name as string;
        const later = Math.max(src, dst);
        return {
          expect: formatPath([...CONFIG, "compositeTools", later, "name"]),
          mentions: /also the name of compositeTools/,
          touched: [...CONFIG, "compositeTools", dst],
        };
      }
      tools.push(clone(tools[src] as JsonObject));
      return {
        expect: formatPath([...CONFIG, "compositeTools", tools.length - 1, "name"]),
        mentions: /also the name of compositeTools/,
        touched: [...CONFIG, "compositeTools", tools.length - 1],
      };
    },
  },
  {
    id: "rule:duplicate-step-id",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj);
      if (!s) return undefined;
      const steps = stepsOf(s.tool);
      if (steps.length < 2) return undefined;
      const other = r.pick(steps.map((_, i) => i).filter((i) => i !== s.si));
      (steps[Math.max(s.si, other)] as JsonObject).id = (steps[Math.min(s.si, other)] as JsonObject)
        .id as string;
      return {
        expect: formatPath([...CONFIG, "compositeTools", s.ti, "steps", Math.max(s.si, other), "id"]),
        mentions: /used twice/,
        touched: [...CONFIG, "compositeTools", s.ti],
      };
    },
  },
  {
    id: "rule:dependsOn-unknown",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj);
      if (!s) return undefined;
      const deps = [...((s.step.dependsOn as string[] | undefined) ?? [])];
      const at = r.int(deps.length + 1);
      deps.splice(at, 0, r.pick(["ghost", "s9", "S0", ""]));
      s.step.dependsOn = deps;
      return {
        expect: formatPath([...s.path, "dependsOn", at]),
        touched: [...CONFIG, "compositeTools", s.ti],
      };
    },
  },
  {
    id: "rule:cycle",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj);
      if (!s) return undefined;
      const steps = stepsOf(s.tool);
      // Chain steps s0 → … → sK: make s0 depend on sK (K = 0 is a self-loop).
      const chain = steps.filter((st) => /^s\d+$/.test(String(st.id)));
      const k = r.int(chain.length);
      const first = chain[0] as JsonObject;
      first.dependsOn = [
        ...((first.dependsOn as string[] | undefined) ?? []),
        String((chain[k] as JsonObject).id),
      ];
      return {
        expect: formatPath([...CONFIG, "compositeTools", s.ti, "steps"]),
        mentions: /cycle/,
        touched: [...CONFIG, "compositeTools", s.ti],
      };
    },
  },
  {
    id: "rule:template.arguments",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "tool");
      if (!s) return undefined;
      const args = (s.step.arguments ?? {}) as JsonObject;
      args.id = r.pick([...BROKEN_TEMPLATES, "{{.steps.ghost.output}}"]);
      s.step.arguments = args;
      return { expect: formatPath([...s.path, "arguments", "id"]), touched: [...s.path, "arguments"] };
    },
  },
  {
    id: "rule:template.nested-argument",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "tool");
      if (!s) return undefined;
      s.step.arguments = { deep: { list: ["ok", r.pick(BROKEN_TEMPLATES)] } };
      return {
        expect: formatPath([...s.path, "arguments", "deep", "list", 1]),
        touched: [...s.path, "arguments"],
      };
    },
  },
  onStep(
    "rule:template.condition",
    "rule",
    ["condition"],
    [...BROKEN_TEMPLATES, "{{if .steps.nowhere.ok}}x{{end}}"],
  ),
  {
    id: "rule:template.output",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      const path = [...CONFIG, "compositeTools", ti, "output", "properties", "result", "value"];
      return setField(obj, path, r.pick([...BROKEN_TEMPLATES, "{{.steps.missing.output.id}}"]));
    },
  },
  onStep(
    "rule:retry-without-count",
    "rule",
    ["onError"],
    [{ action: "retry" }, { action: "retry", retryCount: 0 }],
  ),
  {
    id: "rule:tool-step-without-tool",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "tool");
      return s ? removeField(obj, [...s.path, "tool"]) : undefined;
    },
  },
  onStep(
    "rule:bad-tool-ref",
    "rule",
    ["tool"],
    ["not a tool!", "-alpha.get", "alpha/get_item", ".alpha"],
    (s) => s.type === "tool",
  ),
  {
    id: "rule:elicitation-without-message",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj);
      if (!s) return undefined;
      s.step.type = "elicitation";
      delete s.step.message;
      return { expect: formatPath([...s.path, "message"]), touched: s.path };
    },
  },
  {
    id: "rule:forEach-without-collection",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "forEach");
      if (!s) return undefined;
      delete s.step.collection;
      return { expect: formatPath([...s.path, "collection"]), touched: s.path };
    },
  },
  {
    id: "rule:forEach-inner-without-tool",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "forEach");
      if (!s) return undefined;
      s.step.step = r.pick<Json>([
        { arguments: { id: "{{.forEach.item}}" } },
        { tool: "-alpha" },
        { tool: "" },
      ]);
      return { expect: formatPath([...s.path, "step", "tool"]), touched: s.path };
    },
  },
  {
    id: "rule:default-auth-ref-without-name",
    level: "rule",
    cluster: true,
    apply: (r, obj) =>
      setField(
        obj,
        [...SPEC, "outgoingAuth", "default"],
        r.pick<Json>([
          { type: "externalAuthConfigRef" },
          { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "" } },
        ]),
        { expectPath: [...SPEC, "outgoingAuth", "default", "externalAuthConfigRef", "name"] },
      ),
  },
  {
    id: "rule:backend-auth-ref-without-name",
    level: "rule",
    cluster: true,
    apply: (r, obj) =>
      setField(
        obj,
        [...SPEC, "outgoingAuth", "backends", "alpha", "externalAuthConfigRef"],
        { name: "" },
        { expectPath: [...SPEC, "outgoingAuth", "backends", "alpha", "externalAuthConfigRef", "name"] },
      ),
  },
  {
    id: "rule:tools[].workload-empty",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e ? setField(obj, [...e.path, "workload"], "") : undefined;
    },
  },
  {
    id: "rule:tools[].toolConfigRef-empty",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      return e
        ? setField(
            obj,
            [...e.path, "toolConfigRef"],
            { name: "" },
            { create: true, expectPath: [...e.path, "toolConfigRef", "name"] },
          )
        : undefined;
    },
  },
  {
    id: "rule:embeddingServerRef-empty",
    level: "rule",
    cluster: true,
    apply: (_r, obj) =>
      setField(
        obj,
        [...SPEC, "embeddingServerRef"],
        { name: "" },
        {
          create: true,
          expectPath: [...SPEC, "embeddingServerRef", "name"],
        },
      ),
  },
];

// ---- rules of vmcp's own config validation (ToolHive's vmcp refuses the rendered config) ----
export const RUNTIME_MUTATIONS: readonly Mutation[] = [
  {
    id: "vmcp:healthCheckTimeout-not-below-interval",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const [interval, timeout] = r.pick<[string, string | undefined]>([
        ["10s", undefined], // the renderer's default timeout is 10s
        ["10s", "10s"],
        ["30s", "1m"],
        ["1m", "60s"],
      ]);
      setAt(obj, [...FH, "healthCheckInterval"], interval);
      if (timeout) setAt(obj, [...FH, "healthCheckTimeout"], timeout);
      else deleteAt(obj, [...FH, "healthCheckTimeout"]);
      return { expect: formatPath([...FH, "healthCheckTimeout"]), touched: [...FH, "healthCheckTimeout"] };
    },
  },
  {
    id: "vmcp:skippable-step-without-defaults",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      // s0 is always read by s1 (arguments.prev), so skipping it needs defaultResults.id.
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      const s0 = stepsOf(tools[ti] as JsonObject)[0] as JsonObject;
      if (r.bool()) s0.condition = r.pick(["true", "{{.params.id}}"]);
      else s0.onError = { action: "continue" };
      if (r.bool()) delete s0.defaultResults;
      else s0.defaultResults = { ok: true };
      const path = [...CONFIG, "compositeTools", ti, "steps", 0];
      return { expect: formatPath([...path, "defaultResults"]), touched: path };
    },
  },
  {
    id: "vmcp:deny-priority-unlisted-workload",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const entries = ((getAt(obj, [...AGG, "tools"]) as JsonObject[] | undefined) ?? []).slice(0, 2);
      setAt(obj, [...AGG, "tools"], entries);
      const listed = new Set(entries.map((e) => e.workload));
      const order = r.shuffle(WORKLOADS);
      const at = order.findIndex((w) => !listed.has(w));
      setAt(obj, [...AGG, "conflictResolution"], "priority");
      setAt(obj, [...AGG, "conflictResolutionConfig"], { priorityOrder: order });
      setAt(obj, [...AGG, "defaultToolVisibility"], "deny");
      return {
        expect: formatPath([...AGG, "conflictResolutionConfig", "priorityOrder", at]),
        touched: [...AGG],
      };
    },
  },
  {
    id: "vmcp:empty-prefixFormat",
    level: "rule",
    cluster: true,
    apply: (_r, obj) => {
      setAt(obj, [...AGG, "conflictResolution"], "prefix");
      setAt(obj, [...AGG, "conflictResolutionConfig"], { prefixFormat: "" });
      return { expect: formatPath([...AGG, "conflictResolutionConfig", "prefixFormat"]), touched: [...AGG] };
    },
  },
  {
    id: "vmcp:duplicate-workload-entry",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const entries = (getAt(obj, [...AGG, "tools"]) as JsonObject[] | undefined) ?? [];
      if (!entries.length) return undefined;
      entries.push({ workload: r.pick(entries).workload as string });
      return {
        expect: formatPath([...AGG, "tools", entries.length - 1, "workload"]),
        touched: [...AGG, "tools"],
      };
    },
  },
  {
    id: "vmcp:override-without-name-or-description",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const e = pickToolEntry(r, obj);
      if (!e) return undefined;
      e.entry.overrides = {
        ...((e.entry.overrides as JsonObject | undefined) ?? {}),
        search: r.pick<Json>([{}, { annotations: { readOnlyHint: true } }, { name: "" }]),
      };
      return { expect: formatPath([...e.path, "overrides", "search"]), touched: [...e.path, "overrides"] };
    },
  },
  fixed(
    "vmcp:zero-perWorkload-timeout",
    "rule",
    [...CONFIG, "operational", "timeouts", "perWorkload", "alpha"],
    ["0s", "0ms"],
  ),
  fixed("vmcp:negative-unhealthyThreshold", "rule", [...FH, "unhealthyThreshold"], [-1, -5]),
  {
    id: "vmcp:restricted-passthrough-header",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const header = r.pick(["Authorization", "cookie", "host", "X-Forwarded-For", "x-real-ip", "X Bad", ""]);
      setAt(obj, [...SPEC, "passthroughHeaders"], ["X-Request-Id", header]);
      return {
        expect: formatPath([...SPEC, "passthroughHeaders", 1]),
        touched: [...SPEC, "passthroughHeaders"],
      };
    },
  },
  {
    id: "vmcp:composite-without-description",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      const path = [...CONFIG, "compositeTools", ti, "description"];
      if (r.bool()) deleteAt(obj, path);
      else setAt(obj, path, "");
      return { expect: formatPath(path), touched: path };
    },
  },
  {
    id: "vmcp:composite-parameters-not-object",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      const path = [...CONFIG, "compositeTools", ti, "parameters"];
      const [params, under] = r.pick<[Json, Part[]]>([
        [{ type: "string" }, ["type"]],
        [{ properties: { id: { type: "string" } } }, ["type"]],
        [{ type: "object", properties: { id: { type: "strin" } } }, ["properties", "id", "type"]],
        [{ type: "object", properties: { id: { type: "string" } }, required: "id" }, ["required"]],
      ]);
      setAt(obj, path, params);
      return { expect: formatPath([...path, ...under]), touched: path };
    },
  },
  {
    id: "vmcp:forEach-limits",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "forEach");
      if (!s) return undefined;
      const [key, value] = r.pick<[string, Json]>([
        ["maxParallel", 51],
        ["maxParallel", -1],
        ["maxIterations", 1001],
        ["itemVar", "index"],
        ["itemVar", "1st"],
        ["tool", "alpha.get_item"],
      ]);
      s.step[key] = value;
      return { expect: formatPath([...s.path, key]), touched: s.path };
    },
  },
  {
    id: "vmcp:forEach-inner-not-tool",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "forEach");
      if (!s) return undefined;
      (s.step.step as JsonObject).type = r.pick(["elicitation", "forEach"]);
      return { expect: formatPath([...s.path, "step", "type"]), touched: s.path };
    },
  },
  {
    id: "vmcp:elicitation-schema-invalid",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const s = pickStep(r, obj, (st) => st.type === "elicitation");
      if (!s) return undefined;
      s.step.schema = r.pick<Json>([
        { type: "object", properties: { ok: { type: "bool" } } },
        { type: "object", properties: "ok" },
      ]);
      return { expect: formatPath([...s.path, "schema"]), touched: s.path };
    },
  },
  {
    id: "vmcp:unknown-config-field",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const key = r.pick(["rateLimit", "featureFlags", "timeouts", "Aggregation"]);
      return setField(obj, [...CONFIG, key], r.pick<Json>([{ enabled: true }, "on", 3]), { create: true });
    },
  },
  {
    id: "vmcp:empty-names",
    level: "rule",
    cluster: true,
    apply: (r, obj) => {
      const tools = toolsOf(obj);
      if (!tools.length) return undefined;
      const ti = r.int(tools.length);
      const path = [...CONFIG, "compositeTools", ti, "name"];
      setAt(obj, path, "");
      return { expect: formatPath(path), touched: path };
    },
  },
];

/** Every mutation: schema, our cross-field rules, and vmcp's own config rules. */
export const MUTATIONS: readonly Mutation[] = [...CATALOGUE, ...RUNTIME_MUTATIONS];

export interface InvalidCase {
  index: number;
  /** Mutation ids, in the order applied. */
  mutations: string[];
  /** One per mutation: an error's path must start with it (and match `mentions`). */
  expects: { prefix: string; mentions?: RegExp }[];
  level: Level;
  /** Every mutation can be created on an API server. */
  cluster: boolean;
  object: JsonObject;
}

/** A mutation whose target is absent from this base (it throws on a missing parent) does not apply. */
function tryApply(m: Mutation, r: Rng, obj: JsonObject): Applied | undefined {
  try {
    return m.apply(r, obj);
  } catch {
    return undefined;
  }
}

const isPrefix = (a: readonly Part[], b: readonly Part[]): boolean =>
  a.length <= b.length && a.every((p, i) => p === b[i]);

/**
 * `count` invalid VirtualMCPServers from `seed`. About a quarter carry two mutations of the
 * same level on disjoint subtrees (zod stops before the cross-field rules, so a schema
 * mutation would hide a rule mutation).
 */
export function invalidCases(seed: number, count: number, namespace = "default"): InvalidCase[] {
  const r = rng(seed);
  const out: InvalidCase[] = [];
  let attempts = 0;
  while (out.length < count) {
    if (++attempts > count * 50) throw new Error("mutation catalogue cannot produce enough cases");
    const index = out.length;
    const base = validVirtualMCPServer(r, `fuzz-${index}`, namespace);
    // Walk the catalogue round-robin first (every mutation is exercised), then at random,
    // cross-field rules (fewer, and the ones no schema catches) 40% of the time.
    const level: Level = r.bool(0.4) ? "rule" : "schema";
    const first =
      index < MUTATIONS.length * 2
        ? (MUTATIONS[index % MUTATIONS.length] as Mutation)
        : r.pick(MUTATIONS.filter((m) => m.level === level));
    let obj = clone(base);
    const a = tryApply(first, r, obj);
    if (!a) continue;
    const applied: { m: Mutation; a: Applied }[] = [{ m: first, a }];
    if (r.bool(0.25)) {
      for (let tries = 0; tries < 10; tries++) {
        const m = r.pick(MUTATIONS.filter((x) => x.level === first.level && x.id !== first.id));
        const trial = clone(obj);
        const b = tryApply(m, r, trial);
        if (!b || isPrefix(a.touched, b.touched) || isPrefix(b.touched, a.touched)) continue;
        applied.push({ m, a: b });
        obj = trial;
        break;
      }
    }
    out.push({
      index,
      mutations: applied.map((x) => x.m.id),
      expects: applied.map((x) => ({
        prefix: x.a.expect,
        ...(x.a.mentions ? { mentions: x.a.mentions } : {}),
      })),
      level: first.level,
      cluster: applied.every((x) => x.m.cluster),
      object: obj,
    });
  }
  return out;
}
