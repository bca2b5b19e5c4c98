// The public entry point `vmcp-operator/pulumi`: the VirtualMCPServer component for a
// user's own Pulumi program, with no CRDs and no controller. The user gives the spec and
// the objects it refers to; they are validated with the same schemas as the CRDs, and built by the controller's builder.
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import {
  API_VERSIONS,
  STORAGE_VERSION,
  GROUP,
  OBJECT_SCHEMAS,
  formatFieldErrors,
  parseObject,
  type KindName,
  type VirtualMCPServer as VirtualMCPServerObject,
  type VirtualMCPServerSpecInput,
  type embeddingServerSchema,
  type mcpAuthzConfigSchema,
  type mcpExternalAuthConfigSchema,
  type mcpGroupSchema,
  type mcpOIDCConfigSchema,
  type mcpRemoteProxySchema,
  type mcpServerEntrySchema,
  type mcpServerSchema,
  type mcpTelemetryConfigSchema,
  type mcpToolConfigSchema,
  type virtualMCPCompositeToolDefinitionSchema,
} from "../api/index.js";
import { formatUnknownField, unknownFields } from "../api/unknownfields.js";
import type { DiscoveryOptions } from "./discovery.js";
import {
  gatherInputs,
  objectSet,
  type AnyObject,
  type ConfigMapData,
  type OperatorSettings,
  type VmcpInputs,
} from "./inputs.js";
import { DEFAULT_VMCP_IMAGE } from "./names.js";
import {
  COMPONENT_TYPE,
  desiredOf,
  VirtualMCPServer as Component,
  type ProgramOptions,
  type StackOutputs,
  type VirtualMCPServerArgs as ComponentArgs,
} from "./resources.js";

export { COMPONENT_TYPE, type StackOutputs };
export type { VirtualMCPServerSpecInput as VirtualMCPServerSpec } from "../api/index.js";

/** A ToolHive object as written in a manifest; apiVersion and metadata.namespace may be left out. */
type Written<S extends z.ZodType> = Omit<z.input<S>, "apiVersion"> & {
  apiVersion?: (typeof API_VERSIONS)[number];
};

/** An object a VirtualMCPServer's spec refers to, or a backend of its group. */
export type ToolHiveObject =
  | Written<typeof mcpGroupSchema>
  | Written<typeof mcpServerSchema>
  | Written<typeof mcpRemoteProxySchema>
  | Written<typeof mcpServerEntrySchema>
  | Written<typeof mcpExternalAuthConfigSchema>
  | Written<typeof mcpToolConfigSchema>
  | Written<typeof virtualMCPCompositeToolDefinitionSchema>
  | Written<typeof mcpOIDCConfigSchema>
  | Written<typeof mcpAuthzConfigSchema>
  | Written<typeof mcpTelemetryConfigSchema>
  | Written<typeof embeddingServerSchema>;

/** How the Kubernetes objects are applied. */
export interface DeployOptions {
  /** The vMCP image (default ghcr.io/stacklok/toolhive/vmcp:v0.44.0). */
  vmcpImage?: string;
  /** Kubeconfig contents for the component's provider; unset = $KUBECONFIG or ~/.kube/config. */
  kubeconfig?: string;
  /** Wait for the Deployment to roll out and the Service to get endpoints (default: no). */
  awaitReadiness?: boolean;
}

export interface VirtualMCPServerArgs extends DeployOptions {
  /** metadata.name of the VirtualMCPServer (names every object); default: the resource name. */
  name?: string;
  /** Where the objects go (default "default"); every object of `objects` must be there too. */
  namespace?: string;
  /** The VirtualMCPServer spec, exactly as in its manifest. */
  spec: VirtualMCPServerSpecInput;
  /**
   * The objects the spec names (MCPExternalAuthConfig, MCPToolConfig, …) and the backends
   * of its group (MCPServerEntry for a URL you run yourself, MCPServer, MCPRemoteProxy).
   * The MCPGroup of spec.groupRef is added when it is not among them.
   */
  objects?: ToolHiveObject[];
  /** ConfigMaps holding authz policies (spec.incomingAuth.authzConfig.type configMap). */
  configMaps?: { name: string; data: Record<string, string> }[];
}

type WithInputs = ProgramOptions & {
  inputs: VmcpInputs;
  settings: OperatorSettings;
  discovery: DiscoveryOptions;
};

const OBJECT_KINDS: readonly KindName[] = [
  "MCPGroup",
  "MCPServer",
  "MCPRemoteProxy",
  "MCPServerEntry",
  "MCPExternalAuthConfig",
  "MCPToolConfig",
  "VirtualMCPCompositeToolDefinition",
  "MCPOIDCConfig",
  "MCPAuthzConfig",
  "MCPTelemetryConfig",
  "EmbeddingServer",
];

const apiVersionOf = (o: { apiVersion?: unknown }) => o.apiVersion ?? `${GROUP}/${STORAGE_VERSION}`;

