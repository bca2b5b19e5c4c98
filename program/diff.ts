// What a manifest change does to the generated objects, computed offline: per object
// created/updated/deleted with field-level changes (old → new), a line diff of the vmcp
// config.yaml, and warnings for changes that disrupt traffic. Pure.
import { canonicalJson } from "./canonical.js";
import type { Manifest } from "./desired.js";
import type { Rendered } from "./render.js";

export interface FieldChange {
  path: string;
  old?: unknown;
  new?: unknown;
}

export interface ObjectChange {
  vmcp: string;
  kind: string;
  namespace: string;
  name: string;
  op: "create" | "update" | "replace" | "delete";
  fields: FieldChange[];
}

export interface VmcpDiff {
  vmcp: string;
  changes: ObjectChange[];
  /** Unified-style line diff of config.yaml ("" when unchanged). */
  configDiff: string;
  warnings: string[];
}

export interface DiffResult {
  vmcps: VmcpDiff[];
  summary: { create: number; update: number; replace: number; delete: number };
}

const MASK = "(secret)";

/** Flattens an object into path → scalar; named list items are addressed by name. */
export function flatten(value: unknown, prefix = "", out = new Map<string, unknown>()): Map<string, unknown> {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(prefix, []);
    value.forEach((item, i) => {
      const named = item && typeof item === "object" && typeof (item as { name?: unknown }).name === "string";
      flatten(item, `${prefix}[${named ? `name=${(item as { name: string }).name}` : i}]`, out);
    });
  } else if (value && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(prefix, {});
    for (const [k, v] of entries) {
      const key = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : `"${k}"`;
      flatten(v, prefix ? (key.startsWith('"') ? `${prefix}[${key}]` : `${prefix}.${key}`) : key, out);
    }
  } else {
    out.set(prefix, value);
  }
  return out;
}

function masked(kind: string, path: string, v: unknown): unknown {
  return kind === "Secret" && /^(data|stringData)\b/.test(path) ? MASK : v;
}

export function objectFieldChanges(
  kind: string,
  before: Manifest | undefined,
  after: Manifest | undefined,
): FieldChange[] {
  const a = flatten(before ?? {});
  const b = flatten(after ?? {});
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: FieldChange[] = [];
  for (const p of paths) {
    // The config text has its own line diff; its checksum is noise here.
    if (p === 'data["config.yaml"]') continue;
    const x = a.get(p);
    const y = b.get(p);
    if (canonicalJson(x) === canonicalJson(y)) continue;
    out.push({
      path: p,
      old: a.has(p) ? masked(kind, p, x) : undefined,
      new: b.has(p) ? masked(kind, p, y) : undefined,
    });
  }
  return out;
}

/** Line diff (longest common subsequence), with `context` unchanged lines around changes. */
export function lineDiff(before: string, after: string, context = 2): string {
  if (before === after) return "";
  const a = before.split("\n");
  const b = after.split("\n");
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--)
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const lines: { tag: " " | "-" | "+"; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ tag: " ", text: a[i++]! });
      j++;
    } else if (i < a.length && (j >= b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      lines.push({ tag: "-", text: a[i++]! });
    } else lines.push({ tag: "+", text: b[j++]! });
  }
  const keep = lines.map((l, k) =>
    lines.slice(Math.max(0, k - context), k + context + 1).some((n) => n.tag !== " "),
  );
  const out: string[] = [];
  lines.forEach((l, k) => {
    if (keep[k]) out.push(`${l.tag} ${l.text}`);
    else if (keep[k - 1]) out.push("@@");
  });
  return out.join("\n");
}

export function disruptions(change: ObjectChange): string[] {
  const at = `${change.kind} ${change.namespace}/${change.name}`;
  const w: string[] = [];
  if (change.op === "delete" && (change.kind === "Deployment" || change.kind === "Service"))
    w.push(`${at} is deleted: the virtual MCP endpoint goes away`);
  // A created object changes nothing that runs; only an update or replacement disrupts.
  if (change.op !== "update" && change.op !== "replace") return w;
  if (change.kind === "Deployment" && change.fields.some((f) => f.path.startsWith("spec.selector")))
    w.push(`${at}: spec.selector changes, which forces a replacement (downtime)`);
  for (const f of change.fields) {
    if (change.kind === "Service" && f.path === "spec.type")
      w.push(
        `${at}: Service type ${String(f.old)} → ${String(f.new)} (clients and load balancers are affected)`,
      );
    if (change.kind === "Service" && f.path.startsWith("spec.ports"))
      w.push(`${at}: the Service port changes (${f.path})`);
  }
  return w;
}

const objKey = (o: Manifest) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;

export function diffRendered(base: readonly Rendered[], head: readonly Rendered[]): DiffResult {
  const vmcps = [...new Set([...base.map((r) => r.vmcp), ...head.map((r) => r.vmcp)])].sort();
  const result: DiffResult = { vmcps: [], summary: { create: 0, update: 0, replace: 0, delete: 0 } };
  for (const vmcp of vmcps) {
    const b = base.find((r) => r.vmcp === vmcp);
    const h = head.find((r) => r.vmcp === vmcp);
    const before = new Map((b?.objects ?? []).map((o) => [objKey(o), o]));
    const after = new Map((h?.objects ?? []).map((o) => [objKey(o), o]));
    const changes: ObjectChange[] = [];
    for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const x = before.get(key);
      const y = after.get(key);
      const o = (y ?? x) as Manifest;
      const fields = objectFieldChanges(o.kind, x, y);
      const configChanged = x?.kind === "ConfigMap" && y && canonicalJson(x.data) !== canonicalJson(y.data);
      if (!fields.length && !configChanged && x && y) continue;
      const op = !x ? "create" : !y ? "delete" : "update";
      changes.push({
        vmcp,
        kind: o.kind,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        op,
        fields,
      });
      result.summary[op]++;
    }
    const configDiff = lineDiff(b?.configYaml ?? "", h?.configYaml ?? "");
    if (changes.length || configDiff)
      result.vmcps.push({ vmcp, changes, configDiff, warnings: changes.flatMap(disruptions) });
  }
  return result;
}
