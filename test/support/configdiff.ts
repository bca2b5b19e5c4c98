// Field-by-field comparison of two vmcp config.yaml documents: ours and the one ToolHive's
// operator writes for the same manifests. Both are flattened to leaf paths after the
// normalisations that do not change what vmcp reads (Go duration spellings, map order).

export type Leaves = Map<string, unknown>;

export interface Difference {
  path: string;
  ours: unknown;
  theirs: unknown;
}

// "1m0s", "60s", "1.5h", "300ms": Go's time.Duration spellings, compared as milliseconds.
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

function durationMs(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
  return total;
}

function normaliseLeaf(value: unknown): unknown {
  if (typeof value === "string" && DURATION.test(value)) return { durationMs: durationMs(value) };
  return value;
}

/** Leaf path → value; list items keyed by their `name` when they have one, else by index. */
export function flatten(value: unknown, path = "", out: Leaves = new Map()): Leaves {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, []);
    value.forEach((item, i) => {
      const named = item && typeof item === "object" && typeof (item as { name?: unknown }).name === "string";
      flatten(item, `${path}[${named ? (item as { name: string }).name : i}]`, out);
    });
  } else if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(path, {});
    for (const [k, v] of entries) flatten(v, path ? `${path}.${k}` : k, out);
  } else {
    out.set(path, normaliseLeaf(value));
  }
  return out;
}

/** Every leaf that is missing on one side or differs, sorted by path. */
export function compareConfigs(ours: unknown, theirs: unknown): Difference[] {
  const a = flatten(ours);
  const b = flatten(theirs);
  const diffs: Difference[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(path);
    const y = b.get(path);
    if (JSON.stringify(x) !== JSON.stringify(y)) diffs.push({ path, ours: x, theirs: y });
  }
  return diffs.sort((p, q) => p.path.localeCompare(q.path));
}
