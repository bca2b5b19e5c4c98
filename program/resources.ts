// The Pulumi side: one ComponentResource per VirtualMCPServer that declares the builder's
// objects with @pulumi/kubernetes. Everything interesting was decided by the pure
// builder; this module only maps manifests to resources and picks the provider settings
// that make updates safe.
import { randomBytes } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { build, type DesiredState, type Manifest, type ObjectRef } from "./desired.js";
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
   * Take fields other field managers own (server-side apply with force). The controller
   * sets it on a first apply over existing objects that adoptionStep let it own (ToolHive's
   * operator wrote them with updates: an apply without force conflicts on every field it
   * set); only the fields the stack declares are taken, the rest (an injector's sidecar,
   * labels) keep their owner. Later applies do not force: the stack owns its fields by then.
   * The root program sets it with vmcp:takeOver.
   */
  forceApply?: boolean;
  /**
   * The HMAC Secret exists but the stack does not hold it yet (ToolHive's operator made
   * it, or a crash came between create and state): declare it without data, so its bytes
   * (and the sessions signed with them) stay as they are.
   */
  adoptHmacSecret?: boolean;
  /**
   * The server-side apply field manager of every object (default: the provider's, random
   * per resource, kept in state). Set on a first apply after another controller's field
   * ownership was handed to this name (controller/handover.ts); the state keeps it.
   */
  fieldManager?: string;
  /**
   * Destroy deletes the HMAC Secret even when the VirtualMCPServer owns it (the root
   * program: a Secret it left behind holds its field manager on the data, and a
   * controller's later create of that Secret fails with an apply conflict).
   */
  deleteHmacSecret?: boolean;
  /**
   * Alias every child to the top-level name it had before the component existed (default:
   * yes), so that stacks of the controller and the root program made by earlier releases
   * update in place. A user's own program has no such stacks and turns it off: the aliases
   * are recorded in state, and two components aliasing the same old name cannot coexist.
   */
  legacyAliases?: boolean;
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
  /** Objects taken over at the first apply (DesiredState.adopted): kept on destroy. */
  adopted?: ObjectRef[];
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
/** The provider's annotation naming the server-side apply field manager. */
const FIELD_MANAGER_ANNOTATION = "pulumi.com/patchFieldManager";

function withAnnotations(m: Manifest, extra: Record<string, string>): Manifest {
  return { ...m, metadata: { ...m.metadata, annotations: { ...m.metadata.annotations, ...extra } } };
}

/** The desired state of `args`, building it when given the builder's inputs. */
export function desiredOf(args: VirtualMCPServerArgs, log: (message: string) => void): DesiredState {
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
      ...(args.legacyAliases === false
        ? {}
        : { aliases: [{ name: legacyName, parent: pulumi.rootStackResource }] }),
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

    const taken = takeOver(desired);
    const hmacTaken = taken("Secret", desired.hmacSecret.name);
    const hmac = new k8s.core.v1.Secret(
      `${name}-hmac-secret`,
      {
        metadata: {
          name: desired.hmacSecret.name,
          namespace: desired.namespace,
          ownerReferences: hmacTaken.adopted ? undefined : ownerRefsOf(desired),
          // A Secret another manager wrote holds its `.data`: without force the create conflicts.
          ...(args.forceApply || hmacTaken.force ? { annotations: FORCE } : {}),
        },
        type: "Opaque",
        ...(args.adoptHmacSecret
          ? {}
          : { data: pulumi.secret({ [desired.hmacSecret.key]: randomBytes(32).toString("base64") }) }),
      },
      // Generated once: later runs keep the bytes already in the cluster and in (encrypted) state.
      {
        ...child("hmac-secret"),
        provider,
        ignoreChanges: ["data", "stringData"],
        additionalSecretOutputs: ["data", "stringData"],
        ...(hmacTaken.adopted
          ? { retainOnDelete: true }
          : hmacSecretDeletion(desired, args.deleteHmacSecret)),
      },
    );

    const skipAwait: Record<string, string> = args.awaitReadiness ? {} : { "pulumi.com/skipAwait": "true" };
    const force: Record<string, string> = {
      ...(args.forceApply ? FORCE : {}),
      ...(args.fieldManager ? { [FIELD_MANAGER_ANNOTATION]: args.fieldManager } : {}),
    };
    const created = new Map<string, pulumi.CustomResource>();
    for (const declared of desired.objects) {
      const ctor = KINDS[declared.kind];
      if (!ctor) throw new Error(`no resource type for kind ${declared.kind}`);
      const t = taken(declared.kind, declared.metadata.name);
      const manifest = t.adopted ? withoutOwner(declared) : declared;
      const forced = t.force ? { ...force, ...FORCE } : force;
      const extra =
        manifest.kind === "Deployment" || manifest.kind === "Service" ? { ...skipAwait, ...forced } : forced;
      const m = Object.keys(extra).length ? withAnnotations(manifest, extra) : manifest;
      const kind = manifest.kind.toLowerCase();
      // The ConfigMap is written before the Deployment's template changes, so a new pod
      // mounts (and loads) the config its checksum annotation names, never the previous one.
      const configMap = created.get("ConfigMap");
      const dependsOn = manifest.kind === "Deployment" ? [hmac, ...(configMap ? [configMap] : [])] : [];
      // Every object has a fixed name, so its replacement (an immutable field changed, e.g. a
      // Deployment's selector) cannot be created next to it: delete it first.
      const resource = new ctor(`${name}-${kind}`, m as never, {
        ...child(kind),
        provider,
        dependsOn,
        deleteBeforeReplace: true,
        // Not ours: destroy leaves it (state records the option, so a destroy needs no program).
        ...(t.adopted ? { retainOnDelete: true } : {}),
      });
      created.set(manifest.kind, resource);
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
    ...(desired.adopted?.length ? { adopted: desired.adopted } : {}),
  };
}

/**
 * How the stack treats an object it did not create: adopted (not this VirtualMCPServer's:
 * no owner reference, kept on destroy) and pre-existing at the first apply (taken with
 * force then, so the fields another manager wrote, e.g. ToolHive's operator or whoever
 * made an adopted object, do not conflict; later applies do not force).
 */
export function takeOver(
  desired: DesiredState,
): (kind: string, name: string) => { adopted: boolean; force: boolean } {
  const has = (list: ObjectRef[] | undefined, kind: string, name: string) =>
    (list ?? []).some((o) => o.kind === kind && o.name === name);
  return (kind, name) => ({
    adopted: has(desired.adopted, kind, name),
    force: has(desired.preexisting, kind, name),
  });
}

function withoutOwner(m: Manifest): Manifest {
  const { ownerReferences: _dropped, ...metadata } = m.metadata;
  return { ...m, metadata };
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
