// The Pulumi side: declares the builder's objects with @pulumi/kubernetes. Everything
// interesting was decided by the pure builder; this module only maps manifests to
// resources and picks the provider settings that make updates safe.
import { randomBytes } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { DesiredState, Manifest } from "./desired.js";

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
}

export interface StackOutputs {
  url: string;
  configChecksum: string;
  desiredHash: string;
  objects: { kind: string; name: string }[];
}

/**
 * One field manager for every run, and force: an object left by a run that was killed
 * before it saved state, or a field edited by hand, is taken over instead of failing
 * with a server-side apply conflict (the provider's default manager is random per run).
 */
const SERVER_SIDE_APPLY = {
  "pulumi.com/patchFieldManager": "vmcp-operator",
  "pulumi.com/patchForce": "true",
};

type Ctor = new (name: string, args: never, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;
const KINDS: Record<string, Ctor> = {
  ServiceAccount: k8s.core.v1.ServiceAccount as unknown as Ctor,
  Role: k8s.rbac.v1.Role as unknown as Ctor,
  RoleBinding: k8s.rbac.v1.RoleBinding as unknown as Ctor,
  ConfigMap: k8s.core.v1.ConfigMap as unknown as Ctor,
  Deployment: k8s.apps.v1.Deployment as unknown as Ctor,
  Service: k8s.core.v1.Service as unknown as Ctor,
};

function withAnnotations(m: Manifest, extra: Record<string, string>): Manifest {
  return { ...m, metadata: { ...m.metadata, annotations: { ...m.metadata.annotations, ...extra } } };
}

/** Declares one VirtualMCPServer's objects. Call inside a Pulumi program. */
export function declareVmcp(desired: DesiredState, opts: ProgramOptions = {}): StackOutputs {
  const provider = new k8s.Provider("k8s", {
    kubeconfig: opts.kubeconfig,
    clusterIdentifier: opts.clusterIdentifier ?? "vmcp-operator",
    // Config changes must update the ConfigMap in place (the checksum rolls the pods);
    // the default would delete and recreate it.
    enableConfigMapMutable: true,
    // Server-side apply: creating an object that already exists (left by a crash
    // mid-update, unknown to state) adopts it instead of failing.
    enableServerSideApply: true,
  });
  const base: pulumi.CustomResourceOptions = { provider };

  const hmac = new k8s.core.v1.Secret(
    "hmac-secret",
    {
      metadata: {
        name: desired.hmacSecret.name,
        namespace: desired.namespace,
        ownerReferences: ownerRefsOf(desired),
      },
      type: "Opaque",
      data: pulumi.secret({ [desired.hmacSecret.key]: randomBytes(32).toString("base64") }),
    },
    {
      ...base,
      // Generated once: later runs keep the bytes already in the cluster and in (encrypted) state.
      ignoreChanges: ["data", "stringData"],
      additionalSecretOutputs: ["data", "stringData"],
      ...hmacSecretDeletion(desired),
    },
  );

  const skipAwait: Record<string, string> = opts.awaitReadiness ? {} : { "pulumi.com/skipAwait": "true" };
  for (const manifest of desired.objects) {
    const ctor = KINDS[manifest.kind];
    if (!ctor) throw new Error(`no resource type for kind ${manifest.kind}`);
    const m =
      manifest.kind === "Deployment" || manifest.kind === "Service"
        ? withAnnotations(manifest, skipAwait)
        : manifest;
    const dependsOn = manifest.kind === "Deployment" ? [hmac] : [];
    new ctor(`${manifest.kind.toLowerCase()}`, m as never, { ...base, dependsOn });
  }
  return stackOutputsOf(desired);
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
 * the controller) the provider deletes it.
 */
export function hmacSecretDeletion(desired: DesiredState): { retainOnDelete?: true } {
  return ownerRefsOf(desired)?.length ? { retainOnDelete: true } : {};
}

function ownerRefsOf(desired: DesiredState): k8s.types.input.meta.v1.OwnerReference[] | undefined {
  return desired.objects[0]?.metadata.ownerReferences as k8s.types.input.meta.v1.OwnerReference[] | undefined;
}
