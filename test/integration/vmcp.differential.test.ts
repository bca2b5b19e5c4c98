// Differential property test against ToolHive's runtime: seeded random VirtualMCPServers
// (test/support/specgen.ts: a valid spec, and most of them with one or two mutations that
// pass the schema but break a cross-field or vmcp runtime rule) → our verdict
// (validateVirtualMCPServer, then render) vs `vmcp validate` on the config.yaml rendered
// from the schema-valid spec. Every spec we accept must pass vmcp; every problem vmcp
// finds must be one of our errors at the field vmcp names; where we refuse what vmcp
// accepts, the error must be a rule ToolHive's operator enforces or say how the tool
// fails at runtime. VMCP_DIFF_SEEDS sets the count, VMCP_DIFF_SEED the first seed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  formatFieldErrors,
  validateVirtualMCPServer,
  virtualMCPServerSchema,
  type FieldError,
  type VirtualMCPServer,
} from "../../api/index.js";
import { renderAll } from "../../program/render.js";
import type { AnyObject } from "../../program/inputs.js";
import {
  clone,
  MUTATIONS,
  rng,
  RUNTIME_MUTATIONS,
  validVirtualMCPServer,
  WORKLOADS,
} from "../support/specgen.js";
import type { JsonObject, Mutation, Rng } from "../support/specgen.js";
import { podEnv, pool, VMCP, vmcpModuleVersion, vmcpValidate, type Verdict } from "../support/vmcp.js";
import { loadYaml, SETTINGS } from "../unit/helpers.js";

const SEEDS = Number(process.env.VMCP_DIFF_SEEDS ?? 500);
const FIRST_SEED = Number(process.env.VMCP_DIFF_SEED ?? 7_000);
const CONCURRENCY = 2;
const NS = "diff";

/** `path` is `prefix` or lies under it (a.b matches a.b, a.b.c, a.b[0]; not a.bc). */
function under(path: string, prefix: string): boolean {
  const next = path[prefix.length];
  return path.startsWith(prefix) && (next === undefined || next === "." || next === "[");
}

