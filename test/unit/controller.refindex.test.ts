// The reference index: which VirtualMCPServers an object affects, kept incrementally.
import assert from "node:assert/strict";
import type { RawObject } from "../../controller/objects.js";
import { ReferenceIndex } from "../../controller/refindex.js";
import { vmcpRefs } from "../../controller/triggers.js";

const G = "toolhive.stacklok.dev/v1beta1";

function vmcp(name: string, spec: Record<string, unknown>, ns = "ns"): RawObject {
  return { apiVersion: G, kind: "VirtualMCPServer", metadata: { name, namespace: ns }, spec };
}
function member(kind: string, name: string, group: string | undefined, auth?: string, ns = "ns"): RawObject {
  return {
    apiVersion: G,
    kind,
    metadata: { name, namespace: ns },
    spec: {
      ...(group ? { groupRef: { name: group } } : {}),
      ...(auth ? { externalAuthConfigRef: { name: auth } } : {}),
    },
  };
}
const obj = (kind: string, name: string, ns = "ns"): RawObject => ({
  kind,
  metadata: { name, namespace: ns },
});

describe("controller reference index", () => {
  function indexed(): ReferenceIndex {
    const idx = new ReferenceIndex();
    idx.upsert("VirtualMCPServer", vmcp("a", { groupRef: { name: "g1" } }));
    idx.upsert(
      "VirtualMCPServer",
      vmcp("b", {
        groupRef: { name: "g2" },
        outgoingAuth: {
          default: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "auth-default" } },
          backends: { x: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "auth-x" } } },
        },
        config: {
          aggregation: { tools: [{ workload: "x", toolConfigRef: { name: "tc" } }] },
          compositeToolRefs: [{ name: "wf" }],
        },
      }),
    );
    idx.upsert("VirtualMCPServer", vmcp("c", { groupRef: { name: "g1" } }, "other"));
    return idx;
  }

  it("lists every reference of a VirtualMCPServer spec", () => {
    assert.deepEqual(
      vmcpRefs(
        vmcp("b", {
          groupRef: { name: "g" },
          outgoingAuth: {
            backends: { x: { type: "externalAuthConfigRef", externalAuthConfigRef: { name: "ax" } } },
          },
          config: {
            aggregation: { tools: [{ workload: "x", toolConfigRef: { name: "tc" } }] },
            compositeToolRefs: [{ name: "wf" }],
          },
        }),
      ),
      [
        { kind: "MCPExternalAuthConfig", namespace: "ns", name: "ax" },
        { kind: "MCPGroup", namespace: "ns", name: "g" },
        { kind: "MCPToolConfig", namespace: "ns", name: "tc" },
        { kind: "VirtualMCPCompositeToolDefinition", namespace: "ns", name: "wf" },
      ],
    );
  });

  it("maps a group to the VirtualMCPServers of its namespace that use it", () => {
    const idx = indexed();
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "g1")), ["ns/a"]);
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "g1", "other")), ["other/c"]);
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "unused")), []);
  });

  for (const kind of ["MCPServer", "MCPRemoteProxy", "MCPServerEntry"]) {
    it(`maps a ${kind} to its group's VirtualMCPServers, old group included when it moves`, () => {
      const idx = indexed();
      assert.deepEqual(idx.upsert(kind as never, member(kind, "m", "g1")), ["ns/a"]);
      assert.deepEqual(
        idx.upsert(kind as never, member(kind, "m", "g2")),
        ["ns/a", "ns/b"],
        "left g1, joined g2",
      );
      assert.deepEqual(idx.upsert(kind as never, member(kind, "m", undefined)), ["ns/b"], "left g2");
      assert.deepEqual(idx.upsert(kind as never, member(kind, "m", undefined)), []);
      idx.upsert(kind as never, member(kind, "m", "g1"));
      assert.deepEqual(idx.remove(kind as never, member(kind, "m", "g1")), ["ns/a"]);
    });
  }

  it("maps an MCPExternalAuthConfig through outgoingAuth refs and through members' refs", () => {
    const idx = indexed();
    assert.deepEqual(idx.upsert("MCPExternalAuthConfig", obj("MCPExternalAuthConfig", "auth-default")), [
      "ns/b",
    ]);
    assert.deepEqual(idx.upsert("MCPExternalAuthConfig", obj("MCPExternalAuthConfig", "auth-x")), ["ns/b"]);
    assert.deepEqual(idx.upsert("MCPExternalAuthConfig", obj("MCPExternalAuthConfig", "member-auth")), []);
    idx.upsert("MCPServer", member("MCPServer", "s1", "g1", "member-auth"));
    assert.deepEqual(idx.upsert("MCPExternalAuthConfig", obj("MCPExternalAuthConfig", "member-auth")), [
      "ns/a",
    ]);
    // the member drops its auth ref: the auth config no longer affects a
    idx.upsert("MCPServer", member("MCPServer", "s1", "g1"));
    assert.deepEqual(idx.upsert("MCPExternalAuthConfig", obj("MCPExternalAuthConfig", "member-auth")), []);
  });

  it("maps tool configs and composite tool definitions to the servers naming them", () => {
    const idx = indexed();
    assert.deepEqual(idx.upsert("MCPToolConfig", obj("MCPToolConfig", "tc")), ["ns/b"]);
    assert.deepEqual(idx.upsert("VirtualMCPCompositeToolDefinition", obj("X", "wf")), ["ns/b"]);
    assert.deepEqual(idx.upsert("MCPToolConfig", obj("MCPToolConfig", "tc", "other")), []);
  });

  it("maps OIDC, authz, telemetry configs and embedding servers to the servers naming them", () => {
    const idx = new ReferenceIndex();
    idx.upsert(
      "VirtualMCPServer",
      vmcp("c", {
        groupRef: { name: "g" },
        incomingAuth: { type: "oidc", oidcConfigRef: { name: "oidc" }, authzConfigRef: { name: "authz" } },
        telemetryConfigRef: { name: "otel" },
        embeddingServerRef: { name: "embed" },
      }),
    );
    assert.deepEqual(idx.upsert("MCPOIDCConfig", obj("MCPOIDCConfig", "oidc")), ["ns/c"]);
    assert.deepEqual(idx.upsert("MCPAuthzConfig", obj("MCPAuthzConfig", "authz")), ["ns/c"]);
    assert.deepEqual(idx.upsert("MCPTelemetryConfig", obj("MCPTelemetryConfig", "otel")), ["ns/c"]);
    assert.deepEqual(idx.remove("EmbeddingServer", obj("EmbeddingServer", "embed")), ["ns/c"]);
    assert.deepEqual(idx.upsert("MCPOIDCConfig", obj("MCPOIDCConfig", "other")), []);
  });

  it("maps the ConfigMap holding authz policies to the servers reading it (type configMap, the default)", () => {
    const idx = new ReferenceIndex();
    const authz = (name: string, authzConfig: Record<string, unknown>) =>
      vmcp(name, { groupRef: { name: "g" }, incomingAuth: { type: "anonymous", authzConfig } });
    idx.upsert("VirtualMCPServer", authz("explicit", { type: "configMap", configMap: { name: "policy" } }));
    idx.upsert("VirtualMCPServer", authz("defaulted", { configMap: { name: "policy" } }));
    idx.upsert("VirtualMCPServer", authz("inline", { type: "inline", configMap: { name: "policy" } }));
    assert.deepEqual(idx.upsert("ConfigMap", obj("ConfigMap", "policy")), ["ns/defaulted", "ns/explicit"]);
    assert.deepEqual(idx.remove("ConfigMap", obj("ConfigMap", "policy")), ["ns/defaulted", "ns/explicit"]);
    assert.deepEqual(idx.upsert("ConfigMap", obj("ConfigMap", "unrelated")), []);
  });

  it("maps owned ConfigMap/Deployment/Service through their owner reference or labels", () => {
    const idx = indexed();
    const owned = (kind: string, name: string): RawObject => ({
      kind,
      metadata: {
        name,
        namespace: "ns",
        ownerReferences: [{ apiVersion: G, kind: "VirtualMCPServer", name: "a" }],
      },
    });
    assert.deepEqual(idx.upsert("Deployment", owned("Deployment", "a")), ["ns/a"]);
    assert.deepEqual(idx.remove("Deployment", owned("Deployment", "a")), ["ns/a"]);
    assert.deepEqual(idx.upsert("ConfigMap", owned("ConfigMap", "a-vmcp-config")), ["ns/a"]);
    assert.deepEqual(
      idx.upsert("Service", {
        kind: "Service",
        metadata: {
          name: "vmcp-b",
          namespace: "ns",
          labels: { app: "virtualmcpserver", "app.kubernetes.io/instance": "b" },
        },
      }),
      ["ns/b"],
    );
    assert.deepEqual(idx.upsert("ConfigMap", obj("ConfigMap", "unrelated")), []);
  });

  it("re-indexes a VirtualMCPServer whose refs change and forgets a deleted one", () => {
    const idx = indexed();
    idx.upsert("VirtualMCPServer", vmcp("a", { groupRef: { name: "g3" } }));
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "g1")), []);
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "g3")), ["ns/a"]);
    assert.deepEqual(idx.remove("VirtualMCPServer", vmcp("a", {})), ["ns/a"]);
    assert.deepEqual(idx.upsert("MCPGroup", obj("MCPGroup", "g3")), []);
    assert.deepEqual(idx.referencing("MCPGroup", "ns", "g2"), ["ns/b"]);
  });

  it("indexes invalid specs as far as their refs can be read", () => {
    const idx = new ReferenceIndex();
    assert.deepEqual(
      idx.upsert("VirtualMCPServer", vmcp("x", { groupRef: "not-an-object", config: { aggregation: 5 } })),
      ["ns/x"],
    );
    assert.deepEqual(
      idx.upsert("VirtualMCPServer", { kind: "VirtualMCPServer", metadata: { name: "y", namespace: "ns" } }),
      ["ns/y"],
    );
  });
});
