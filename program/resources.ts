// The Pulumi side: one ComponentResource per VirtualMCPServer that declares the builder's
// objects with @pulumi/kubernetes. Everything interesting was decided by the pure
// builder; this module only maps manifests to resources and picks the provider settings
// that make updates safe.
import { randomBytes } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { build, type DesiredState, type Manifest } from "./desired.js";
import type { DiscoveryOptions } from "./discovery.js";
import type { OperatorSettings, VmcpInputs } from "./inputs.js";

/** The component's type token: what `pulumi stack --show-urns` and previews show. */
export const COMPONENT_TYPE = "vmcp:kubernetes:VirtualMCPServer";

export interface ProgramOptions {
  /** Kubeconfig contents or path; unset = the ambient one ($KUBECONFIG, in-cluster). */
  kubeconfig?: string;
  /**
   * Names the cluster in state. Pinned so that a rotated kubeconfig (a new token, a
   * moved API server) does not replace the provider and with it every object.
   */
  clusterIdentifier?: string;
  /** Wait for the Deployment to roll out and the Service to get endpoints (default: no). */
  awaitReadiness?: boolean;
  /**
   * Take fields other field managers own (server-side apply with force): the root
   * program's vmcp:takeOver. The controller never sets it.
   */
  forceApply?: boolean;
  /**
   * Destroy deletes the HMAC Secret even when the VirtualMCPServer owns it (the root
   * program: a Secret it left behind holds its field manager on the data, and a
   * controller's later create of that Secret fails with an apply conflict).
   */
  deleteHmacSecret?: boolean;
}

/**
 * What to deploy: either the builder's inputs (one VirtualMCPServer and the objects it
 * references, as `gatherInputs` collects them), which the component builds, or a state
 * the caller already built (the controller: it deploys exactly the hash it compared).
 * Plain values, not Pulumi inputs: the builder needs them whole to name and hash objects.
 */
export type VirtualMCPServerArgs = ProgramOptions &
  (
    | { inputs: VmcpInputs; settings: OperatorSettings; discovery?: DiscoveryOptions; desired?: never }
    | { desired: DesiredState; inputs?: never }
  );

export interface StackOutputs {
  url: string;
  configChecksum: string;
  desiredHash: string;
  objects: { kind: string; name: string }[];
}

