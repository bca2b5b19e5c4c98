// Status of objects other controllers write is read leniently: an MCPServer whose status
// does not fit our schema (ToolHive's operator writes phase "Running") must stay a member.
import assert from "node:assert/strict";
import { parseObject } from "../../api/index.js";
import { MemoryCache, cacheObjectSet } from "../../controller/cache.js";
import { discoverBackends } from "../../program/discovery.js";
import { gatherInputs } from "../../program/inputs.js";

const API = "toolhive.stacklok.dev/v1beta1";
const server = (status: Record<string, unknown>, spec: Record<string, unknown> = {}) => ({
  apiVersion: API,
  kind: "MCPServer",
  metadata: { name: "weather", namespace: "ns" },
  spec: { image: "a:1", transport: "streamable-http", groupRef: { name: "g" }, ...spec },
  status,
});

describe("lenient status of watched objects", () => {
  it("keeps an unknown phase as written and leaves out status values of the wrong type", () => {
    const r = parseObject(
      "MCPServer",
      server({ phase: "Running", readyReplicas: "two", url: "http://w/mcp" }),
    );
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.equal(r.value.status?.phase as string, "Running");
    assert.equal(r.value.status?.url, "http://w/mcp");
    assert.equal(r.value.status?.readyReplicas, undefined);
  });

  it("still rejects a spec error, and names its field", () => {
    const r = parseObject("MCPServer", server({ phase: "Running" }, { transport: "carrier-pigeon" }));
    assert.ok(!r.ok);
    assert.ok(
      r.errors.some((e) => e.path === "spec.transport"),
      JSON.stringify(r.errors),
    );
  });

  it("an MCPServer with phase Running is discovered as a backend of its group", () => {
    const cache = new MemoryCache();
    const meta = (name: string) => ({ name, namespace: "ns" });
    const group = { apiVersion: API, kind: "MCPGroup", metadata: meta("g"), spec: {} };
    const vmcp = {
      apiVersion: API,
      kind: "VirtualMCPServer",
      metadata: meta("v"),
      spec: { groupRef: { name: "g" }, incomingAuth: { type: "anonymous" } },
    };
    cache.set("MCPGroup", group as never);
    cache.set("VirtualMCPServer", vmcp as never);
    cache.set(
      "MCPServer",
      server({ phase: "Running", url: "http://mcp-weather-proxy.ns.svc.cluster.local:8080/mcp" }) as never,
    );
    const objects = cacheObjectSet(cache);
    const parsed = parseObject("VirtualMCPServer", vmcp);
    assert.ok(parsed.ok);
    const discovery = discoverBackends(gatherInputs(objects, parsed.value));
    assert.deepEqual(
      discovery.backends.map((b) => b.name),
      ["weather"],
    );
    assert.equal(objects.invalid.size, 0);
  });
});
