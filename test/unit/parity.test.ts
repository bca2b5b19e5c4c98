// ToolHive parity on the render path: the kinds a VirtualMCPServer references, incoming
// auth and authorization from every source, and the fields that used to be dropped.
import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseManifests } from "../../program/manifests.js";
import {
  gatherInputs,
  objectSet,
  referencesOf,
  type AnyObject,
  type ConfigMapData,
} from "../../program/inputs.js";
import { build, type Build } from "../../program/desired.js";
import { cacheObjectSet, MemoryCache } from "../../controller/cache.js";
import type { RawObject, WatchedKind } from "../../controller/objects.js";
import { buildFor, exampleLoaded, loadYaml, SETTINGS, vmcpOf } from "./helpers.js";

type Container = { env: { name: string; value?: string; valueFrom?: { secretKeyRef: unknown } }[] };

function configOf(b: Build): Record<string, unknown> {
  assert.ok(b.desired, b.problems.map((p) => p.message).join("; "));
  return parse(b.desired.configYaml) as Record<string, unknown>;
}
function containerOf(b: Build): Container {
  const dep = b.desired?.objects.find((o) => o.kind === "Deployment") as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  return dep.spec.template.spec.containers[0] as Container;
}
const without = (objects: AnyObject[], kind: string) => objects.filter((o) => o.kind !== kind);

describe("ToolHive parity: referenced kinds", () => {
  it("skips ToolHive kinds that play no part in a render with a note, and still rejects unknown ones", () => {
    const text = (kind: string) =>
      `apiVersion: toolhive.stacklok.dev/v1alpha1\nkind: ${kind}\nmetadata: {name: x, namespace: ns}\nspec: {}\n`;
    const skipped = parseManifests(text("MCPRegistry"), "f.yaml");
    assert.deepEqual(skipped.errors, []);
    assert.match(skipped.notes[0] ?? "", /MCPRegistry ns\/x: skipped/);
    const unknown = parseManifests(text("MCPFrobnicator"), "f.yaml");
    assert.match(unknown.errors[0] ?? "", /kind: expected one of .*MCPOIDCConfig.*found "MCPFrobnicator"/);
  });

  it("parses the four referenced kinds in v1alpha1 and v1beta1 with ToolHive's defaults", () => {
    for (const version of ["v1alpha1", "v1beta1"]) {
      const objects = loadYaml(`
apiVersion: toolhive.stacklok.dev/${version}
kind: EmbeddingServer
metadata: {name: e}
---
apiVersion: toolhive.stacklok.dev/${version}
kind: MCPOIDCConfig
metadata: {name: o}
spec: {type: inline, inline: {issuer: "https://idp"}}
---
apiVersion: toolhive.stacklok.dev/${version}
kind: MCPAuthzConfig
metadata: {name: a}
spec: {type: cedarv1, config: {policies: ["permit(principal, action, resource);"]}}
---
apiVersion: toolhive.stacklok.dev/${version}
kind: MCPTelemetryConfig
metadata: {name: t}
spec: {openTelemetry: {tracing: {enabled: true}}}
`);
      const [es, oidc, , tel] = objects as unknown as [
        { spec: { port: number; model: string } },
        { spec: { inline: { insecureAllowHTTP: boolean } } },
        unknown,
        { spec: { openTelemetry: { tracing: { samplingRate: string }; useLegacyAttributes: boolean } } },
      ];
      assert.equal(es.spec.port, 8080);
      assert.equal(es.spec.model, "BAAI/bge-small-en-v1.5");
      assert.equal(oidc.spec.inline.insecureAllowHTTP, false);
      assert.equal(tel.spec.openTelemetry.tracing.samplingRate, "0.05");
      assert.equal(tel.spec.openTelemetry.useLegacyAttributes, true);
    }
  });

  it("reports every object a VirtualMCPServer references, typed, with the field naming it", () => {
    const loaded = exampleLoaded("shared-configs");
    assert.deepEqual(
      referencesOf(vmcpOf(loaded.objects)).map((r) => `${r.kind}/${r.name} ${r.field}`),
      [
        "EmbeddingServer/embeddings spec.embeddingServerRef",
        "MCPGroup/platform spec.groupRef",
        "MCPOIDCConfig/cluster-tokens spec.incomingAuth.oidcConfigRef",
        "MCPTelemetryConfig/otel spec.telemetryConfigRef",
      ],
    );
    const oa = exampleLoaded("oidc-authz");
    assert.deepEqual(
      referencesOf(vmcpOf(oa.objects, "finance-configmap")).map((r) => `${r.kind}/${r.name}`),
      ["ConfigMap/ledger-policy", "MCPGroup/finance", "MCPOIDCConfig/corp-idp"],
    );
  });
});

