// What a VirtualMCPServer's podTemplateSpec may change in the vMCP pod. Creating a
// VirtualMCPServer makes the controller create a pod: without a policy, anyone allowed to
// create one could run any pod (host namespaces, hostPath, privileged) with the
// controller's rights. ToolHive allows the field unchecked; the controller checks the
// merged template against the one it would make by itself.
//   restricted   (default) no host namespaces or hostPath, nothing privileged or added,
//                the vmcp container's image/command/args kept, no weaker security context
//   baseline     no host namespaces, hostPath, privileged containers or added capabilities
//   unrestricted anything (ToolHive's behaviour)
export const POD_TEMPLATE_POLICIES = ["restricted", "baseline", "unrestricted"] as const;
export type PodTemplatePolicy = (typeof POD_TEMPLATE_POLICIES)[number];

export interface PolicyViolation {
  /** Where in the merged pod template, as a path under spec.podTemplateSpec. */
  path: string;
  message: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);
const at = (o: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((cur, k) => (isObj(cur) ? cur[k] : undefined), o);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

const ROOT = "spec.podTemplateSpec";
const ALLOWED_CAPABILITY = "NET_BIND_SERVICE";

function containersOf(spec: unknown): { field: string; c: Obj }[] {
  return ["containers", "initContainers", "ephemeralContainers"].flatMap((field) =>
    list(at(spec, field)).map((c) => ({ field, c })),
  );
}

/** Violations of `policy` by the merged template, compared with the template we make (`base`). */
export function podTemplateViolations(
  base: unknown,
  merged: unknown,
  vmcpContainer: string,
  policy: PodTemplatePolicy,
): PolicyViolation[] {
  if (policy === "unrestricted") return [];
  const out: PolicyViolation[] = [];
  const spec = at(merged, "spec");
  for (const field of ["hostNetwork", "hostPID", "hostIPC"] as const) {
    if (at(spec, field) === true)
      out.push({
        path: `${ROOT}.spec.${field}`,
        message: `host namespaces are not allowed (--pod-template-policy ${policy})`,
      });
  }
  for (const v of list(at(spec, "volumes")))
    if (at(v, "hostPath") !== undefined)
      out.push({
        path: `${ROOT}.spec.volumes[name=${String(v.name)}].hostPath`,
        message: `hostPath volumes are not allowed (--pod-template-policy ${policy})`,
      });
  for (const { field, c } of containersOf(spec)) {
    const where = `${ROOT}.spec.${field}[name=${String(c.name)}]`;
    const sc = at(c, "securityContext");
    if (at(sc, "privileged") === true)
      out.push({
        path: `${where}.securityContext.privileged`,
        message: `privileged containers are not allowed (--pod-template-policy ${policy})`,
      });
    const added = at(sc, "capabilities", "add");
    const extra = Array.isArray(added) ? added.filter((cap) => cap !== ALLOWED_CAPABILITY) : [];
    if (extra.length)
      out.push({
        path: `${where}.securityContext.capabilities.add`,
        message: `added capabilities (${extra.join(", ")}) are not allowed (--pod-template-policy ${policy})`,
      });
  }
  if (policy === "baseline") return out;

  // restricted: the vmcp container runs what we built, and nothing is weaker than ours.
  const mine = (tpl: unknown) => list(at(tpl, "spec", "containers")).find((c) => c.name === vmcpContainer);
  const ours = mine(base);
  const theirs = mine(merged);
  const where = `${ROOT}.spec.containers[name=${vmcpContainer}]`;
  if (!theirs)
    out.push({
      path: where,
      message: "the vmcp container may not be removed (--pod-template-policy restricted)",
    });
  else
    for (const field of ["image", "command", "args"] as const)
      if (!same(at(ours, field), at(theirs, field)))
        out.push({
          path: `${where}.${field}`,
          message: `the vmcp container's ${field} may not be changed (--pod-template-policy restricted; baseline allows it)`,
        });
  const weaker = (path: string, ourValue: unknown, theirValue: unknown): void => {
    if (ourValue !== undefined && !same(ourValue, theirValue))
      out.push({
        path,
        message: `may not differ from ${JSON.stringify(ourValue)} (--pod-template-policy restricted)`,
      });
  };
  for (const key of ["runAsNonRoot", "seccompProfile"])
    weaker(
      `${ROOT}.spec.securityContext.${key}`,
      at(base, "spec", "securityContext", key),
      at(spec, "securityContext", key),
    );
  if (theirs)
    for (const key of ["allowPrivilegeEscalation", "readOnlyRootFilesystem", "runAsNonRoot", "capabilities"])
      weaker(
        `${where}.securityContext.${key}`,
        at(ours, "securityContext", key),
        at(theirs, "securityContext", key),
      );
  for (const { field, c } of containersOf(spec)) {
    if (field === "containers" && c.name === vmcpContainer) continue;
    if (
      at(c, "securityContext", "allowPrivilegeEscalation") === true ||
      at(c, "securityContext", "runAsNonRoot") === false
    )
      out.push({
        path: `${ROOT}.spec.${field}[name=${String(c.name)}].securityContext`,
        message:
          "containers may not allow privilege escalation or run as root (--pod-template-policy restricted)",
      });
  }
  return out;
}
