// Fields a manifest sets that our schema does not know. zod strips them and the API server
// prunes them, so a typo (`serviceTyp`) would silently become a default: name each one,
// with the nearest known field, the way `kubectl apply` warns under field validation.
import type { z } from "zod";

export interface UnknownField {
  path: string;
  /** The closest known field at the same place, when one is close enough to be a typo. */
  suggestion?: string;
}

type Def = {
  type?: string;
  innerType?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  in?: z.ZodType;
  out?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
};
const defOf = (s: z.ZodType | undefined): Def => (s as unknown as { _zod?: { def?: Def } })?._zod?.def ?? {};

/** The schema without its optional/default/nullable/pipe wrappers. */
function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let cur = schema;
  for (let i = 0; i < 10 && cur; i++) {
    const def = defOf(cur);
    const next =
      def.innerType ??
      (def.type === "pipe" ? def.in : undefined) ??
      (def.type === "lazy" ? undefined : undefined);
    if (!next) return cur;
    cur = next;
  }
  return cur;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(
        row[j]! + 1,
        row[j - 1]! + 1,
        prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1),
      );
      prev = cur;
    }
  }
  return row[b.length]!;
}

function nearest(name: string, known: readonly string[]): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const key of known) {
    const d = distance(name, key);
    if (!best || d < best.d) best = { key, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 4)) ? best.key : undefined;
}

/**
 * Every key of `raw` that `schema` does not declare, as a dotted path (`[i]` for list
 * items). Objects the schema keeps open (preserve-unknown-fields) are not descended into.
 */
export function unknownFields(schema: z.ZodType, raw: unknown, path = ""): UnknownField[] {
  const s = unwrap(schema);
  const def = defOf(s);
  if (raw === null || typeof raw !== "object") return [];
  if (Array.isArray(raw)) {
    if (def.type !== "array") return [];
    return raw.flatMap((item, i) => unknownFields(def.element as z.ZodType, item, `${path}[${i}]`));
  }
  if (def.type === "record")
    return Object.entries(raw).flatMap(([k, v]) =>
      unknownFields(def.valueType as z.ZodType, v, path ? `${path}.${k}` : k),
    );
  if (def.type === "union" && def.options) {
    // The member that explains the most keys: report only against it.
    const candidates = def.options.map((o) => unknownFields(o, raw, path));
    return candidates.reduce((a, b) => (b.length < a.length ? b : a), candidates[0] ?? []);
  }
  if (def.type !== "object" || !def.shape) return [];
  const catchall = defOf(s as z.ZodType) as { catchall?: z.ZodType };
  const open = catchall.catchall !== undefined && defOf(catchall.catchall).type !== "never";
  const known = Object.keys(def.shape);
  const out: UnknownField[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const at = path ? `${path}.${key}` : key;
    const field = def.shape[key];
    if (field) out.push(...unknownFields(field, value, at));
    else if (!open) {
      const suggestion = nearest(key, known);
      out.push({ path: at, ...(suggestion ? { suggestion } : {}) });
    }
  }
  return out;
}

export function formatUnknownField(f: UnknownField): string {
  return `unknown field "${f.path}"${f.suggestion ? ` (did you mean "${f.suggestion}"?)` : ""}`;
}
