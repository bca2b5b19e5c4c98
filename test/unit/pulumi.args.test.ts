// The args of `vmcp-operator/pulumi`'s VirtualMCPServer: validated with the CRDs' schemas
// before anything is registered, every problem naming its field, and nothing dropped.
import assert from "node:assert/strict";
import { build } from "../../program/desired.js";
import { componentArgsOf, InvalidArgsError, type VirtualMCPServerArgs } from "../../program/pulumi.js";

const entry = (name: string, remoteUrl: unknown) => ({
  kind: "MCPServerEntry" as const,
  metadata: { name },
  spec: {
    groupRef: { name: "tools" },
    remoteUrl: remoteUrl as string,
    transport: "streamable-http" as const,
  },
});

const valid = (): VirtualMCPServerArgs => ({
  namespace: "team-a",
  spec: { groupRef: { name: "tools" }, incomingAuth: { type: "anonymous" } },
  objects: [entry("osv", "http://osv.team-a.svc.cluster.local:8080/mcp")],
});

/** The problems componentArgsOf throws for `args`. */
function problemsOf(args: VirtualMCPServerArgs): string[] {
  try {
    componentArgsOf("tools", args);
  } catch (err) {
    assert.ok(err instanceof InvalidArgsError, String(err));
    return err.problems;
  }
  assert.fail("the args were accepted");
}

describe("vmcp-operator/pulumi: component args", () => {
  it("builds the objects a manifest with the same spec and backend gives, the group added", () => {
    const args = componentArgsOf("tools", valid());
    assert.equal(args.inputs.vmcp.metadata.name, "tools");
    assert.equal(args.inputs.vmcp.metadata.namespace, "team-a");
    assert.equal(args.inputs.group?.metadata.name, "tools", "the MCPGroup of spec.groupRef is added");
    assert.deepEqual(
      args.inputs.members.map((m) => `${m.kind}/${m.object.metadata.name}`),
      ["MCPServerEntry/osv"],
    );
    const b = build(args.inputs, args.settings, args.discovery);
    assert.ok(b.desired, JSON.stringify(b.problems));
    assert.equal(b.desired.url, "http://vmcp-tools.team-a.svc.cluster.local:4483");
    const cm = b.desired.objects.find((o) => o.kind === "ConfigMap") as
      { data?: Record<string, string> } | undefined;
    assert.match(cm?.data?.["config.yaml"] ?? "", /osv/);
    // No VirtualMCPServer object in any cluster owns what a user's program applies.
    assert.equal(b.desired.objects[0]?.metadata.ownerReferences, undefined);
    assert.equal(args.legacyAliases, false);
    assert.equal(args.deleteHmacSecret, true);
  });

  it("names the spec field that is wrong", () => {
    const args = valid();
    args.spec = { ...args.spec, incomingAuth: { type: "bogus" as never } };
    const problems = problemsOf(args);
    assert.ok(
      problems.some((p) => p.startsWith("args.spec.incomingAuth.type: expected")),
      problems.join("\n"),
    );
  });

  it("names the object and the field of a bad backend, and reports every problem at once", () => {
    const args = valid();
    args.objects = [entry("osv", 42), entry("docs", "http://docs/mcp"), { kind: "Secret" } as never];
    const problems = problemsOf(args);
    assert.ok(
      problems.some((p) => p.startsWith("args.objects[0] (MCPServerEntry osv) spec.remoteUrl: expected")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some(
        (p) => p.startsWith("args.objects[2].kind: expected one of MCPGroup") && p.endsWith('found "Secret"'),
      ),
      problems.join("\n"),
    );
    assert.equal(problems.length, 2, problems.join("\n"));
  });

  it("refuses a field the schema does not know instead of dropping it", () => {
    const args = valid();
    args.spec = { ...args.spec, incomingAuht: {} } as never;
    const problems = problemsOf(args);
    assert.ok(
      problems.some((p) => p.startsWith('args.unknown field "spec.incomingAuht"')),
      problems.join("\n"),
    );
  });

  it("refuses an object of another namespace", () => {
    const args = valid();
    const other = entry("osv", "http://osv/mcp");
    args.objects = [{ ...other, metadata: { name: "osv", namespace: "team-b" } }];
    assert.deepEqual(problemsOf(args), [
      'args.objects[0].metadata.namespace: expected "team-a" (args.namespace), found "team-b"',
    ]);
  });
});
