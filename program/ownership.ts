// May `pulumi up` of the root project apply a VirtualMCPServer's objects? Not when a
// controller already manages them: two owners of one object take turns overwriting it
// (server-side-apply conflicts on the fields they disagree on), and `pulumi destroy`
// would delete what the controller applied. Pure: program/clusterobjects.ts reads the facts.
import * as n from "./names.js";

/** The parts of an object's metadata the check reads, as the API server sends them. */
export interface LiveMeta {
  uid?: string;
  finalizers?: string[];
  ownerReferences?: { kind?: string; name?: string; apiVersion?: string; uid?: string }[];
  managedFields?: { manager?: string; operation?: string; subresource?: string }[];
}

export interface OwnershipFacts {
  /** manifests: vmcp:manifests; cluster: the VirtualMCPServer read from the cluster. */
  mode: "manifests" | "cluster";
  namespace: string;
  name: string;
  /** The VirtualMCPServer of that namespace and name in the cluster, if there is one. */
  live: LiveMeta | undefined;
  /** Objects of the VirtualMCPServer's derived names that exist (see derivedObjects). */
  existing: readonly { kind: string; name: string; metadata: LiveMeta }[];
}

/**
 * The objects whose names the stack would apply, by kind. The HMAC Secret is left out on
 * purpose: reading it would bring its bytes into the program, and every stack that has
 * one has the Deployment that mounts it.
 */
export function derivedObjects(name: string): { kind: DerivedKind; name: string }[] {
  return [
    { kind: "ServiceAccount", name: n.rbacName(name) },
    { kind: "Role", name: n.rbacName(name) },
    { kind: "RoleBinding", name: n.rbacName(name) },
    { kind: "ConfigMap", name: n.configMapName(name) },
    { kind: "Deployment", name: n.deploymentName(name) },
    { kind: "Service", name: n.serviceName(name) },
  ];
}
export type DerivedKind = "ServiceAccount" | "Role" | "RoleBinding" | "ConfigMap" | "Deployment" | "Service";

/** The config key that skips the refusal (and forces server-side apply over conflicts). */
export const TAKE_OVER_KEY = "vmcp:takeOver";

const managers = (meta: LiveMeta, subresource?: string): string[] => [
  ...new Set(
    (meta.managedFields ?? [])
      .filter((f) => (subresource ? f.subresource === subresource : true))
      .map((f) => f.manager)
      .filter((m): m is string => Boolean(m)),
  ),
];

/**
 * Who manages a VirtualMCPServer, as far as its metadata says: a finalizer (a controller
 * cleans up before it goes) and the writers of its status. Empty: nobody claims it.
 */
export function controllersOf(vmcp: LiveMeta): string[] {
  const out = (vmcp.finalizers ?? []).map((f) =>
    f === n.FINALIZER ? `the vmcp-operator controller (finalizer ${f})` : `finalizer ${f}`,
  );
  const writers = managers(vmcp, "status");
  if (writers.length) out.push(`status written by ${writers.join(", ")}`);
  return out;
}

function vmcpOwners(meta: LiveMeta) {
  return (meta.ownerReferences ?? []).filter(
    (r) => r.kind === "VirtualMCPServer" && (r.apiVersion ?? "").startsWith("toolhive.stacklok.dev/"),
  );
}

export interface Refusal {
  /** What is not this stack's, one entry per object. */
  claims: string[];
  /** The claims, that nothing changed, and the ways to proceed. */
  message: string;
}

/**
 * The refusal, or undefined when the stack may go ahead. Refused when:
 * - manifests: a VirtualMCPServer of that namespace and name exists in the cluster (the
 *   cluster's copy is the one that counts; the manifests would race whatever manages it);
 * - cluster: the VirtualMCPServer is claimed by a controller (a finalizer, a status writer);
 * - either: an object of a derived name is owned by a VirtualMCPServer that is not the one
 *   this stack renders (in cluster mode the live one's own objects are this stack's).
 */
export function ownershipRefusal(facts: OwnershipFacts): Refusal | undefined {
  const vmcp = `VirtualMCPServer ${facts.namespace}/${facts.name}`;
  const claims: string[] = [];
  const controllers = facts.live ? controllersOf(facts.live) : [];
  if (facts.mode === "manifests" && facts.live)
    claims.push(
      `${vmcp} exists in the cluster (${controllers.length ? `managed by ${controllers.join("; ")}` : "no controller claims it: no finalizer, no status writer"})`,
    );
  if (facts.mode === "cluster" && facts.live && controllers.length)
    claims.push(`${vmcp} is managed by ${controllers.join("; ")}`);
  const ownUid = facts.mode === "cluster" ? facts.live?.uid : undefined;
  let owned = 0;
  for (const o of facts.existing) {
    const owners = vmcpOwners(o.metadata).filter((r) => !ownUid || r.uid !== ownUid);
    if (!owners.length) continue;
    owned++;
    const by = managers(o.metadata);
    claims.push(
      `${o.kind} ${o.name} is owned by ${owners.map((r) => `VirtualMCPServer ${r.name ?? "?"}`).join(", ")}` +
        (by.length ? ` (field managers ${by.join(", ")})` : ""),
    );
  }
  if (!claims.length) return undefined;
  const managed = controllers.length > 0 || owned > 0;
  const ways = [
    facts.mode === "manifests" && facts.live && !controllers.length
      ? `render it from the cluster instead: \`pulumi config rm vmcp:manifests\` with vmcp:namespace=${facts.namespace} and vmcp:name=${facts.name}`
      : undefined,
    managed
      ? `let the controller apply it: \`kubectl apply --server-side -f <manifests>\`, and see what that would change with \`vmcpctl preview -f <manifests>\` (or \`vmcpctl render\` with no cluster)`
      : undefined,
    `take the objects over from this stack: \`pulumi config set ${TAKE_OVER_KEY} true\` (its applies then force their fields, and \`pulumi destroy\` deletes them: stop the controller managing ${facts.namespace}/${facts.name} first)`,
  ].filter(Boolean);
  return {
    claims,
    message:
      `not applying ${vmcp} from this stack: ${claims.join("; ")}. ` +
      `Nothing was changed. To proceed, ${ways.join("; or ")}.`,
  };
}
