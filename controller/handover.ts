// Taking over objects from the controller that made them (ToolHive's operator, before a
// migration). Server-side apply removes a field only when the applier owned it and stops
// declaring it, so a forced apply over ToolHive's Deployment would keep every field ToolHive
// set and we do not (its VMCP_NAME and VMCP_NAMESPACE env vars, which switch vmcp into
// writing the VirtualMCPServer's status itself). Handing the previous controller's field
// ownership to the stack's field manager first (as `kubectl` upgrades client-side-applied
// objects) makes our first apply remove them, in the same write that rolls the pods. The
// previous controller is the manager that set the owner reference to this VirtualMCPServer:
// fields of other managers (an injector's sidecar, labels, annotations) are not touched.
import type { ManagedFieldsEntry as Entry, ObjectMeta } from "./objects.js";

/** The field manager of stacks whose first apply took objects over from another controller. */
export const HANDOVER_FIELD_MANAGER = "vmcp-operator-stack";

type Fields = Record<string, unknown>;

/** Whether a manager's field set includes the owner reference to `uid`. */
function setOwnerRef(fields: unknown, uid: string): boolean {
  const refs = ((fields as Fields | undefined)?.["f:metadata"] as Fields | undefined)?.["f:ownerReferences"];
  return Boolean(refs && Object.keys(refs as Fields).some((k) => k === `k:{"uid":"${uid}"}`));
}

/** The union of two field sets (FieldsV1: nested objects, leaves `{}`). */
function union(a: Fields, b: Fields): Fields {
  const out: Fields = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? union(out[k] as Fields, v as Fields) : v;
  return out;
}

/**
 * The managedFields to write before the first apply, or undefined when there is nothing to
 * hand over: each Update entry (not of a subresource) whose fields include the owner
 * reference to `uid` becomes part of one Apply entry of `to`. Entries of our own managers
 * (names starting with "pulumi-kubernetes", `to`) are never previous controllers.
 */
export function handOver(meta: ObjectMeta, uid: string, to = HANDOVER_FIELD_MANAGER): Entry[] | undefined {
  const entries = meta.managedFields ?? [];
  const previous = (e: Entry) =>
    e.operation === "Update" &&
    !e.subresource &&
    e.manager !== to &&
    !e.manager?.startsWith("pulumi-kubernetes") &&
    setOwnerRef(e.fieldsV1, uid);
  const handed = entries.filter(previous);
  if (handed.length === 0) return undefined;
  const ours = entries.find((e) => e.manager === to && e.operation === "Apply" && !e.subresource);
  const apiVersion = ours?.apiVersion ?? handed[0]!.apiVersion;
  const fields = [ours, ...handed]
    .filter((e): e is Entry => e !== undefined && e.apiVersion === apiVersion)
    .reduce<Fields>((acc, e) => union(acc, (e.fieldsV1 ?? {}) as Fields), {});
  const rest = entries.filter((e) => e !== ours && !(previous(e) && e.apiVersion === apiVersion));
  return [...rest, { manager: to, operation: "Apply", apiVersion, fieldsType: "FieldsV1", fieldsV1: fields }];
}
