import assert from "node:assert/strict";
import { parse } from "yaml";
import type { Manifest } from "../../program/desired.js";
import { canonicalYaml } from "../../program/canonical.js";
import { buildFor, example, loadYaml, shuffled, vmcpOf } from "./helpers.js";
import type { AnyObject } from "../../program/inputs.js";

const find = (objects: Manifest[], kind: string): Manifest => {
  const o = objects.find((x) => x.kind === kind);
  assert.ok(o, `no ${kind} rendered`);
  return o;
};
type Container = {
  name: string;
  env: { name: string; value?: string; valueFrom?: unknown }[];
  image: string;
  args: string[];
};
const podSpec = (objects: Manifest[]) =>
  (
    find(objects, "Deployment").spec as {
      template: {
        spec: { containers: Container[]; serviceAccountName: string; tolerations?: unknown[] };
        metadata: { annotations: Record<string, string>; labels: Record<string, string> };
      };
    }
  ).template;

function withSpec(objects: AnyObject[], patch: (v: Record<string, unknown>) => void): AnyObject[] {
  const copy = structuredClone(objects);
  patch(vmcpOf(copy).spec as unknown as Record<string, unknown>);
  return copy;
}

describe("builder", () => {
  it("gives byte-identical objects and the same hash for the input documents in any order", () => {
    for (const name of ["basic", "external-auth", "tool-filters", "composite-tools"]) {
      const objects = example(name);
      const reference = buildFor(objects).desired;
      assert.ok(reference);
      for (let seed = 1; seed <= 5; seed++) {
        const again = buildFor(shuffled(objects, seed)).desired;
        assert.equal(again?.hash, reference.hash, `${name}: hash differs for seed ${seed}`);
        assert.equal(canonicalYaml(again?.objects), canonicalYaml(reference.objects));
      }
    }
  });

  it("names and labels objects as ToolHive's operator does", () => {
    const d = buildFor(example("basic")).desired;
    assert.ok(d);
    assert.deepEqual(
      d.objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        "ServiceAccount/engineering-tools-vmcp",
        "Role/engineering-tools-vmcp",
        "RoleBinding/engineering-tools-vmcp",
        "ConfigMap/engineering-tools-vmcp-config",
        "Deployment/engineering-tools",
        "Service/vmcp-engineering-tools",
      ],
    );
    assert.equal(d.url, "http://vmcp-engineering-tools.team-a.svc.cluster.local:4483");
    const svc = find(d.objects, "Service").spec as {
      ports: { port: number }[];
      sessionAffinity: string;
      type: string;
    };
    assert.deepEqual([svc.ports[0]?.port, svc.type, svc.sessionAffinity], [4483, "ClusterIP", "ClientIP"]);
    const c = podSpec(d.objects).spec.containers[0];
    assert.deepEqual(c?.args, [
      "serve",
      "--config=/etc/vmcp-config/config.yaml",
      "--host=0.0.0.0",
      "--port=4483",
    ]);
  });

  it("embeds every group member as a backend of config.yaml", () => {
    const d = buildFor(example("basic")).desired;
    const config = parse(d?.configYaml ?? "") as {
      backends: { name: string; transport: string }[];
      groupRef: string;
      name: string;
    };
    assert.deepEqual(
      config.backends.map((b) => b.name),
      ["fetch", "github", "osv"],
    );
    assert.equal(config.groupRef, "engineering");
    assert.equal(config.name, "engineering-tools");
  });

  it("returns the vmcp config as a structure that is exactly what config.yaml says", () => {
    for (const name of ["basic", "external-auth", "tool-filters", "composite-tools", "conflict-resolution"]) {
      const d = buildFor(example(name)).desired;
      assert.ok(d, name);
      assert.deepEqual(d.config, parse(d.configYaml), name);
      assert.equal(canonicalYaml(d.config), d.configYaml, name);
    }
    const composite = buildFor(example("composite-tools")).desired;
    assert.ok(composite?.config.compositeTools?.length, "composite tools are typed and present");
  });

  it("keeps secret values out of every object and references them through secretKeyRef env vars", () => {
    const d = buildFor(example("external-auth")).desired;
    assert.ok(d);
    const all = JSON.stringify(d.objects);
    assert.ok(!all.includes("not-a-real-secret") && !all.includes("not-a-real-key"), "a secret value leaked");
    const env = podSpec(d.objects).spec.containers[0]?.env ?? [];
    const byName = new Map(env.map((e) => [e.name, e]));
    assert.deepEqual(byName.get("TOOLHIVE_TOKEN_EXCHANGE_CLIENT_SECRET_JIRA_TOKEN_EXCHANGE")?.valueFrom, {
      secretKeyRef: { name: "jira-oauth", key: "client-secret" },
    });
    assert.deepEqual(byName.get("TOOLHIVE_HEADER_INJECTION_VALUE_SEARCH_API_KEY")?.valueFrom, {
      secretKeyRef: { name: "search-api-key", key: "api-key" },
    });
    const names = env.map((e) => e.name);
    assert.deepEqual(names, [...names].sort(), "env must be in a stable order");
    const config = parse(d.configYaml) as { outgoingAuth: { backends: Record<string, { type: string }> } };
    assert.equal(config.outgoingAuth.backends.jira?.type, "token_exchange");
    assert.equal(config.outgoingAuth.backends.search?.type, "header_injection");
  });

  it("rolls pods through the config checksum when a backend joins, without touching the selector", () => {
    const before = buildFor(example("basic")).desired;
    const extra = loadYaml(`apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: time, namespace: team-a}
spec: {image: time:1, transport: streamable-http, groupRef: {name: engineering}}`);
    const after = buildFor([...example("basic"), ...extra]).desired;
    assert.ok(before && after);
    assert.notEqual(before.configChecksum, after.configChecksum);
    assert.equal(
      podSpec(after.objects).metadata.annotations["toolhive.stacklok.dev/runconfig-checksum"],
      after.configChecksum,
    );
    assert.deepEqual(
      (find(before.objects, "Deployment").spec as { selector: unknown }).selector,
      (find(after.objects, "Deployment").spec as { selector: unknown }).selector,
    );
    assert.notEqual(before.hash, after.hash);
  });

  it("leaves replicas unset when the spec does, so an HPA can own them", () => {
    const none = buildFor(example("basic")).desired;
    assert.equal((find(none?.objects ?? [], "Deployment").spec as { replicas?: number }).replicas, undefined);
    const two = buildFor(example("tool-filters")).desired;
    assert.equal((find(two?.objects ?? [], "Deployment").spec as { replicas?: number }).replicas, 2);
  });

  it("rolls with a surge and no unavailable pod, a preStop pause and a grace period that covers it", () => {
    const d = buildFor(example("basic")).desired;
    assert.ok(d);
    const dep = find(d.objects, "Deployment").spec as { strategy: unknown };
    assert.deepEqual(dep.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    const tpl = podSpec(d.objects) as unknown as {
      spec: {
        terminationGracePeriodSeconds: number;
        containers: { lifecycle: unknown; readinessProbe: { httpGet: { path: string } } }[];
      };
    };
    const c = tpl.spec.containers[0];
    assert.deepEqual(c?.lifecycle, { preStop: { sleep: { seconds: 5 } } });
    assert.equal(c?.readinessProbe.httpGet.path, "/readyz");
    // preStop (5 s) + vmcp's own graceful shutdown (10 s) must fit before SIGKILL.
    assert.ok(tpl.spec.terminationGracePeriodSeconds >= 5 + 10);
  });

  it("podTemplateSpec overrides the preStop pause, the readiness probe and the grace period", () => {
    const d = buildFor(
      withSpec(example("basic"), (s) => {
        s.podTemplateSpec = {
          spec: {
            terminationGracePeriodSeconds: 60,
            containers: [
              {
                name: "vmcp",
                lifecycle: { preStop: { sleep: { seconds: 20 } } },
                readinessProbe: { periodSeconds: 10 },
              },
            ],
          },
        };
      }),
    );
    assert.ok(d.desired, d.problems.map((p) => p.message).join("; "));
    const tpl = podSpec(d.desired.objects) as unknown as {
      spec: {
        terminationGracePeriodSeconds: number;
        containers: { lifecycle: unknown; readinessProbe: { periodSeconds: number; httpGet: unknown } }[];
      };
    };
    assert.equal(tpl.spec.terminationGracePeriodSeconds, 60);
    assert.deepEqual(tpl.spec.containers[0]?.lifecycle, { preStop: { sleep: { seconds: 20 } } });
    assert.equal(tpl.spec.containers[0]?.readinessProbe.periodSeconds, 10);
    assert.ok(tpl.spec.containers[0]?.readinessProbe.httpGet, "the rest of the probe stays");
  });

  it("declares a PodDisruptionBudget (one pod at a time) only when replicas > 1", () => {
    const kinds = (replicas: number | undefined) =>
      buildFor(withSpec(example("basic"), (s) => (s.replicas = replicas))).desired?.objects.map(
        (o) => o.kind,
      );
    assert.ok(!kinds(undefined)?.includes("PodDisruptionBudget"), "unset (an HPA may own it): none");
    assert.ok(!kinds(1)?.includes("PodDisruptionBudget"), "one replica: a budget would block every drain");
    const d = buildFor(withSpec(example("basic"), (s) => (s.replicas = 3))).desired;
    assert.ok(d);
    const pdb = find(d.objects, "PodDisruptionBudget");
    assert.equal(pdb.apiVersion, "policy/v1");
    assert.equal(pdb.metadata.name, "engineering-tools-vmcp");
    const selector = (find(d.objects, "Deployment").spec as { selector: unknown }).selector;
    assert.deepEqual(pdb.spec, { maxUnavailable: 1, selector });
  });

  it("creates no RBAC when spec.serviceAccount is set, and runs the pod as that account", () => {
    const d = buildFor(withSpec(example("basic"), (s) => (s.serviceAccount = "shared-vmcp"))).desired;
    assert.ok(d);
    assert.deepEqual(
      d.objects.map((o) => o.kind),
      ["ConfigMap", "Deployment", "Service"],
    );
    assert.equal(podSpec(d.objects).spec.serviceAccountName, "shared-vmcp");
  });

  it("merges podTemplateSpec strategically but keeps the labels and checksum it depends on", () => {
    const d = buildFor(
      withSpec(example("basic"), (s) => {
        s.podTemplateSpec = {
          metadata: { labels: { team: "a", app: "hijack" } },
          spec: {
            tolerations: [{ key: "dedicated", operator: "Exists" }],
            containers: [
              {
                name: "vmcp",
                env: [
                  { name: "EXTRA", value: "1" },
                  { name: "HOME", value: "/home" },
                ],
              },
            ],
          },
        };
      }),
    ).desired;
    assert.ok(d);
    const t = podSpec(d.objects);
    assert.equal(t.metadata.labels.team, "a");
    assert.equal(t.metadata.labels.app, "virtualmcpserver");
    assert.deepEqual(t.spec.tolerations, [{ key: "dedicated", operator: "Exists" }]);
    const env = new Map(t.spec.containers[0]?.env.map((e) => [e.name, e.value]));
    assert.equal(env.get("EXTRA"), "1");
    assert.equal(env.get("HOME"), "/home");
    assert.ok(env.has("VMCP_SESSION_HMAC_SECRET"), "the merge must not drop our env");
    assert.equal(t.spec.containers[0]?.image, "ghcr.io/stacklok/toolhive/vmcp:v0.44.0");
    assert.ok(
      find(d.objects, "Deployment").metadata.annotations?.["toolhive.stacklok.io/podtemplatespec-hash"],
    );
  });

  it("merges an MCPToolConfig under the VirtualMCPServer's own filter and overrides", () => {
    const d = buildFor(example("tool-filters")).desired;
    const config = parse(d?.configYaml ?? "") as {
      aggregation: {
        tools: {
          workload: string;
          filter?: string[];
          overrides?: Record<string, { name?: string; description?: string }>;
          toolConfigRef?: unknown;
        }[];
      };
    };
    const k8s = config.aggregation.tools.find((t) => t.workload === "kubernetes");
    assert.deepEqual(k8s?.filter, ["pods_list", "pods_get", "logs", "events_list"]);
    assert.equal(k8s?.overrides?.pods_log?.name, "logs");
    assert.equal(k8s?.overrides?.events_list?.description, "Recent cluster events");
    assert.equal(k8s?.toolConfigRef, undefined, "the reference is resolved, not passed on");
  });

  it("warns when a filter names a tool by the name an override replaces (vmcp would hide it)", () => {
    assert.deepEqual(buildFor(example("tool-filters")).warnings, []);
    const objects = example("tool-filters").map((o) =>
      o.kind === "MCPToolConfig"
        ? { ...o, spec: { ...o.spec, toolsFilter: ["pods_list", "pods_get", "pods_log", "events_list"] } }
        : o,
    );
    const warnings = buildFor(objects).warnings;
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(
      warnings[0]!,
      /aggregation\.tools \(workload kubernetes\): the filter names pods_log, which an override renames to logs; .* list logs in the filter/,
    );
  });

  it("builds nothing and says why when a referenced MCPToolConfig is missing", () => {
    const objects = example("tool-filters").filter((o) => o.kind !== "MCPToolConfig");
    const b = buildFor(objects);
    assert.equal(b.desired, undefined);
    assert.match(b.problems[0]?.message ?? "", /MCPToolConfig k8s-readonly .* not found/);
  });

  it("resolves compositeToolRefs into compositeTools, and fails on a missing definition", () => {
    const d = buildFor(example("composite-tools")).desired;
    const config = parse(d?.configYaml ?? "") as {
      compositeTools: { name: string }[];
      compositeToolRefs?: unknown;
    };
    assert.deepEqual(config.compositeTools.map((t) => t.name).sort(), ["announce_release", "triage_issue"]);
    // Kept as written next to the inlined definitions, as ToolHive's operator writes it.
    assert.deepEqual(config.compositeToolRefs, [{ name: "announce-release" }]);
    const missing = buildFor(
      example("composite-tools").filter((o) => o.kind !== "VirtualMCPCompositeToolDefinition"),
    );
    assert.equal(missing.desired, undefined);
    assert.equal(missing.problems[0]?.reason, "CompositeToolRefNotFound");
  });

  it("adds the --debug flag for logLevel debug", () => {
    const c = podSpec(buildFor(example("tool-filters")).desired?.objects ?? []).spec.containers[0];
    assert.ok(c?.args.includes("--debug"));
  });
});
