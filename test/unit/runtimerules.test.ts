// The rules ToolHive's vmcp 0.44.0 applies to config.yaml, checked on the spec (each
// error names the field and says why vmcp would refuse it), and the things vmcp accepts
// that we must accept too. test/integration/vmcp.differential.test.ts checks the same
// against the real binary on generated specs.
import assert from "node:assert/strict";
import { formatFieldErrors, validateVirtualMCPServer, type FieldError } from "../../api/index.js";
import { canonicalHeaderKey } from "../../api/runtimerules.js";
import { parseManifests } from "../../program/manifests.js";

const vmcp = (spec: Record<string, unknown>) => ({
  apiVersion: "toolhive.stacklok.dev/v1beta1",
  kind: "VirtualMCPServer",
  metadata: { name: "v", namespace: "ns" },
  spec: { incomingAuth: { type: "anonymous" }, groupRef: { name: "g" }, ...spec },
});
const withConfig = (config: Record<string, unknown>) => vmcp({ config });

function errorsOf(obj: unknown): FieldError[] {
  const r = validateVirtualMCPServer(obj);
  assert.equal(r.ok, false, "expected validation to fail");
  return r.ok ? [] : r.errors;
}

/** The one error at `path`; its message must say that vmcp refuses the config, and why. */
function refusedAt(obj: unknown, path: string, why: RegExp): FieldError {
  const errors = errorsOf(obj);
  const e = errors.find((x) => x.path === path);
  assert.ok(e, `no error at ${path}; got:\n${formatFieldErrors(errors)}`);
  assert.match(e.message, /^vmcp refuses to start: /);
  assert.match(e.message, why);
  return e;
}

function accepted(obj: unknown): void {
  const r = validateVirtualMCPServer(obj);
  assert.ok(r.ok, r.ok ? "" : formatFieldErrors(r.errors));
}

const FH = "spec.config.operational.failureHandling";
const failureHandling = (fh: Record<string, unknown>) => withConfig({ operational: { failureHandling: fh } });

