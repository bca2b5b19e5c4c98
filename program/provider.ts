// The VirtualMCPServer component for Pulumi programs in other languages: a component
// provider (`pulumi-resource-vmcp`, bin/) serving the package schema and constructing
// the same component as `vmcp-operator/pulumi`. The spec and the objects travel as
// untyped JSON (pulumi.json#/Any) and are validated here with the CRDs' schemas.
import * as pulumi from "@pulumi/pulumi";
import * as provider from "@pulumi/pulumi/provider/index.js";
import { COMPONENT_TYPE, VirtualMCPServer, type VirtualMCPServerArgs } from "./pulumi.js";

export const PACKAGE = "vmcp";
/** The provider's version: the npm package's, so an SDK generated from the schema pins it. */
export const VERSION = "0.1.0";

const any = { $ref: "pulumi.json#/Any" };

/** The Pulumi package schema (`pulumi package get-schema bin/pulumi-resource-vmcp`). */
export const SCHEMA = {
  name: PACKAGE,
  displayName: "vmcp-operator",
  version: VERSION,
  description: "A ToolHive VirtualMCPServer on Kubernetes, as a Pulumi component (vmcp-operator)",
  license: "Apache-2.0",
  language: {
    go: {
      importBasePath: "vmcp-operator/sdk/go/vmcp",
      generateResourceContainerTypes: false,
    },
  },
  types: {
    [`${PACKAGE}:kubernetes:ObjectRef`]: {
      type: "object",
      description: "One Kubernetes object the component applied.",
      properties: { kind: { type: "string" }, name: { type: "string" } },
      required: ["kind", "name"],
    },
  },
  resources: {
    [COMPONENT_TYPE]: {
      isComponent: true,
      description:
        "A ToolHive VirtualMCPServer: the vMCP Deployment, Service, ConfigMap, ServiceAccount, Role, RoleBinding and session HMAC Secret.",
      inputProperties: {
        name: {
          type: "string",
          description: "metadata.name of the VirtualMCPServer; default: the resource name.",
        },
        namespace: { type: "string", description: 'Where the objects go (default "default").' },
        spec: { ...any, description: "The VirtualMCPServer spec, as in its manifest (JSON)." },
        objects: {
          type: "array",
          items: any,
          description:
            "The ToolHive objects the spec names and the backends of its group (MCPServerEntry, MCPServer, …), as in their manifests.",
        },
        configMaps: {
          type: "array",
          items: any,
          description: "ConfigMaps ({name, data}) holding authz policies.",
        },
        vmcpImage: {
          type: "string",
          description: "The vMCP image (default ghcr.io/stacklok/toolhive/vmcp:v0.44.0).",
        },
        kubeconfig: {
          type: "string",
          secret: true,
          description: "Kubeconfig contents; default $KUBECONFIG.",
        },
        awaitReadiness: { type: "boolean", description: "Wait for the Deployment to roll out." },
      },
      requiredInputs: ["spec"],
      properties: {
        url: { type: "string", description: "The in-cluster URL of the virtual MCP server." },
        configChecksum: { type: "string" },
        desiredHash: { type: "string" },
        objects: { type: "array", items: { $ref: `#/types/${PACKAGE}:kubernetes:ObjectRef` } },
      },
      required: ["url", "configChecksum", "desiredHash", "objects"],
    },
  },
};

/**
 * The inputs as plain values: the builder needs them whole. A value another resource
 * computes arrives as an Output; one still unknown (a preview) cannot be built from.
 */
async function plain(value: unknown, field: string): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const o = value as pulumi.Output<unknown> & { isKnown: Promise<boolean>; promise(): Promise<unknown> };
    if (!(await o.isKnown))
      throw new Error(`${field}: must be known when the program runs, found an unknown value`);
    return plain(await o.promise(), field);
  }
  if (Array.isArray(value)) return Promise.all(value.map((v, i) => plain(v, `${field}[${i}]`)));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await plain(v, `${field}.${k}`);
    return out;
  }
  return value;
}

export const componentProvider: provider.Provider = {
  version: VERSION,
  getSchema: async () => JSON.stringify(SCHEMA),
  async construct(name, type, inputs, options) {
    if (type !== COMPONENT_TYPE)
      throw new Error(`unknown resource type ${type}; this provider has ${COMPONENT_TYPE}`);
    const args = (await plain(inputs, "args")) as VirtualMCPServerArgs;
    const component = new VirtualMCPServer(name, args, options);
    return {
      urn: component.urn,
      state: {
        url: component.url,
        configChecksum: component.configChecksum,
        desiredHash: component.desiredHash,
        objects: component.objects,
      },
    };
  },
};

/** The entry of bin/pulumi-resource-vmcp: serve the engine's gRPC calls. */
export function serve(args: string[]): Promise<void> {
  return provider.main(componentProvider, args);
}