/** Thrown before any resource is registered: every problem of the args, each naming its field. */
export class InvalidArgsError extends Error {
  constructor(
    resourceName: string,
    readonly problems: string[],
  ) {
    super(`VirtualMCPServer ${resourceName}: invalid args:\n  ${problems.join("\n  ")}`);
    this.name = "InvalidArgsError";
  }
}

/** Validates the args with the CRDs' schemas and gathers the builder's inputs. */
export function componentArgsOf(resourceName: string, args: VirtualMCPServerArgs): WithInputs {
  const problems: string[] = [];
  const namespace = args.namespace ?? "default";
  const vmcpObject = {
    apiVersion: `${GROUP}/${STORAGE_VERSION}`,
    kind: "VirtualMCPServer",
    metadata: { name: args.name ?? resourceName, namespace },
    spec: args.spec,
  };
  // A field the schema does not know would be dropped by the parse: refuse it instead.
  problems.push(...unknown("args.", "VirtualMCPServer", vmcpObject));
  const vmcp = parseObject("VirtualMCPServer", vmcpObject);
  if (!vmcp.ok) problems.push(...prefixed("args.", vmcp.errors));
  const objects: AnyObject[] = [];
  (args.objects ?? []).forEach((o, i) => {
    const field = `args.objects[${i}]`;
    const kind = (o as { kind?: unknown }).kind;
    if (!OBJECT_KINDS.includes(kind as KindName)) {
      problems.push(
        `${field}.kind: expected one of ${OBJECT_KINDS.join(", ")}, found ${JSON.stringify(kind)}`,
      );
      return;
    }
    const meta = (o as { metadata?: { namespace?: string; name?: string } }).metadata;
    if (meta?.namespace !== undefined && meta.namespace !== namespace) {
      problems.push(
        `${field}.metadata.namespace: expected ${JSON.stringify(namespace)} (args.namespace), found ${JSON.stringify(meta.namespace)}`,
      );
      return;
    }
    const object = { ...o, apiVersion: apiVersionOf(o), metadata: { ...meta, namespace } };
    const label = `${field} (${String(kind)} ${meta?.name ?? "?"})`;
    problems.push(...unknown(`${label} `, kind as KindName, object));
    const parsed = parseObject(kind as KindName, object);
    if (parsed.ok) objects.push(parsed.value as AnyObject);
    else problems.push(...prefixed(`${label} `, parsed.errors));
  });
  const configMaps: ConfigMapData[] = (args.configMaps ?? []).map((c) => ({ ...c, namespace }));
  if (problems.length || !vmcp.ok) throw new InvalidArgsError(resourceName, problems);

  const group = vmcp.value.spec.groupRef.name;
  if (!objects.some((o) => o.kind === "MCPGroup" && o.metadata.name === group))
    objects.push({
      apiVersion: `${GROUP}/${STORAGE_VERSION}`,
      kind: "MCPGroup",
      metadata: { name: group, namespace },
      spec: {},
    } as AnyObject);
  return inputsArgs(vmcp.value, objectSet(objects, configMaps), args, { predictUrls: true });
}

function inputsArgs(
  vmcp: VirtualMCPServerObject,
  objects: ReturnType<typeof objectSet>,
  opts: DeployOptions,
  discovery: DiscoveryOptions,
): WithInputs {
  return {
    inputs: gatherInputs(objects, vmcp),
    settings: { vmcpImage: opts.vmcpImage ?? DEFAULT_VMCP_IMAGE },
    discovery,
    kubeconfig: opts.kubeconfig,
    awaitReadiness: opts.awaitReadiness ?? false,
    // Nothing outside this program owns these objects: destroy deletes all of them.
    deleteHmacSecret: true,
    legacyAliases: false,
  };
}

const unknown = (prefix: string, kind: KindName, object: unknown): string[] =>
  unknownFields(OBJECT_SCHEMAS[kind], object).map((f) => `${prefix}${formatUnknownField(f)}`);

const prefixed = (prefix: string, errors: Parameters<typeof formatFieldErrors>[0]): string[] =>
  formatFieldErrors(errors)
    .split("\n")
    .map((line) => `${prefix}${line}`);

/**
 * Builds the component's desired state now, so that a builder problem (a backend's auth
 * that cannot be resolved, …) fails before anything is registered, and its warnings are
 * shown once.
 */
function built(resourceName: string, args: WithInputs): ComponentArgs {
  const desired = desiredOf(args, (message) => void pulumi.log.warn(`${resourceName}: ${message}`));
  const { inputs: _inputs, settings: _settings, discovery: _discovery, ...options } = args;
  return { ...options, desired };
}

/**
 * A ToolHive VirtualMCPServer in your own Pulumi program: the vMCP Deployment, its
 * Service, ConfigMap, ServiceAccount, Role, RoleBinding and session HMAC Secret, applied
 * with a Kubernetes provider of its own (server-side apply). Outputs: `url` (in-cluster),
 * `configChecksum`, `desiredHash`, `objects`.
 */
export class VirtualMCPServer extends Component {
  constructor(name: string, args: VirtualMCPServerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(name, built(name, componentArgsOf(name, args)), opts);
  }
}
