import assert from "node:assert/strict";
import {
  checkGoTemplate,
  checkManualConflicts,
  formatFieldErrors,
  parseObject,
  validateVirtualMCPServer,
  virtualMCPServerSchema,
  type FieldError,
} from "../../api/index.js";

function vmcp(spec: Record<string, unknown>): unknown {
  return {
    apiVersion: "toolhive.stacklok.dev/v1beta1",
    kind: "VirtualMCPServer",
    metadata: { name: "v", namespace: "ns" },
    spec: { incomingAuth: { type: "anonymous" }, groupRef: { name: "g" }, ...spec },
  };
}

function errorsOf(obj: unknown): FieldError[] {
  const r = validateVirtualMCPServer(obj);
  assert.equal(r.ok, false, "expected validation to fail");
  return r.ok ? [] : r.errors;
}

function errorAt(errors: FieldError[], path: string): FieldError {
  const e = errors.find((x) => x.path === path);
  assert.ok(e, `no error at ${path}; got:\n${formatFieldErrors(errors)}`);
  return e;
}

const tool = (steps: unknown[], extra: Record<string, unknown> = {}) => ({
  name: "t",
  description: "d",
  steps,
  ...extra,
});
const withTools = (...tools: unknown[]) => vmcp({ config: { compositeTools: tools } });

