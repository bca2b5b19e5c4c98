// An MCP server of your own (any image serving MCP over streamable HTTP) and a virtual MCP
// server in front of it, in one Pulumi program.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { VirtualMCPServer } from "vmcp-operator/pulumi";

const config = new pulumi.Config();
const namespace = config.get("namespace") ?? "default";
const image = config.get("backendImage") ?? "ghcr.io/stackloklabs/osv-mcp/server:latest";

const labels = { app: "osv" };
const backend = new k8s.apps.v1.Deployment("osv", {
  metadata: { name: "osv", namespace },
  spec: {
    selector: { matchLabels: labels },
    template: {
      metadata: { labels },
      spec: { containers: [{ name: "osv", image, ports: [{ containerPort: 8080 }] }] },
    },
  },
});
const service = new k8s.core.v1.Service("osv", {
  metadata: { name: "osv", namespace },
  spec: { selector: labels, ports: [{ port: 8080 }] },
});

// The VirtualMCPServer spec as in its manifest, and its backend as an MCPServerEntry.
const vmcp = new VirtualMCPServer(
  "tools",
  {
    namespace,
    spec: { groupRef: { name: "tools" }, incomingAuth: { type: "anonymous" } },
    objects: [
      {
        kind: "MCPServerEntry",
        metadata: { name: "osv" },
        spec: {
          groupRef: { name: "tools" },
          remoteUrl: `http://osv.${namespace}.svc.cluster.local:8080/mcp`,
          transport: "streamable-http",
        },
      },
    ],
  },
  { dependsOn: [backend, service] },
);

export const url = vmcp.url;
export const objects = vmcp.objects;
export const backendService = service.metadata.name;
