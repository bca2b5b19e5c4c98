// Prints a change report (offline render diff or Pulumi preview) as text for a
// terminal, markdown for a pull-request comment, or JSON for tools.
import type { DiffResult, FieldChange } from "../program/diff.js";

export type Format = "text" | "markdown" | "json";

export function parseFormat(value: string | undefined): Format {
  const f = value ?? "text";
  if (f !== "text" && f !== "markdown" && f !== "json")
    throw new Error(`--output: expected text, markdown or json, found "${f}"`);
  return f;
}

const show = (v: unknown): string => (v === undefined ? "(none)" : JSON.stringify(v));
const SYMBOL: Record<string, string> = { create: "+", update: "~", replace: "+-", delete: "-" };

function summaryLine(r: DiffResult): string {
  const s = r.summary;
  return `${s.create} to create, ${s.update} to update, ${s.replace} to replace, ${s.delete} to delete`;
}

function fieldLine(f: FieldChange): string {
  return `${f.path}: ${show(f.old)} → ${show(f.new)}`;
}

export function formatText(r: DiffResult, title: string): string {
  const out: string[] = [`${title}`];
  if (!r.vmcps.length) return `${title}\nNo changes.\n`;
  for (const v of r.vmcps) {
    out.push("", `VirtualMCPServer ${v.vmcp}`);
    for (const c of v.changes) {
      out.push(`  ${SYMBOL[c.op] ?? c.op} ${c.kind} ${c.namespace}/${c.name} (${c.op})`);
      if (c.op === "update" || c.op === "replace") out.push(...c.fields.map((f) => `      ${fieldLine(f)}`));
    }
    if (v.configDiff) out.push("  config.yaml:", ...v.configDiff.split("\n").map((l) => `    ${l}`));
    out.push(...v.warnings.map((w) => `  WARNING: ${w}`));
  }
  out.push("", `Summary: ${summaryLine(r)}`);
  return `${out.join("\n")}\n`;
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function formatMarkdown(r: DiffResult, title: string): string {
  const out: string[] = [`### ${title}`, ""];
  if (!r.vmcps.length) return `${out.join("\n")}No changes.\n`;
  out.push(`**${summaryLine(r)}**`, "");
  for (const v of r.vmcps) {
    out.push(`#### VirtualMCPServer \`${v.vmcp}\``, "");
    out.push(...v.warnings.map((w) => `> :warning: **${cell(w)}**`));
    if (v.warnings.length) out.push("");
    if (v.changes.length) {
      out.push("| | object | changed fields |", "|---|---|---|");
      for (const c of v.changes) {
        const fields =
          c.op === "update" || c.op === "replace"
            ? c.fields.map((f) => `\`${cell(fieldLine(f))}\``).join("<br>")
            : "";
        out.push(`| ${c.op} | ${c.kind} \`${c.namespace}/${c.name}\` | ${fields} |`);
      }
      out.push("");
    }
    if (v.configDiff)
      out.push(
        "<details><summary>config.yaml</summary>",
        "",
        "```diff",
        v.configDiff.replace(/^(.) /gm, "$1"),
        "```",
        "</details>",
        "",
      );
  }
  return `${out.join("\n")}\n`;
}

export function formatReport(r: DiffResult, format: Format, title: string): string {
  if (format === "json") return `${JSON.stringify({ title, ...r }, null, 2)}\n`;
  return format === "markdown" ? formatMarkdown(r, title) : formatText(r, title);
}

export function hasChanges(r: DiffResult): boolean {
  return r.vmcps.length > 0;
}
