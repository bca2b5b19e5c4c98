// The part of Kubernetes' strategic merge patch that a podTemplateSpec override needs:
// maps merge deeply, lists of named items (containers, volumes, env, ports…) merge by
// their key, other lists replace, and an explicit null deletes.
type Obj = Record<string, unknown>;

const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  volumes: "name",
  env: "name",
  imagePullSecrets: "name",
  ports: "containerPort",
  volumeMounts: "mountPath",
};

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function mergeList(base: unknown[], patch: unknown[], key: string): unknown[] {
  const out = [...base];
  for (const item of patch) {
    const idx = isObj(item) ? out.findIndex((b) => isObj(b) && b[key] === item[key]) : -1;
    if (idx >= 0) out[idx] = strategicMerge(out[idx], item);
    else out.push(item);
  }
  return out;
}

export function strategicMerge(base: unknown, patch: unknown, field = ""): unknown {
  if (patch === undefined) return base;
  if (Array.isArray(base) && Array.isArray(patch) && MERGE_KEYS[field])
    return mergeList(base, patch, MERGE_KEYS[field]);
  if (!isObj(base) || !isObj(patch)) return patch;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = strategicMerge(out[k], v, k);
  }
  return out;
}