describe("validateVirtualMCPServer", () => {
  it("accepts a minimal ToolHive manifest and applies ToolHive's defaults", () => {
    const r = validateVirtualMCPServer(vmcp({ config: { aggregation: {} } }));
    assert.ok(r.ok, r.ok ? "" : formatFieldErrors(r.errors));
    assert.equal(r.value.spec.serviceType, "ClusterIP");
    assert.equal(r.value.spec.config?.aggregation?.conflictResolution, "prefix");
  });

  it("keeps unknown config fields in the object, but refuses them: vmcp 0.44.0 would not start", () => {
    const obj = vmcp({ config: { unknownFutureField: { a: 1 } } });
    const parsed = virtualMCPServerSchema.parse(obj);
    assert.deepEqual(parsed.spec.config?.["unknownFutureField"], { a: 1 }, "unknown config fields are kept");
    assert.match(
      errorAt(errorsOf(obj), "spec.config.unknownFutureField").message,
      /vmcp refuses to start: .*does not know the field unknownFutureField/,
    );
  });

  it("reports schema errors with path, expected and found", () => {
    const errors = errorsOf(
      vmcp({ config: { aggregation: { conflictResolution: "first" } }, groupRef: undefined }),
    );
    const cr = errorAt(errors, "spec.config.aggregation.conflictResolution");
    assert.equal(cr.expected, '"prefix", "priority", "manual"'.replace(/^/, "one of "));
    assert.equal(cr.found, '"first"');
    assert.equal(errorAt(errors, "spec.groupRef").found, "nothing");
    assert.match(
      formatFieldErrors(errors),
      /^spec\.config\.aggregation\.conflictResolution: expected one of "prefix", "priority", "manual", found "first"$/m,
    );
  });

  it("uses [i] for list indices", () => {
    const errors = errorsOf(
      vmcp({ config: { aggregation: { tools: [{ workload: "a" }, { filter: ["x"] }] } } }),
    );
    const e = errorAt(errors, "spec.config.aggregation.tools[1].workload");
    assert.equal(e.found, "nothing");
    assert.match(e.expected, /string/);
  });

  it("priority needs a non-empty priorityOrder", () => {
    for (const crc of [undefined, { priorityOrder: [] }]) {
      const errors = errorsOf(
        vmcp({ config: { aggregation: { conflictResolution: "priority", conflictResolutionConfig: crc } } }),
      );
      const e = errorAt(errors, "spec.config.aggregation.conflictResolutionConfig.priorityOrder");
      assert.match(e.expected, /non-empty list/);
      assert.equal(e.found, crc ? "[]" : "nothing");
    }
    assert.ok(
      validateVirtualMCPServer(
        vmcp({
          config: {
            aggregation: {
              conflictResolution: "priority",
              conflictResolutionConfig: { priorityOrder: ["a"] },
            },
          },
        }),
      ).ok,
    );
  });

  it("manual needs a tools entry (as vmcp does), not overrides (clashes are found at runtime)", () => {
    const manual = (agg: Record<string, unknown>) =>
      vmcp({ config: { aggregation: { conflictResolution: "manual", ...agg } } });
    const r = validateVirtualMCPServer(manual({ tools: [{ workload: "a" }] }));
    assert.ok(r.ok, r.ok ? "" : formatFieldErrors(r.errors));
    const e = errorAt(errorsOf(manual({})), "spec.config.aggregation.tools");
    assert.match(e.message, /vmcp refuses to start: .*tool overrides are required for manual strategy/);
  });

  it("externalAuthConfigRef backends need a ref name", () => {
    const errors = errorsOf(
      vmcp({
        outgoingAuth: {
          backends: { github: { type: "externalAuthConfigRef" } },
          default: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "" } },
        },
      }),
    );
    const e = errorAt(errors, "spec.outgoingAuth.backends.github.externalAuthConfigRef.name");
    assert.equal(e.found, "nothing");
    assert.match(e.expected, /MCPExternalAuthConfig/);
    assert.equal(errorAt(errors, "spec.outgoingAuth.default.externalAuthConfigRef.name").found, '""');
  });

  it("aggregation.tools[i].workload must be non-empty", () => {
    const e = errorAt(
      errorsOf(vmcp({ config: { aggregation: { tools: [{ workload: "" }] } } })),
      "spec.config.aggregation.tools[0].workload",
    );
    assert.equal(e.found, '""');
  });

  it("composite tool names are unique", () => {
    const step = [{ id: "a", tool: "w.x" }];
    const e = errorAt(errorsOf(withTools(tool(step), tool(step))), "spec.config.compositeTools[1].name");
    assert.equal(e.found, '"t"');
    assert.match(e.expected, /unique/);
  });

  it("step ids are unique", () => {
    const e = errorAt(
      errorsOf(
        withTools(
          tool([
            { id: "a", tool: "w.x" },
            { id: "a", tool: "w.y" },
          ]),
        ),
      ),
      "spec.config.compositeTools[0].steps[1].id",
    );
    assert.equal(e.found, '"a"');
  });

  it("dependsOn targets exist", () => {
    const e = errorAt(
      errorsOf(withTools(tool([{ id: "a", tool: "w.x", dependsOn: ["ghost"] }]))),
      "spec.config.compositeTools[0].steps[0].dependsOn[0]",
    );
    assert.equal(e.found, '"ghost"');
    assert.match(e.expected, /another step \(a\)/);
  });

  it("reports a dependency cycle with its path", () => {
    const steps = [
      { id: "a", tool: "w.x" },
      { id: "b", tool: "w.x", dependsOn: ["a", "c"] },
      { id: "c", tool: "w.x", dependsOn: ["b"] },
    ];
    const e = errorAt(errorsOf(withTools(tool(steps))), "spec.config.compositeTools[0].steps[1].dependsOn");
    assert.equal(e.found, "cycle b -> c -> b");
    assert.match(e.expected, /without a dependency cycle/);
  });

  it("step tool must be a workload.tool reference", () => {
    const errors = errorsOf(
      withTools(tool([{ id: "a", tool: "-github" }, { id: "b" }, { id: "c", tool: "github." }])),
    );
    assert.equal(errorAt(errors, "spec.config.compositeTools[0].steps[0].tool").found, '"-github"');
    // vmcp's grammar allows a trailing dot; so do we.
    assert.ok(!errors.some((e) => e.path.startsWith("spec.config.compositeTools[0].steps[2]")));
    assert.equal(errorAt(errors, "spec.config.compositeTools[0].steps[1].tool").found, "nothing");
    assert.match(errorAt(errors, "spec.config.compositeTools[0].steps[0].tool").expected, /workload\.tool/);
  });

  it("templates in arguments, conditions and outputs must parse", () => {
    const steps = [
      {
        id: "fetch",
        tool: "w.fetch",
        arguments: { url: "{{ .params.url", nested: { list: ["{{ if .params.x }}y"] } },
      },
      {
        id: "post",
        tool: "w.post",
        dependsOn: ["fetch"],
        condition: "{{ nosuch .params.a }}",
        arguments: { body: "{{ .steps.missing.output.id }}" },
      },
    ];
    const errors = errorsOf(
      withTools(tool(steps, { output: { properties: { id: { type: "string", value: "{{ .bogus }}" } } } })),
    );
    const p = "spec.config.compositeTools[0]";
    assert.match(errorAt(errors, `${p}.steps[0].arguments.url`).message, /unclosed action/);
    assert.equal(errorAt(errors, `${p}.steps[0].arguments.url`).found, '"{{ .params.url"');
    // vmcp validate does not parse nested arguments; the error says what happens instead.
    assert.match(
      errorAt(errors, `${p}.steps[0].arguments.nested.list[0]`).message,
      /has no \{\{end\}\}; vmcp would fail every call of the tool/,
    );
    assert.doesNotMatch(errorAt(errors, `${p}.steps[0].arguments.url`).message, /every call/);
    assert.match(errorAt(errors, `${p}.steps[1].condition`).message, /function "nosuch" not defined/);
    assert.match(errorAt(errors, `${p}.steps[1].arguments.body`).message, /no step has id "missing"/);
    // An unknown top-level field is no error: vmcp renders it as "<no value>".
    assert.ok(!errors.some((e) => e.path.startsWith(`${p}.output`)), formatFieldErrors(errors));
  });

  it("accepts a valid workflow", () => {
    const steps = [
      {
        id: "fetch",
        tool: "github.get_issue",
        arguments: { n: "{{ .params.number }}", q: "{{ json .params | quote }}" },
      },
      {
        id: "note",
        type: "elicitation",
        message: "Continue with {{ .steps.fetch.output.title }}?",
        dependsOn: ["fetch"],
      },
      {
        id: "each",
        type: "forEach",
        collection: "{{ .steps.fetch.output.labels }}",
        step: { tool: "slack.post", arguments: { t: "{{ .forEach.item }}" } },
        dependsOn: ["note"],
      },
      {
        id: "fin",
        tool: "echo",
        condition: '{{ if eq .params.mode "x" }}true{{ else }}false{{ end }}',
        dependsOn: ["each"],
      },
    ];
    const r = validateVirtualMCPServer(withTools(tool(steps)));
    assert.ok(r.ok, r.ok ? "" : formatFieldErrors(r.errors));
  });
});