type Ctor = new (name: string, args: never, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;
const KINDS: Record<string, Ctor> = {
  ServiceAccount: k8s.core.v1.ServiceAccount as unknown as Ctor,
  Role: k8s.rbac.v1.Role as unknown as Ctor,
  RoleBinding: k8s.rbac.v1.RoleBinding as unknown as Ctor,
  ConfigMap: k8s.core.v1.ConfigMap as unknown as Ctor,
  Deployment: k8s.apps.v1.Deployment as unknown as Ctor,
  Service: k8s.core.v1.Service as unknown as Ctor,
  PodDisruptionBudget: k8s.policy.v1.PodDisruptionBudget as unknown as Ctor,
};

/** The provider's annotation for a server-side apply with force (it takes conflicting fields). */
const FORCE: Record<string, string> = { "pulumi.com/patchForce": "true" };

function withAnnotations(m: Manifest, extra: Record<string, string>): Manifest {
  return { ...m, metadata: { ...m.metadata, annotations: { ...m.metadata.annotations, ...extra } } };
}

/** The desired state of `args`, building it when given the builder's inputs. */
function desiredOf(args: VirtualMCPServerArgs, log: (message: string) => void): DesiredState {
  if (args.desired) return args.desired;
  const b = build(args.inputs, args.settings, args.discovery);
  for (const u of b.discovery.unresolved) log(`backend ${u.kind} ${u.name} left out: ${u.reason}`);
  for (const p of b.auth.problems) log(`outgoing auth for ${p.scope}: ${p.message}`);
  for (const w of b.warnings) log(w);
  if (!b.desired) {
    const vmcp = `${args.inputs.vmcp.metadata.namespace ?? "default"}/${args.inputs.vmcp.metadata.name}`;
    throw new Error(`VirtualMCPServer ${vmcp}: ${b.problems.map((p) => p.message).join("; ")}`);
  }
  return b.desired;
}

/**
 * One ToolHive VirtualMCPServer: its Kubernetes provider, ServiceAccount, Role,
 * RoleBinding, ConfigMap, Deployment, Service, PodDisruptionBudget (replicas > 1) and HMAC
 * Secret, as children.
 *
 * Children are named `<name>-<kind>` so that several components fit in one program.
 * Stacks created before the component held the same objects at the top level under
 * the bare kind names; `aliases` carry them over, so upgrading replaces nothing.
 */
export class VirtualMCPServer extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly configChecksum: pulumi.Output<string>;
  readonly desiredHash: pulumi.Output<string>;
  readonly objects: pulumi.Output<StackOutputs["objects"]>;
  /** The same values, plain: they are a pure function of the desired state. */
  readonly stackOutputs: StackOutputs;

  constructor(name: string, args: VirtualMCPServerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(COMPONENT_TYPE, name, {}, opts);
    const desired = desiredOf(args, (message) => void pulumi.log.warn(message, this));
    // The logical name a child had at the top of a stack before the component existed.
    const child = (legacyName: string): pulumi.CustomResourceOptions => ({
      parent: this,
      aliases: [{ name: legacyName, parent: pulumi.rootStackResource }],
    });

    const provider = new k8s.Provider(
      `${name}-k8s`,
      {
        kubeconfig: args.kubeconfig,
        clusterIdentifier: args.clusterIdentifier ?? "vmcp-operator",
        // Config changes must update the ConfigMap in place (the checksum rolls the pods);
        // the default would delete and recreate it.
        enableConfigMapMutable: true,
        // Server-side apply: creating an object that already exists (left by a crash
        // mid-update, unknown to state) adopts it instead of failing.
        enableServerSideApply: true,
      },
      child("k8s"),
    );

    const hmac = new k8s.core.v1.Secret(
      `${name}-hmac-secret`,
      {
        metadata: {
          name: desired.hmacSecret.name,
          namespace: desired.namespace,
          ownerReferences: ownerRefsOf(desired),
          ...(args.forceApply ? { annotations: FORCE } : {}),
        },
        type: "Opaque",
        data: pulumi.secret({ [desired.hmacSecret.key]: randomBytes(32).toString("base64") }),
      },
      // Generated once: later runs keep the bytes already in the cluster and in (encrypted) state.
      {
        ...child("hmac-secret"),
        provider,
        ignoreChanges: ["data", "stringData"],
        additionalSecretOutputs: ["data", "stringData"],
        ...hmacSecretDeletion(desired, args.deleteHmacSecret),
      },
    );

    const skipAwait: Record<string, string> = args.awaitReadiness ? {} : { "pulumi.com/skipAwait": "true" };
    const force = args.forceApply ? FORCE : {};
    const declared = new Map<string, pulumi.CustomResource>();
    for (const manifest of desired.objects) {
      const ctor = KINDS[manifest.kind];
      if (!ctor) throw new Error(`no resource type for kind ${manifest.kind}`);
      const extra =
        manifest.kind === "Deployment" || manifest.kind === "Service" ? { ...skipAwait, ...force } : force;
      const m = Object.keys(extra).length ? withAnnotations(manifest, extra) : manifest;
      const kind = manifest.kind.toLowerCase();
      // The ConfigMap is written before the Deployment's template changes, so a new pod
      // mounts (and loads) the config its checksum annotation names, never the previous one.
      const configMap = declared.get("ConfigMap");
      const dependsOn = manifest.kind === "Deployment" ? [hmac, ...(configMap ? [configMap] : [])] : [];
      // Every object has a fixed name, so its replacement (an immutable field changed, e.g. a
      // Deployment's selector) cannot be created next to it: delete it first.
      const resource = new ctor(`${name}-${kind}`, m as never, {
        ...child(kind),
        provider,
        dependsOn,
        deleteBeforeReplace: true,
      });
      declared.set(manifest.kind, resource);
    }

    this.stackOutputs = stackOutputsOf(desired);
    this.url = pulumi.output(this.stackOutputs.url);
    this.configChecksum = pulumi.output(this.stackOutputs.configChecksum);
    this.desiredHash = pulumi.output(this.stackOutputs.desiredHash);
    this.objects = pulumi.output(this.stackOutputs.objects);
    this.registerOutputs({ ...this.stackOutputs });
  }
}

/** What the program exports: a pure function of the desired state. */
export function stackOutputsOf(desired: DesiredState): StackOutputs {
  return {
    url: desired.url,
    configChecksum: desired.configChecksum,
    desiredHash: desired.hash,
    objects: desired.objects.map((o) => ({ kind: o.kind, name: o.metadata.name })),
  };
}

/**
 * Who deletes the HMAC Secret. The provider's delete waits for the object to be gone through
 * an informer over every Secret of the namespace (list + watch: every Secret's data). Owned
 * by the VirtualMCPServer, the Secret is left to the garbage collector, which deletes it
 * with its owner, so the chart need not grant that. Without an owner (a stack made outside
 * the controller) or when asked (`always`), the provider deletes it.
 */
export function hmacSecretDeletion(desired: DesiredState, always = false): { retainOnDelete?: true } {
  return !always && ownerRefsOf(desired)?.length ? { retainOnDelete: true } : {};
}

function ownerRefsOf(desired: DesiredState): k8s.types.input.meta.v1.OwnerReference[] | undefined {
  return desired.objects[0]?.metadata.ownerReferences as k8s.types.input.meta.v1.OwnerReference[] | undefined;
}