describe("vmcp's runtime rules on the spec", () => {
  describe("health checks", () => {
    it("healthCheckTimeout must be below healthCheckInterval, counting the 10s default", () => {
      refusedAt(
        failureHandling({ healthCheckInterval: "10s", healthCheckTimeout: "10s" }),
        `${FH}.healthCheckTimeout`,
        /healthCheckTimeout \(10s\) must be less than healthCheckInterval \(10s\)/,
      );
      const e = refusedAt(failureHandling({ healthCheckInterval: "5s" }), `${FH}.healthCheckTimeout`, /10s/);
      assert.equal(e.found, '"10s"');
      refusedAt(
        failureHandling({ healthCheckInterval: "1m", healthCheckTimeout: "1m30s" }),
        `${FH}.healthCheckTimeout`,
        /less than/,
      );
    });

    it("accepts a shorter timeout, a zero timeout (none) and a zero interval (vmcp's 30s default)", () => {
      accepted(failureHandling({ healthCheckInterval: "10s", healthCheckTimeout: "9s" }));
      accepted(failureHandling({ healthCheckInterval: "5s", healthCheckTimeout: "0s" }));
      accepted(failureHandling({ healthCheckInterval: "0s", healthCheckTimeout: "20s" }));
      refusedAt(
        failureHandling({ healthCheckInterval: "0s", healthCheckTimeout: "30s" }),
        `${FH}.healthCheckTimeout`,
        /less than/,
      );
    });

    it("unhealthyThreshold may be 0 (vmcp fills in 3) but not negative", () => {
      accepted(failureHandling({ unhealthyThreshold: 0 }));
      refusedAt(failureHandling({ unhealthyThreshold: -1 }), `${FH}.unhealthyThreshold`, /positive/);
    });

    it("a per-workload timeout must be positive", () => {
      refusedAt(
        withConfig({ operational: { timeouts: { perWorkload: { alpha: "0s", beta: "5s" } } } }),
        "spec.config.operational.timeouts.perWorkload.alpha",
        /perWorkload\.alpha must be positive/,
      );
      accepted(withConfig({ operational: { timeouts: { default: "0s" } } })); // vmcp's default applies
    });
  });

  describe("aggregation", () => {
    const AGG = "spec.config.aggregation";
    const agg = (a: Record<string, unknown>) => withConfig({ aggregation: a });

    it("deny visibility with the priority strategy: every priorityOrder workload needs a tools entry", () => {
      const e = refusedAt(
        agg({
          conflictResolution: "priority",
          defaultToolVisibility: "deny",
          conflictResolutionConfig: { priorityOrder: ["a", "b"] },
          tools: [{ workload: "a" }],
        }),
        `${AGG}.conflictResolutionConfig.priorityOrder[1]`,
        /priorityOrder entry "b" has no tools entry; it could win a name conflict and then be withheld/,
      );
      assert.equal(e.found, '"b"');
      accepted(
        agg({
          conflictResolution: "priority",
          defaultToolVisibility: "allow",
          conflictResolutionConfig: { priorityOrder: ["a", "b"] },
          tools: [{ workload: "a" }],
        }),
      );
    });

    it("prefix needs a non-empty prefixFormat", () => {
      refusedAt(
        agg({ conflictResolution: "prefix", conflictResolutionConfig: { prefixFormat: "" } }),
        `${AGG}.conflictResolutionConfig.prefixFormat`,
        /prefixFormat is required/,
      );
    });

    it("one tools entry per workload; an override renames or describes", () => {
      refusedAt(
        agg({ tools: [{ workload: "a" }, { workload: "b" }, { workload: "a" }] }),
        `${AGG}.tools[2].workload`,
        /duplicate workload configuration: a/,
      );
      refusedAt(
        agg({ tools: [{ workload: "a", overrides: { x: { annotations: { readOnlyHint: true } } } }] }),
        `${AGG}.tools[0].overrides.x`,
        /at least one of name or description/,
      );
      accepted(agg({ tools: [{ workload: "a", overrides: { x: { description: "d" } } }] }));
    });
  });

  it("spec.config fields vmcp does not know (the renderer would write them to its strict config.yaml)", () => {
    const e = refusedAt(
      withConfig({ metadata: { a: "b" }, rateLimit: { rps: 1 } }),
      "spec.config.rateLimit",
      /does not know the field rateLimit/,
    );
    assert.match(e.expected, /aggregation/);
    accepted(withConfig({ metadata: { a: "b" }, rateLimiting: { global: {} } }));
  });

  describe("passthrough headers", () => {
    it("refuses restricted headers in any spelling, invalid names and empty ones", () => {
      for (const [header, why] of [
        ["authorization", /"Authorization" is a restricted header/],
        ["COOKIE", /"Cookie" is a restricted header/],
        ["x-forwarded-for", /"X-Forwarded-For" is a restricted header/],
        ["Bad Header", /not a valid HTTP header name/],
        ["", /must not be empty/],
      ] as const) {
        refusedAt(vmcp({ passthroughHeaders: ["X-Request-Id", header] }), "spec.passthroughHeaders[1]", why);
      }
      refusedAt(
        withConfig({ passthroughHeaders: ["Host"] }),
        "spec.config.passthroughHeaders[0]",
        /restricted/,
      );
      accepted(vmcp({ passthroughHeaders: ["X-Request-Id", "x-tenant"] }));
    });

    it("canonicalises header names as Go does", () => {
      assert.equal(canonicalHeaderKey("x-real-ip"), "X-Real-Ip");
      assert.equal(canonicalHeaderKey("bad header"), "bad header");
    });
  });

  describe("composite tools", () => {
    const CT = "spec.config.compositeTools[0]";
    const tool = (t: Record<string, unknown>) =>
      withConfig({
        compositeTools: [{ name: "t", description: "d", steps: [{ id: "a", tool: "w.a" }], ...t }],
      });

    it("needs a name, a description and object-typed parameters", () => {
      refusedAt(tool({ description: undefined }), `${CT}.description`, /needs a description/);
      refusedAt(tool({ name: "" }), `${CT}.name`, /needs a name/);
      refusedAt(tool({ parameters: { type: "string" } }), `${CT}.parameters.type`, /type object/);
      refusedAt(
        tool({ parameters: { type: "object", properties: { n: { type: "int" } } } }),
        `${CT}.parameters.properties.n.type`,
        /invalid JSON Schema keyword type/,
      );
      accepted(tool({ parameters: {} }));
    });

    it("a step that may be skipped gives defaults for the output fields later templates read", () => {
      const steps = (first: Record<string, unknown>) => [
        { id: "a", tool: "w.a", ...first },
        { id: "b", tool: "w.b", arguments: { x: "{{.steps.a.output.id}}" }, dependsOn: ["a"] },
      ];
      refusedAt(
        tool({ steps: steps({ condition: "{{.params.go}}" }) }),
        `${CT}.steps[0].defaultResults`,
        /step "a" may be skipped and field "id" is read by step b, so defaultResults\.id is required/,
      );
      refusedAt(
        tool({ steps: steps({ onError: { action: "continue" }, defaultResults: { other: 1 } }) }),
        `${CT}.steps[0].defaultResults`,
        /field "id"/,
      );
      refusedAt(
        tool({
          steps: [{ id: "a", tool: "w.a", condition: "true" }],
          output: { properties: { r: { type: "string", value: "{{.steps.a.output.name}}" } } },
        }),
        `${CT}.steps[0].defaultResults`,
        /field "name" is read by the output/,
      );
      accepted(tool({ steps: steps({ condition: "true", defaultResults: { id: "" } }) }));
      accepted(tool({ steps: steps({ onError: { action: "retry", retryCount: 2 } }) }));
    });

    it("forEach: no tool of its own, a tool inner step, limits and itemVar", () => {
      const forEach = (extra: Record<string, unknown>) =>
        tool({
          steps: [
            {
              id: "each",
              type: "forEach",
              collection: "{{json .params.items}}",
              step: { tool: "w.get" },
              ...extra,
            },
          ],
        });
      const at = `${CT}.steps[0]`;
      refusedAt(forEach({ tool: "w.x" }), `${at}.tool`, /must not have 'tool'/);
      refusedAt(forEach({ step: { type: "elicitation", tool: "w.get" } }), `${at}.step.type`, /tool steps/);
      refusedAt(forEach({ maxParallel: 51 }), `${at}.maxParallel`, /between 0 and 50/);
      refusedAt(forEach({ maxIterations: 1001 }), `${at}.maxIterations`, /between 0 and 1000/);
      refusedAt(forEach({ itemVar: "index" }), `${at}.itemVar`, /reserved/);
      refusedAt(forEach({ itemVar: "my-item" }), `${at}.itemVar`, /Go identifier/);
      accepted(forEach({ itemVar: "item", maxParallel: 50, maxIterations: 1000 }));
    });

    it("an elicitation schema must be a JSON Schema", () => {
      refusedAt(
        tool({
          steps: [
            { id: "ask", type: "elicitation", message: "ok?", schema: { type: "object", properties: "x" } },
          ],
        }),
        `${CT}.steps[0].schema.properties`,
        /invalid JSON Schema keyword properties/,
      );
    });
  });
});

