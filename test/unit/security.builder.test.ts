// What the builder refuses or warns about so that credentials are not shared or exposed
// by accident: two auth configs behind one env var, and an exposed anonymous Service.
import assert from "node:assert/strict";
import type { AnyObject } from "../../program/inputs.js";
import { buildFor, example } from "./helpers.js";

type Obj = AnyObject & { metadata: { name: string }; spec: Record<string, unknown> };

describe("builder: credentials that must not be shared or exposed", () => {
  it("refuses two MCPExternalAuthConfigs whose names map to one env var (search-api-key / search.api.key)", () => {
    const objects = example("external-auth") as Obj[];
    const original = objects.find(
      (o) => o.kind === "MCPExternalAuthConfig" && o.metadata.name === "search-api-key",
    )!;
    const twin = structuredClone(original);
    twin.metadata.name = "search.api.key";
    (twin.spec["headerInjection"] as { valueSecretRef: { name: string } }).valueSecretRef.name =
      "another-secret";
    const jira = objects.find((o) => o.kind === "MCPServerEntry" && o.metadata.name === "jira")!;
    jira.spec["externalAuthConfigRef"] = { name: "search.api.key" };
    const b = buildFor([...objects, twin], "saas-gateway");
    const clash = b.auth.problems.find((p) => p.reason === "AuthEnvClash");
    assert.ok(clash, JSON.stringify(b.auth.problems));
    assert.match(clash.message, /env var HEADER_INJECTION_SEARCH_API_KEY|env var [A-Z_]+, already taken/);
    assert.ok(
      b.auth.excluded.has(clash.scope),
      "the second backend is left out, not given the first credential",
    );
  });

  it("warns about a LoadBalancer/NodePort Service with anonymous incoming auth in front of credentials", () => {
    const exposed = (example("external-auth") as Obj[]).map((o) =>
      o.kind === "VirtualMCPServer"
        ? {
            ...o,
            spec: { ...o.spec, serviceType: "LoadBalancer" as const, incomingAuth: { type: "anonymous" } },
          }
        : o,
    );
    const b = buildFor(exposed as AnyObject[], "saas-gateway");
    assert.ok(
      b.warnings.some((w) =>
        /spec\.serviceType LoadBalancer with spec\.incomingAuth\.type anonymous: anyone/.test(w),
      ),
      JSON.stringify(b.warnings),
    );
    assert.ok(
      !buildFor(example("external-auth"), "saas-gateway").warnings.some((w) => /serviceType/.test(w)),
    );
  });

  it("leaves out a backend whose credential needs the client's token when incoming auth is anonymous", () => {
    const anonymous = (example("external-auth") as Obj[]).map((o) =>
      o.kind === "VirtualMCPServer" ? { ...o, spec: { ...o.spec, incomingAuth: { type: "anonymous" } } } : o,
    );
    const b = buildFor(anonymous as AnyObject[], "saas-gateway");
    const problem = b.auth.problems.find((p) => p.scope === "jira");
    assert.equal(problem?.reason, "AuthNeedsClientToken", JSON.stringify(b.auth.problems));
    assert.match(problem.message, /jira-token-exchange \(tokenExchange\) exchanges the client's token/);
    assert.match(problem.message, /spec\.incomingAuth\.type is anonymous/);
    assert.ok(b.auth.excluded.has("jira"), "left out of the vMCP's config");
    assert.ok(!b.auth.excluded.has("search"), "header injection needs no client token");
    // the example as written (OIDC incoming auth) keeps it
    const oidc = buildFor(example("external-auth"), "saas-gateway");
    assert.ok(!oidc.auth.excluded.has("jira"), JSON.stringify(oidc.auth.problems));
  });
});