describe("parseObject", () => {
  it("validates a VirtualMCPCompositeToolDefinition with composite rules under spec", () => {
    const r = parseObject("VirtualMCPCompositeToolDefinition", {
      apiVersion: "toolhive.stacklok.dev/v1alpha1",
      kind: "VirtualMCPCompositeToolDefinition",
      metadata: { name: "wf" },
      spec: tool([{ id: "a", tool: "w.x", dependsOn: ["a"] }]),
    });
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(errorAt(r.errors, "spec.steps[0].dependsOn").found, "cycle a -> a");
  });

  it("reports schema errors for other kinds in the same shape", () => {
    const r = parseObject("MCPServerEntry", {
      apiVersion: "toolhive.stacklok.dev/v1beta1",
      kind: "MCPServerEntry",
      metadata: { name: "e" },
      spec: { remoteUrl: "ftp://x", transport: "stdio", groupRef: { name: "g" } },
    });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(errorAt(r.errors, "spec.remoteUrl").expected, "a string matching ^https?://");
      assert.equal(errorAt(r.errors, "spec.transport").found, '"stdio"');
    }
  });

  it("parses a valid MCPServer and applies defaults", () => {
    const r = parseObject("MCPServer", {
      apiVersion: "toolhive.stacklok.dev/v1beta1",
      kind: "MCPServer",
      metadata: { name: "s" },
      spec: { image: "i" },
    });
    assert.ok(r.ok);
    assert.equal(r.value.spec.proxyPort, 8080);
    assert.equal(r.value.spec.transport, "stdio");
  });
});

describe("checkManualConflicts", () => {
  const spec = (tools: unknown[]) => {
    const r = validateVirtualMCPServer(
      vmcp({ config: { aggregation: { conflictResolution: "manual", tools } } }),
    );
    assert.ok(r.ok, r.ok ? "" : formatFieldErrors(r.errors));
    return r.value.spec;
  };

  it("lists every clashing tool not renamed by an override", () => {
    const s = spec([{ workload: "a", overrides: { search: { name: "a_search" } } }]);
    const errors = checkManualConflicts(s, { a: ["search", "fetch"], b: ["search", "fetch"], c: ["fetch"] });
    assert.deepEqual(
      errors.map((e) => e.found),
      ['"fetch" from a, b, c'],
    );
    assert.match(errors[0]?.expected ?? "", /override renaming "fetch"/);
  });

  it("reports clashes created by an override and ignores filtered tools", () => {
    const s = spec([
      { workload: "a", overrides: { x: { name: "y" } }, filter: ["x"] },
      { workload: "b", filter: ["y"] },
    ]);
    assert.deepEqual(
      checkManualConflicts(s, { a: ["x", "z"], b: ["y", "z"] }).map((e) => e.found),
      ['"y" from a (x), b'],
    );
  });
});

describe("checkGoTemplate", () => {
  it("accepts plain text, comments, variables, range with rebound dot", () => {
    for (const t of [
      "no actions",
      "{{/* c */}}",
      "{{ $x := .params.a }}{{ $x }}",
      "{{ range .params.items }}{{ .name }}{{ end }}",
      "{{- .vars.v -}}",
    ]) {
      assert.equal(checkGoTemplate(t).error, undefined, t);
    }
  });

  it("accepts what Go's parser accepts: fields the context lacks ({{.timestamp}}), a trailing pipe", () => {
    assert.equal(checkGoTemplate("{{ .timestamp }}").error, undefined);
    assert.equal(checkGoTemplate("{{ .params.id | }}").error, undefined);
    assert.match(checkGoTemplate("{{ .a | | .b }}").error ?? "", /missing command before \|/);
    assert.match(
      checkGoTemplate("{{ range $i := .l }}{{ end }}{{ $i }}").error ?? "",
      /undefined variable "\$i"/,
    );
    assert.deepEqual(checkGoTemplate("{{ .param.x }}").refs, [".param.x"]);
  });

  it("rejects stray end, else outside a block and empty actions", () => {
    assert.match(checkGoTemplate("{{ end }}").error ?? "", /unexpected \{\{end\}\}/);
    assert.match(checkGoTemplate("{{ else }}").error ?? "", /unexpected \{\{else\}\}/);
    assert.match(checkGoTemplate("{{ }}").error ?? "", /missing value/);
    assert.match(checkGoTemplate("{{ if }}{{ end }}").error ?? "", /missing value for if/);
    assert.match(checkGoTemplate("{{ (json .params }}").error ?? "", /unclosed left paren/);
  });
});
