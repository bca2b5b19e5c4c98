// Building blocks shared by every ToolHive kind: API group constants, Kubernetes scalar
// conventions (int32/int64, durations, conditions) and the object envelope.
import { z } from "zod";

export const GROUP = "toolhive.stacklok.dev";
/** Every kind is served in both versions with one schema, so no conversion webhook is needed. */
export const VERSIONS = ["v1beta1", "v1alpha1"] as const;
export type ApiVersionName = (typeof VERSIONS)[number];
export const STORAGE_VERSION: ApiVersionName = "v1beta1";
export const DEPRECATED_VERSIONS: readonly ApiVersionName[] = ["v1alpha1"];
export const API_VERSIONS = VERSIONS.map((v) => `${GROUP}/${v}` as const);

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** An int32 field; the CRD generator renders `format: int32` and drops the implicit bounds. */
export const int32 = () => z.int().min(INT32_MIN).max(INT32_MAX).meta({ format: "int32" });
/** An int64 field (generations); JS numbers are exact up to 2^53, which is plenty. */
export const int64 = () => z.int().meta({ format: "int64" });

/** Go's time.ParseDuration syntax, as ToolHive's CRDs pattern-check durations. */
export const DURATION_PATTERN = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
export const duration = () => z.string().regex(DURATION_PATTERN);

/** http(s) URL prefix check, written without escaped slashes so the CRD pattern reads as ToolHive's. */
export const HTTP_URL = new RegExp("^https?://");

/**
 * Marks a defaulted field as required in the CRD, as kubebuilder does for `+required` fields
 * with a default: the API server defaults before it checks, so users may still omit it.
 */
export const REQUIRED_WITH_DEFAULT = "x-vmcp-required";
export const requiredWithDefault = { [REQUIRED_WITH_DEFAULT]: true } as const;

/** RFC 3339 timestamp as the API server serialises it; kept a string so round-trips are exact. */
export const timestamp = () => z.string().meta({ format: "date-time" });

/** Free-form object (JSON Schema, Go RawExtension, out-of-scope config): kept, never pruned. */
export const freeform = () => z.record(z.string(), z.unknown());

/** `{name}` reference to an object of another kind in the same namespace. */
export const nameRef = () => z.object({ name: z.string() });
/** `{name}` reference where the CRD requires a non-empty name. */
export const requiredNameRef = () => z.object({ name: z.string().min(1) });

export const secretKeyRef = () => z.object({ name: z.string(), key: z.string() });

/** A CA bundle from a ConfigMap key (ToolHive's CABundleSource). */
export const caBundleSource = () =>
  z.object({
    configMapRef: z
      .object({ name: z.string().default(""), key: z.string(), optional: z.boolean().optional() })
      .meta({ "x-kubernetes-map-type": "atomic" })
      .optional(),
  });

/** metav1.Condition, exactly as the API server validates it. */
export const conditionSchema = z.object({
  type: z
    .string()
    .max(316)
    .regex(
      new RegExp(
        "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
      ),
    ),
  status: z.enum(["True", "False", "Unknown"]),
  observedGeneration: int64().min(0).optional(),
  lastTransitionTime: timestamp(),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof conditionSchema>;

/** Conditions list keyed by type (server-side apply merges per type). */
export const conditions = () =>
  z.array(conditionSchema).meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

/** A list of distinct strings (kubebuilder listType=set). */
export const stringSet = () => z.array(z.string()).meta({ "x-kubernetes-list-type": "set" });
/** A list replaced as a whole on merge (kubebuilder listType=atomic). */
export const atomicList = <T extends z.ZodType>(item: T) =>
  z.array(item).meta({ "x-kubernetes-list-type": "atomic" });

export const ownerReferenceSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof ownerReferenceSchema>;

/** The ObjectMeta fields the operator reads or writes; anything else (managedFields…) is kept. */
export const objectMetaSchema = z.looseObject({
  name: z.string().min(1),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
  finalizers: z.array(z.string()).optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;

/**
 * The typed envelope of a ToolHive object. `spec` is required only for kinds whose spec has
 * required fields; `status` is always optional (new objects have none).
 */
export function kubeObject<K extends string, Spec extends z.ZodType, Status extends z.ZodType>(
  kind: K,
  spec: Spec,
  status: Status,
) {
  return z.object({
    apiVersion: z.enum(API_VERSIONS),
    kind: z.literal(kind),
    metadata: objectMetaSchema,
    spec,
    status: status.optional(),
  });
}
