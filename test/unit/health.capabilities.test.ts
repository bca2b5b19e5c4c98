import assert from "node:assert/strict";
import { aggregateCapabilities, type BackendCapabilities } from "../../health/capabilities.js";

const github: BackendCapabilities = {
  name: "github",
  toolNames: ["search", "create_issue", "fetch"],
  resources: 2,
  prompts: 1,
};
const web: BackendCapabilities = { name: "web", toolNames: ["fetch", "search"], resources: 0, prompts: 3 };
const docs: BackendCapabilities = { name: "docs", toolNames: ["fetch", "read"], resources: 5, prompts: 0 };

const names = (r: ReturnType<typeof aggregateCapabilities>): string[] => r.tools.map((t) => t.name);

describe("health capabilities: what a client of the vMCP sees", () => {
  it("prefix (default): every tool prefixed {workload}_, resources and prompts summed", () => {
    const r = aggregateCapabilities([github, web], undefined);
    assert.deepEqual(names(r), [
      "github_create_issue",
      "github_fetch",
      "github_search",
      "web_fetch",
      "web_search",
    ]);
    assert.deepEqual(r.counts, { tools: 5, resources: 2, prompts: 4 });
  });

  it("prefix with a custom prefixFormat", () => {
    const r = aggregateCapabilities([web], {
      conflictResolution: "prefix",
      conflictResolutionConfig: { prefixFormat: "{workload}." },
    });
    assert.deepEqual(names(r), ["web.fetch", "web.search"]);
  });

  it("priority: the first listed workload wins a conflict, the others' copies are dropped", () => {
    const r = aggregateCapabilities([github, web, docs], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["web", "github", "docs"] },
    });
    assert.deepEqual(names(r), ["create_issue", "fetch", "read", "search"]);
    assert.equal(r.tools.find((t) => t.name === "fetch")?.backend, "web");
    assert.equal(r.tools.find((t) => t.name === "search")?.backend, "web");
    assert.deepEqual(
      r.dropped.map((d) => `${d.backend}:${d.name}`),
      ["docs:fetch", "github:fetch", "github:search"],
    );
    assert.equal(r.counts.tools, 4);
  });

  it("priority: a conflict between workloads outside priorityOrder falls back to prefixes", () => {
    const r = aggregateCapabilities([github, web, docs], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["github"] },
    });
    // fetch: github wins; search: github wins; read: only docs
    assert.deepEqual(names(r), ["create_issue", "fetch", "read", "search"]);
    const r2 = aggregateCapabilities([web, docs], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["github"] },
    });
    assert.deepEqual(names(r2), ["docs_fetch", "read", "search", "web_fetch"]);
  });

  it("manual: conflicts must be renamed by overrides, else nothing is served", () => {
    const bad = aggregateCapabilities([github, web], { conflictResolution: "manual" });
    assert.deepEqual(bad.unresolved, [
      { name: "fetch", backends: ["github", "web"] },
      { name: "search", backends: ["github", "web"] },
    ]);
    assert.equal(bad.counts.tools, 0);
    const good = aggregateCapabilities([github, web], {
      conflictResolution: "manual",
      tools: [
        { workload: "github", overrides: { fetch: { name: "gh_fetch" }, search: { name: "gh_search" } } },
      ],
    });
    assert.deepEqual(good.unresolved, []);
    assert.deepEqual(names(good), ["create_issue", "fetch", "gh_fetch", "gh_search", "search"]);
  });

  it("overrides rename before prefixing", () => {
    const r = aggregateCapabilities([web], {
      tools: [{ workload: "web", overrides: { fetch: { name: "get" } } }],
    });
    assert.deepEqual(names(r), ["web_get", "web_search"]);
    assert.equal(r.tools[0]?.originalName, "fetch");
  });

  it("filter is an allow-list of tool names after the workload's overrides (as vmcp 0.44.0 runs it)", () => {
    const r = aggregateCapabilities([github, web], {
      tools: [
        { workload: "github", filter: ["search"] },
        { workload: "web", filter: ["get"], overrides: { fetch: { name: "get" } } },
      ],
    });
    assert.deepEqual(names(r), ["github_search", "web_get"]);
    assert.equal(r.hidden, 3, "filtered tools stay routable, only hidden");
    // the original name of a renamed tool does not keep it (seen through a real vMCP pod:
    // test/integration/pods.examples.test.ts, examples/tool-filters before its fix)
    const original = aggregateCapabilities([web], {
      tools: [{ workload: "web", filter: ["fetch", "search"], overrides: { fetch: { name: "get" } } }],
    });
    assert.deepEqual(names(original), ["web_search"]);
  });

  it("excludeAll hides one workload; excludeAllTools hides every backend tool but not composite tools", () => {
    const one = aggregateCapabilities([github, web], { tools: [{ workload: "github", excludeAll: true }] });
    assert.deepEqual(names(one), ["web_fetch", "web_search"]);
    const all = aggregateCapabilities([github, web], { excludeAllTools: true }, ["triage"]);
    assert.deepEqual(names(all), ["triage"]);
    assert.deepEqual(all.counts, { tools: 1, resources: 2, prompts: 4 });
  });

  it("defaultToolVisibility deny: only workloads with a filter advertise", () => {
    const r = aggregateCapabilities([github, web], {
      defaultToolVisibility: "deny",
      tools: [{ workload: "web", filter: ["fetch"] }],
    });
    assert.deepEqual(names(r), ["web_fetch"]);
  });

  it("priority with an excluded winner: the loser stays dropped, nothing is advertised for the name", () => {
    const r = aggregateCapabilities([github, web], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["web", "github"] },
      tools: [{ workload: "web", excludeAll: true }],
    });
    assert.deepEqual(names(r), ["create_issue"]);
  });

  it("is deterministic: input order does not matter", () => {
    const a = aggregateCapabilities([github, web, docs], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["docs"] },
    });
    const b = aggregateCapabilities([docs, web, github], {
      conflictResolution: "priority",
      conflictResolutionConfig: { priorityOrder: ["docs"] },
    });
    assert.deepEqual(a, b);
  });
});
