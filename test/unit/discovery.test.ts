import assert from "node:assert/strict";
import { buildFor, example, loadYaml } from "./helpers.js";

const members = loadYaml(`apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: g, namespace: ns}
spec: {}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: running, namespace: ns}
spec: {image: a:1, transport: stdio, groupRef: {name: g}}
status: {phase: Ready, url: "http://mcp-running-proxy.ns.svc.cluster.local:8080/mcp"}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: starting, namespace: ns}
spec: {image: a:1, transport: streamable-http, groupRef: {name: g}}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPRemoteProxy
metadata: {name: proxy, namespace: ns}
spec: {remoteUrl: "https://remote.example.com/mcp", transport: sse, groupRef: {name: g}}
status: {url: "http://mcp-proxy-remote-proxy.ns.svc.cluster.local:8080/sse#proxy"}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: entry, namespace: ns}
spec: {remoteUrl: "https://entry.example.com/mcp", transport: streamable-http, groupRef: {name: g}}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: other-group, namespace: ns}
spec: {image: a:1, groupRef: {name: h}}
status: {url: "http://x"}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: other-namespace, namespace: elsewhere}
spec: {image: a:1, groupRef: {name: g}}
status: {url: "http://y"}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: v, namespace: ns}
spec: {groupRef: {name: g}, incomingAuth: {type: anonymous}}`);

describe("backend discovery", () => {
  it("finds the group's members of all three kinds in the namespace, and only those", () => {
    const { backends, unresolved } = buildFor(members, "v", false).discovery;
    assert.deepEqual(
      backends.map((b) => [b.kind, b.name, b.url, b.transport]),
      [
        ["MCPServerEntry", "entry", "https://entry.example.com/mcp", "streamable-http"],
        [
          "MCPRemoteProxy",
          "proxy",
          "http://mcp-proxy-remote-proxy.ns.svc.cluster.local:8080/sse#proxy",
          "sse",
        ],
        ["MCPServer", "running", "http://mcp-running-proxy.ns.svc.cluster.local:8080/mcp", "streamable-http"],
      ],
    );
    assert.deepEqual(
      unresolved.map((u) => u.name),
      ["starting"],
    );
    assert.match(unresolved[0]?.reason ?? "", /no URL yet/);
  });

  it("predicts MCPServer URLs from ToolHive's naming for offline render", () => {
    const { backends, unresolved } = buildFor(members, "v", true).discovery;
    assert.equal(unresolved.length, 0);
    assert.equal(
      backends.find((b) => b.name === "starting")?.url,
      "http://mcp-starting-proxy.ns.svc.cluster.local:8080/mcp",
    );
  });

  it("leaves a backend out, with the reason, when its auth config is missing; the others stay", () => {
    const objects = example("external-auth").filter((o) => o.metadata.name !== "jira-token-exchange");
    const b = buildFor(objects);
    assert.deepEqual(
      b.auth.problems.map((p) => [p.scope, p.reason]),
      [["jira", "AuthConfigNotFound"]],
    );
    assert.deepEqual([...b.auth.excluded], ["jira"]);
    const config = b.desired?.configYaml ?? "";
    assert.ok(!config.includes("name: jira"), "the backend with broken auth must not be served");
    assert.ok(config.includes("name: search"));
  });
});