describe("never stricter than vmcp", () => {
  it("accepts conflictResolution manual without overrides", () => {
    accepted(withConfig({ aggregation: { conflictResolution: "manual", tools: [{ workload: "a" }] } }));
  });

  it("accepts template fields the workflow context lacks, e.g. {{.timestamp}}", () => {
    accepted(
      withConfig({
        compositeTools: [
          {
            name: "t",
            description: "d",
            steps: [{ id: "a", tool: "w.a", arguments: { at: "{{.timestamp}}", v: "{{$x := 1}}{{$x}}" } }],
          },
        ],
      }),
    );
  });

  it("a manifest's status never fails a render (the API server ignores it on create); a valid one is kept", () => {
    const loaded = parseManifests(
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: v, namespace: ns}
spec: {groupRef: {name: g}, incomingAuth: {type: anonymous}}
status: {phase: Running, backendCount: "many", conditions: [{type: Ready}]}
`,
      "status.yaml",
    );
    assert.deepEqual(loaded.errors, []);
    assert.equal(loaded.objects.length, 1);
    assert.equal((loaded.objects[0] as { status?: unknown }).status, undefined);
    const kept = parseManifests(
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: e, namespace: ns}
spec: {remoteUrl: "https://e.example.com/mcp", transport: streamable-http, groupRef: {name: g}}
status: {phase: Valid}
`,
      "kept.yaml",
    );
    assert.deepEqual(kept.errors, []);
    assert.deepEqual((kept.objects[0] as { status?: unknown }).status, { phase: "Valid" });
  });
});