/** What a VirtualMCPServer of the generator references: its group, members, tool, auth and telemetry configs. */
function supportObjects(group: string): AnyObject[] {
  const docs = [
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: ${group}, namespace: ${NS}}
spec: {}`,
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPExternalAuthConfig
metadata: {name: alpha-auth, namespace: ${NS}}
spec:
  type: headerInjection
  headerInjection: {headerName: X-API-Key, valueSecretRef: {name: alpha-key, key: key}}`,
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPTelemetryConfig
metadata: {name: otel, namespace: ${NS}}
spec:
  openTelemetry:
    enabled: true
    endpoint: "https://otel-collector.observability.svc:4318"
    tracing: {enabled: true}`,
    ...WORKLOADS.flatMap((w) => [
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: ${w}, namespace: ${NS}}
spec: {remoteUrl: "https://${w}.example.test/mcp", transport: streamable-http, groupRef: {name: ${group}}}`,
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPToolConfig
metadata: {name: ${w}-tools, namespace: ${NS}}
spec: {toolsFilter: [search, get_item], toolsOverride: {search: {description: "search ${w}"}}}`,
    ]),
  ];
  return loadYaml(docs.join("\n---\n"));
}

const RULE_MUTATIONS = MUTATIONS.filter((m) => m.level === "rule" && !RUNTIME_MUTATIONS.includes(m));

/** A valid spec; 80% of them with one or two schema-valid rule mutations (mostly vmcp's own). */
function generate(r: Rng, index: number): { spec: JsonObject; mutations: string[] } {
  let spec = validVirtualMCPServer(r, `d-${index}`, NS);
  const mutations: string[] = [];
  if (r.bool(0.2)) return { spec, mutations };
  const count = r.bool(0.3) ? 2 : 1;
  for (let tries = 0; mutations.length < count && tries < 10; tries++) {
    const m: Mutation = r.bool(0.65) ? r.pick(RUNTIME_MUTATIONS) : r.pick(RULE_MUTATIONS);
    const trial = clone(spec);
    try {
      if (!m.apply(r, trial)) continue;
    } catch {
      continue; // the base offers nothing to mutate this way
    }
    spec = trial;
    mutations.push(m.id);
  }
  return { spec, mutations };
}

/**
 * The spec field a vmcp problem is about. vmcp names config.yaml fields; config.yaml is
 * spec.config with spec.passthroughHeaders merged in, and steps named by id or index.
 */
function specPathOf(problem: string, spec: VirtualMCPServer["spec"]): string | undefined {
  const tools = spec.config?.compositeTools ?? [];
  // vmcp names a step by index or by id; a duplicated id (itself an error) names no one step.
  const stepPath = (ti: number, id: string) => {
    if (/^\d+$/.test(id)) return `[${id}]`;
    const at = (tools[ti]?.steps ?? []).flatMap((s, i) => (s.id === id ? [i] : []));
    return at.length === 1 ? `[${at[0]}]` : "";
  };
  const rules: [RegExp, (m: RegExpExecArray) => string][] = [
    [
      /compositeTools\[(\d+)\]\.steps\[([^\]]+)\]\.?([A-Za-z]*)/,
      (m) => {
        const ti = Number(m[1]);
        const step = stepPath(ti, m[2] ?? "");
        return `spec.config.compositeTools[${ti}].steps${step}${step && m[3] ? `.${m[3]}` : ""}`;
      },
    ],
    [
      /compositeTools\[(\d+)\]: tool [^:]*: parameters/,
      (m) => `spec.config.compositeTools[${m[1]}].parameters`,
    ],
    [/compositeTools\[(\d+)\]\.([A-Za-z]+)/, (m) => `spec.config.compositeTools[${m[1]}].${m[2]}`],
    [/duplicate composite tool name/, () => "spec.config.compositeTools"],
    [/operational\.failureHandling: ([A-Za-z.]+)/, (m) => `spec.config.operational.failureHandling.${m[1]}`],
    [
      /operational\.timeouts\.perWorkload\.(\S+) must/,
      (m) => `spec.config.operational.timeouts.perWorkload.${m[1]}`,
    ],
    [
      /passthroughHeaders\[(\d+)\]/,
      (m) => `spec.${spec.passthroughHeaders?.length ? "" : "config."}passthroughHeaders[${m[1]}]`,
    ],
    [
      /priorityOrder entry "([^"]+)"/,
      (m) =>
        `spec.config.aggregation.conflictResolutionConfig.priorityOrder[${spec.config?.aggregation?.conflictResolutionConfig?.priorityOrder?.indexOf(m[1] ?? "")}]`,
    ],
    [/prefixFormat is required/, () => "spec.config.aggregation.conflictResolutionConfig.prefixFormat"],
    [/priorityOrder is required/, () => "spec.config.aggregation.conflictResolutionConfig.priorityOrder"],
    [/tool overrides are required for manual/, () => "spec.config.aggregation.tools"],
    [/duplicate workload configuration/, () => "spec.config.aggregation.tools"],
    [/tools\[(\d+)\]\.overrides\.(\S+):/, (m) => `spec.config.aggregation.tools[${m[1]}].overrides.${m[2]}`],
    [/tools\[(\d+)\]\.workload is required/, (m) => `spec.config.aggregation.tools[${m[1]}].workload`],
    [/field (\S+) not found in type config\.Config/, (m) => `spec.config.${m[1]}`],
  ];
  for (const [re, path] of rules) {
    const m = re.exec(problem);
    if (m) return path(m);
  }
  return undefined;
}

/**
 * vmcp lists a composite tool's problems as one "validation failed: a; b" line. A broken
 * template comes twice (parsed, then again to extract references): the first is the one.
 */
const splitProblems = (problems: readonly string[]) =>
  problems
    .flatMap((p) => p.replace(/^validation failed: /, "").split(/; (?=compositeTools\[|failed to extract)/))
    .filter((p) => !p.startsWith("failed to extract step references"));

/** Our errors that may refuse what vmcp accepts: ToolHive's operator refuses it, or the tool fails at runtime. */
const DELIBERATE: readonly [string, RegExp][] = [
  [
    "ToolHive's operator refuses an empty ref name",
    /the name of an MCPExternalAuthConfig|the name of an MCPToolConfig|the name of an EmbeddingServer/,
  ],
  ["a template vmcp parses only when a call expands it", /every call of the tool/],
  ["a template reading a step that does not exist", /passes the text "<no value>" instead/],
];

interface Outcome {
  index: number;
  mutations: string[];
  ours: { ok: true } | { ok: false; errors: string[]; fieldErrors: FieldError[] };
  /** Undefined when the renderer itself refused the spec (a reference problem): nothing to give vmcp. */
  vmcp: Verdict | undefined;
  spec: VirtualMCPServer["spec"];
}

describe(`differential: our validation vs ToolHive's vmcp validate on ${SEEDS} generated specs`, function () {
  this.timeout(900_000);
  let work: string;
  let outcomes: Outcome[] = [];
  let seconds = 0;
  before(async () => {
    assert.equal(vmcpModuleVersion(), "v0.44.0", `${VMCP} is not ToolHive's vmcp 0.44.0`);
    work = mkdtempSync(join(tmpdir(), "vmcp-diff-"));
    const started = Date.now();
    const cases = Array.from({ length: SEEDS }, (_, i) => {
      const seed = FIRST_SEED + i;
      const { spec, mutations } = generate(rng(seed), seed);
      const parsed = virtualMCPServerSchema.safeParse(spec);
      assert.ok(parsed.success, `seed ${seed} (${mutations.join(" + ")}) is not schema-valid`);
      const v = validateVirtualMCPServer(spec);
      // vmcp's verdict is on what the renderer makes of the schema-valid spec, whatever ours is.
      const rendered = renderAll([parsed.data, ...supportObjects(parsed.data.spec.groupRef.name)], SETTINGS);
      const ours: Outcome["ours"] = v.ok
        ? { ok: true }
        : { ok: false, errors: formatFieldErrors(v.errors).split("\n"), fieldErrors: v.errors };
      return { index: seed, mutations, ours, spec: parsed.data.spec, rendered: rendered.rendered[0] };
    });
    outcomes = await pool(cases, CONCURRENCY, async ({ rendered, ...c }) => {
      if (!rendered) return { ...c, vmcp: undefined };
      const file = join(work, `seed-${c.index}.yaml`);
      writeFileSync(file, rendered.configYaml);
      return { ...c, vmcp: await vmcpValidate(file, podEnv(rendered.objects)) };
    });
    seconds = (Date.now() - started) / 1000;
    const count = (f: (o: Outcome) => boolean) => outcomes.filter(f).length;
    const bothOk = count((o) => o.ours.ok && !!o.vmcp?.ok);
    const bothRefuse = count((o) => !o.ours.ok && o.vmcp?.ok === false);
    const dangerous = count((o) => o.ours.ok && !o.vmcp?.ok);
    const stricter = count((o) => !o.ours.ok && !!o.vmcp?.ok);
    const unrendered = count((o) => !o.vmcp);
    const compared = outcomes.length - unrendered;
    const pct = (n: number) => `${((100 * n) / compared).toFixed(1)}%`;
    console.log(
      [
        `    ${outcomes.length} specs (seeds ${FIRST_SEED}..${FIRST_SEED + SEEDS - 1}), ${count((o) => !o.mutations.length)} unmutated, in ${seconds.toFixed(1)}s (vmcp validate, ${CONCURRENCY} at a time)`,
        `    ${unrendered} refused by the renderer (reference problems), ${compared} compared with vmcp:`,
        `    both accept ${bothOk}, both refuse ${bothRefuse}: agreement ${pct(bothOk + bothRefuse)}`,
        `    we accept, vmcp refuses ${dangerous} (${pct(dangerous)}); we refuse, vmcp accepts ${stricter} (${pct(stricter)}), for:`,
        ...DELIBERATE.map(
          ([why, re]) =>
            `      ${why}: ${count((o) => !o.ours.ok && !!o.vmcp?.ok && o.ours.fieldErrors.some((e) => re.test(e.message)))}`,
        ),
      ].join("\n"),
    );
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const show = (o: Outcome) =>
    `seed ${o.index} (${o.mutations.join(" + ") || "unmutated"})\n  vmcp: ${!o.vmcp ? "not rendered" : o.vmcp.ok ? "valid" : o.vmcp.problems.join("\n        ")}\n  ours: ${o.ours.ok ? "valid" : o.ours.errors.join("\n        ")}`;

  it("ran vmcp validate on every spec, mutated and not", () => {
    assert.equal(outcomes.length, SEEDS);
    assert.ok(outcomes.some((o) => !o.mutations.length) && outcomes.some((o) => o.mutations.length));
    assert.ok(
      outcomes.some((o) => o.vmcp?.ok === false) && outcomes.some((o) => o.vmcp?.ok),
      "both verdicts occur",
    );
    // A spec the renderer refuses must be one validation refuses too (never a silent skip).
    assert.deepEqual(outcomes.filter((o) => !o.vmcp && o.ours.ok).map(show), []);
  });

  it("the generator's valid specs are valid for vmcp too", () => {
    const bad = outcomes.filter((o) => !o.mutations.length && (!o.vmcp?.ok || !o.ours.ok));
    assert.deepEqual(bad.map(show), []);
  });

  it("every spec we accept passes vmcp validate (100% in the dangerous direction)", () => {
    const bad = outcomes.filter((o) => o.ours.ok && !o.vmcp?.ok);
    assert.deepEqual(bad.slice(0, 10).map(show), [], `${bad.length} specs`);
  });

  it("every problem vmcp finds is one of our errors, at the field vmcp names", () => {
    const misses: string[] = [];
    for (const o of outcomes) {
      if (!o.vmcp || o.vmcp.ok || o.ours.ok) continue;
      const ours = o.ours.fieldErrors;
      for (const problem of splitProblems(o.vmcp.problems)) {
        const path = specPathOf(problem, o.spec);
        if (!path) misses.push(`${show(o)}\n  no spec path known for: ${problem}`);
        else if (!ours.some((e) => under(e.path, path)))
          misses.push(`${show(o)}\n  nothing at ${path} for: ${problem}`);
      }
    }
    assert.deepEqual(misses.slice(0, 10), [], `${misses.length} problems`);
  });

  it("where we refuse what vmcp accepts, ToolHive's operator refuses it too or the error says how it fails at runtime", () => {
    const bad = outcomes.filter(
      (o) =>
        !o.ours.ok &&
        !!o.vmcp?.ok &&
        o.ours.fieldErrors.some((e) => !DELIBERATE.some(([, re]) => re.test(e.message))),
    );
    assert.deepEqual(bad.slice(0, 10).map(show), [], `${bad.length} specs`);
  });
});