describe("ToolHive parity: incoming auth and authorization", () => {
  const { objects, configMaps } = exampleLoaded("oidc-authz");
  const buildOf = (name: string, objs = objects, cms: readonly ConfigMapData[] = configMaps) =>
    buildFor(objs, name, true, cms);

  it("converts an MCPOIDCConfig plus the server's audience, scopes and resourceUrl into incomingAuth.oidc", () => {
    const b = buildOf("finance-inline");
    const oidc = (configOf(b).incomingAuth as { oidc: unknown }).oidc;
    assert.deepEqual(oidc, {
      issuer: "https://idp.example.com/realms/corp",
      clientId: "vmcp-finance",
      clientSecretEnv: "VMCP_OIDC_CLIENT_SECRET",
      audience: "finance-inline",
      resource: "https://finance.example.com/mcp",
      scopes: ["openid", "mcp"],
      jwksUrl: "https://idp.example.com/realms/corp/protocol/openid-connect/certs",
      introspectionUrl: "https://idp.example.com/realms/corp/protocol/openid-connect/token/introspect",
      caBundlePath: "/config/certs/corp-ca/bundle.pem",
    });
    const env = containerOf(b).env.find((e) => e.name === "VMCP_OIDC_CLIENT_SECRET");
    assert.deepEqual(env?.valueFrom, { secretKeyRef: { name: "corp-idp-client", key: "secret" } });
  });

  it("writes Cedar authz from inline policies, a ConfigMap and an MCPAuthzConfig", () => {
    const authzOf = (name: string) => (configOf(buildOf(name)).incomingAuth as { authz: unknown }).authz;
    assert.deepEqual(authzOf("finance-inline"), {
      type: "cedar",
      policies: ['permit(principal in THVGroup::"finance", action, resource);'],
      entitiesJson: "[]",
      groupClaimName: "groups",
      groupEntityType: "THVGroup",
    });
    assert.deepEqual(authzOf("finance-configmap"), {
      type: "cedar",
      policies: [
        'permit(principal, action == Action::"list_tools", resource);',
        'permit(principal, action == Action::"call_tool", resource);',
        'forbid(principal, action == Action::"call_tool", resource == Tool::"ledger_delete_entry");',
      ],
      entitiesJson: "[]",
      roleClaimName: "roles",
    });
    assert.deepEqual(authzOf("finance-shared"), {
      type: "cedar",
      policies: [
        'permit(principal in THVGroup::"readers", action == Action::"call_tool", resource) when { resource.readOnlyHint == true };',
      ],
      entitiesJson: "[]",
      groupClaimName: "groups",
      groupEntityType: "THVGroup",
    });
  });

  const failsClosed = (b: Build, condition: string, pattern: RegExp) => {
    assert.equal(b.desired, undefined, "nothing is deployed with less security than asked for");
    const p = b.problems.find((x) => x.condition === condition);
    assert.ok(p, `a ${condition} problem (got ${JSON.stringify(b.problems)})`);
    assert.match(p.message, pattern);
  };

  it("builds nothing when the MCPOIDCConfig is missing", () => {
    failsClosed(
      buildOf("finance-inline", without(objects, "MCPOIDCConfig")),
      "OIDCConfigRefValidated",
      /MCPOIDCConfig corp-idp not found/,
    );
  });

  it("builds nothing when the MCPAuthzConfig is missing, not cedarv1, or has no policies", () => {
    failsClosed(
      buildOf("finance-shared", without(objects, "MCPAuthzConfig")),
      "AuthzConfigRefValidated",
      /MCPAuthzConfig readers-only: not found/,
    );
    const retyped = objects.map((o) =>
      o.kind === "MCPAuthzConfig" ? { ...o, spec: { type: "httpv1", config: {} } } : o,
    ) as AnyObject[];
    failsClosed(buildOf("finance-shared", retyped), "AuthzConfigRefValidated", /only cedarv1/);
    const empty = objects.map((o) =>
      o.kind === "MCPAuthzConfig" ? { ...o, spec: { type: "cedarv1", config: { policies: [] } } } : o,
    ) as AnyObject[];
    failsClosed(buildOf("finance-shared", empty), "AuthzConfigRefValidated", /at least one Cedar policy/);
  });

  it("builds nothing when the authz ConfigMap, its key or its content is missing or invalid", () => {
    failsClosed(
      buildOf("finance-configmap", objects, []),
      "AuthzConfigRefValidated",
      /ledger-policy not found/,
    );
    const cm = (data: Record<string, string>) => [{ name: "ledger-policy", namespace: "finance", data }];
    failsClosed(
      buildOf("finance-configmap", objects, cm({ "authz.json": "{}" })),
      "AuthzConfigRefValidated",
      /has no key authz\.yaml/,
    );
    failsClosed(
      buildOf(
        "finance-configmap",
        objects,
        cm({ "authz.yaml": "version: '1.0'\ntype: cedarv1\ncedar: {}\n" }),
      ),
      "AuthzConfigRefValidated",
      /cedar\.policies: expected at least one Cedar policy/,
    );
  });

  it("reads the authz ConfigMap from the controller's cache as from the manifests", () => {
    const cache = new MemoryCache();
    for (const o of objects) cache.set(o.kind as WatchedKind, o as RawObject);
    const vmcp = vmcpOf(objects, "finance-configmap");
    const fromCache = (data?: Record<string, string>) => {
      if (data)
        cache.set("ConfigMap", {
          kind: "ConfigMap",
          metadata: { name: "ledger-policy", namespace: "finance" },
          data,
        } as RawObject);
      else cache.delete("ConfigMap", "finance", "ledger-policy");
      return build(gatherInputs(cacheObjectSet(cache), vmcp), SETTINGS, { predictUrls: true });
    };
    const manifestCm = exampleLoaded("oidc-authz").configMaps.find((c) => c.name === "ledger-policy");
    assert.ok(manifestCm, "examples/oidc-authz has the ledger-policy ConfigMap");
    const cached = fromCache({ ...manifestCm.data });
    assert.deepEqual(cached.problems, []);
    const fromManifests = buildOf("finance-configmap", objects);
    assert.deepEqual(configOf(cached).incomingAuth, configOf(fromManifests).incomingAuth);
    failsClosed(fromCache(undefined), "AuthzConfigRefValidated", /ledger-policy not found/);
  });

  it("maps the service-account issuer the way ToolHive's resolver does (cluster CA, private IPs allowed)", () => {
    const { objects: sc } = exampleLoaded("shared-configs");
    const oidc = (configOf(buildFor(sc)).incomingAuth as { oidc: Record<string, unknown> }).oidc;
    assert.equal(oidc.issuer, "https://kubernetes.default.svc.cluster.local");
    assert.equal(oidc.caBundlePath, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    assert.equal(oidc.jwksAllowPrivateIp, true);
    assert.equal(oidc.clientSecretEnv, undefined);
  });
});

describe("ToolHive parity: telemetry, session storage, optimizer, audit", () => {
  const { objects } = exampleLoaded("shared-configs");

  it("writes telemetry from the MCPTelemetryConfig; the sensitive header only as a Secret-backed env var", () => {
    const b = buildFor(objects);
    const config = configOf(b);
    assert.deepEqual(config.telemetry, {
      endpoint: "otel-collector.observability.svc:4318",
      serviceName: "platform-vmcp",
      tracingEnabled: true,
      metricsEnabled: true,
      samplingRate: "0.25",
      headers: { "x-team": "platform" },
      customAttributes: { "deployment.environment": "production" },
      useLegacyAttributes: true,
      enablePrometheusMetricsPath: true,
      caCertPath: "/config/certs/otel/otel-ca/ca.crt",
    });
    const env = containerOf(b).env;
    assert.deepEqual(env.find((e) => e.name === "TOOLHIVE_OTEL_HEADER_X_API_KEY")?.valueFrom, {
      secretKeyRef: { name: "otel-credentials", key: "api-key" },
    });
    assert.equal(
      env.find((e) => e.name === "OTEL_RESOURCE_ATTRIBUTES")?.value,
      "service.name=platform-vmcp,service.namespace=platform",
    );
  });

  it("writes redis session storage, the password only as THV_SESSION_REDIS_PASSWORD from its Secret", () => {
    const b = buildFor(objects);
    assert.deepEqual(configOf(b).sessionStorage, {
      provider: "redis",
      address: "redis.platform.svc.cluster.local:6379",
      db: 2,
      keyPrefix: "vmcp:platform:",
    });
    assert.deepEqual(containerOf(b).env.find((e) => e.name === "THV_SESSION_REDIS_PASSWORD")?.valueFrom, {
      secretKeyRef: { name: "redis-auth", key: "password" },
    });
    assert.doesNotMatch(b.desired?.configYaml ?? "", /redis-auth|password/);
  });

  it("points the optimizer at the EmbeddingServer and names the audit component after the server", () => {
    const config = configOf(buildFor(objects));
    // The defaults are ToolHive's CRD defaults, which its operator writes into config.yaml.
    assert.deepEqual(config.optimizer, {
      maxToolsToReturn: 8,
      embeddingService: "http://embeddings.platform.svc.cluster.local:8090",
      embeddingProvider: "tei",
      embeddingServiceTimeout: "30s",
    });
    assert.deepEqual(config.audit, {
      enabled: true,
      component: "platform-tools",
      detectApplicationErrors: true,
      maxDataSize: 1024,
      maxDelegationDepth: 10,
    });
  });

  it("builds nothing when the MCPTelemetryConfig or EmbeddingServer is missing", () => {
    const t = buildFor(without(objects, "MCPTelemetryConfig"));
    assert.equal(t.desired, undefined);
    assert.equal(t.problems[0]?.condition, "TelemetryConfigRefValidated");
    const e = buildFor(without(objects, "EmbeddingServer"));
    assert.equal(e.desired, undefined);
    assert.equal(e.problems[0]?.reason, "EmbeddingServerNotFound");
  });

  it("discovers native SSE servers as sse at /sse, and stdio servers by their proxyMode", () => {
    const backends = configOf(buildFor(objects)).backends as {
      name: string;
      transport: string;
      url: string;
    }[];
    assert.deepEqual(
      backends.map((b) => [b.name, b.transport, b.url]),
      [
        ["search", "sse", "http://mcp-search-proxy.platform.svc.cluster.local:8081/sse#search"],
        ["tickets", "sse", "http://mcp-tickets-proxy.platform.svc.cluster.local:8080/sse#tickets"],
      ],
    );
  });
});
