// Canonical serialisation: the same value always gives the same bytes, whatever the
// insertion order of its keys. Every hash and every rendered file goes through here,
// because ToolHive's worst bugs were update hot-loops caused by unstable output.
import { createHash } from "node:crypto";
import { stringify } from "yaml";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Deep copy with object keys sorted and `undefined` members dropped. */
export function canonicalize(value: unknown): Json {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" || typeof value === "string" || typeof value === "boolean") return value;
    return null;
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonicalize(v)));
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = canonicalize(v);
  }
  return out;
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalize(value));
}

export function canonicalYaml(value: unknown): string {
  return stringify(canonicalize(value), { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false });
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
