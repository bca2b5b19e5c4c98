// Reads Kubernetes manifests (files or directories of multi-document YAML) and parses
// the ToolHive objects among them, and the ConfigMaps (an authorization policy can live
// in one). Objects of other kinds (Secrets, Namespaces…) are skipped: they are there for
// `kubectl apply`, not for us; so are ToolHive kinds that play no part in a render.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { GROUP, IGNORED_KINDS, KINDS, type KindName } from "../api/index.js";
import { OBJECT_SCHEMAS } from "../api/kinds.js";
import { formatUnknownField, unknownFields } from "../api/unknownfields.js";
import { formatFieldErrors, parseObject } from "../api/validate.js";
import type { AnyObject, ConfigMapData } from "./inputs.js";

export interface Loaded {
  objects: AnyObject[];
  configMaps: ConfigMapData[];
  /** One line per problem, each naming the file, the object and the field path. */
  errors: string[];
  /** Objects skipped on purpose (ToolHive kinds the render does not use). */
  notes: string[];
  /** Fields our schema does not know (typos): ignored, as the API server would prune them. */
  unknown: string[];
}

/** Where manifests come from: the work tree, another directory, or a git revision. */
export interface ManifestSource {
  /** The YAML files a path names (itself, or those under a directory), sorted. */
  files(path: string): Promise<string[]>;
  read(file: string): Promise<string>;
}

const isYaml = (f: string) => /\.ya?ml$/.test(f);

export const workTree: ManifestSource = {
  async files(path) {
    if (!(await stat(path)).isDirectory()) return [path];
    const entries = await readdir(path, { withFileTypes: true, recursive: true });
    return entries
      .filter((e) => e.isFile() && isYaml(e.name))
      .map((e) => join(e.parentPath, e.name))
      .sort();
  },
  read: (file) => readFile(file, "utf8"),
};

/** The same paths under another directory (e.g. a checkout of the base branch). */
export function underDirectory(dir: string): ManifestSource {
  return {
    files: async (path) => (await workTree.files(join(dir, path))).map((f) => f.slice(dir.length + 1)),
    read: (file) => readFile(join(dir, file), "utf8"),
  };
}

/** The same paths at a git revision of the repository holding the working directory. */
export function atGitRevision(rev: string, git: (args: string[]) => Promise<string>): ManifestSource {
  return {
    files: async (path) =>
      (await git(["ls-tree", "-r", "--name-only", rev, "--", path]))
        .split("\n")
        .filter((f) => f && isYaml(f))
        .sort(),
    read: (file) => git(["show", `${rev}:./${file}`]),
  };
}

const KNOWN = new Set<string>(KINDS.map((k) => k.kind));

const IGNORED = new Set<string>(IGNORED_KINDS);

function configMapOf(raw: unknown, source: string): ConfigMapData | string {
  const { metadata, data } = raw as { metadata?: { name?: unknown; namespace?: unknown }; data?: unknown };
  const name = metadata?.name;
  if (typeof name !== "string" || !name) return `${source}: ConfigMap: metadata.name: expected a name`;
  const namespace = typeof metadata?.namespace === "string" ? metadata.namespace : "default";
  const entries = Object.entries(typeof data === "object" && data !== null ? data : {});
  const bad = entries.find(([, v]) => typeof v !== "string");
  if (bad) return `${source}: ConfigMap ${namespace}/${name}: data.${bad[0]}: expected a string`;
  return { name, namespace, data: Object.fromEntries(entries) as Record<string, string> };
}

export function parseManifests(text: string, source: string): Loaded {
  const objects: AnyObject[] = [];
  const configMaps: ConfigMapData[] = [];
  const errors: string[] = [];
  const notes: string[] = [];
  const unknown: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      errors.push(...doc.errors.map((e) => `${source}: YAML: ${e.message.split("\n")[0]}`));
      continue;
    }
    const raw: unknown = doc.toJS();
    if (raw === null || typeof raw !== "object") continue;
    const { apiVersion, kind, metadata } = raw as {
      apiVersion?: unknown;
      kind?: unknown;
      metadata?: { name?: unknown; namespace?: unknown };
    };
    if (apiVersion === "v1" && kind === "ConfigMap") {
      const cm = configMapOf(raw, source);
      if (typeof cm === "string") errors.push(cm);
      else configMaps.push(cm);
      continue;
    }
    if (typeof apiVersion !== "string" || !apiVersion.startsWith(`${GROUP}/`) || typeof kind !== "string")
      continue;
    const what = `${source}: ${kind} ${String(metadata?.namespace ?? "default")}/${String(metadata?.name ?? "?")}`;
    if (IGNORED.has(kind)) {
      notes.push(`${what}: skipped (no VirtualMCPServer can reference a ${kind})`);
      continue;
    }
    if (!KNOWN.has(kind)) {
      errors.push(`${what}: kind: expected one of ${[...KNOWN, ...IGNORED].join(", ")}, found "${kind}"`);
      continue;
    }
    // The API server ignores status on create, so a manifest's status never fails a render;
    // a well-formed one is kept (offline render reads e.g. a member's status.url).
    const { status, ...object } = raw as Record<string, unknown>;
    const withNamespace = (o: object) => ({ ...o, metadata: { namespace: "default", ...metadata } });
    unknown.push(
      ...unknownFields(OBJECT_SCHEMAS[kind as KindName], object).map(
        (f) => `${what}: ${formatUnknownField(f)}`,
      ),
    );
    const parsed = parseObject(kind as KindName, withNamespace(object));
    if (parsed.ok) {
      const full = status === undefined ? parsed : parseObject(kind as KindName, withNamespace(raw));
      objects.push((full.ok ? full : parsed).value as AnyObject);
    } else
      errors.push(
        ...formatFieldErrors(parsed.errors)
          .split("\n")
          .map((line) => `${what}: ${line}`),
      );
  }
  return { objects, configMaps, errors, notes, unknown };
}

/** Whether text read as UTF-8 came from a binary file (NUL bytes, or bytes that are not UTF-8). */
const looksBinary = (text: string): boolean => text.includes("\u0000") || text.includes("\uFFFD");

/** "<path>: no such file or directory" rather than a raw ENOENT. */
function fileError(path: string, err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === "ENOENT") return `${path}: no such file or directory`;
  if (code === "EACCES") return `${path}: permission denied`;
  if (code === "EISDIR") return `${path}: is a directory`;
  return `${path}: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * Every file of every path, parsed. A path that does not exist, or a file that is binary
 * or (given by name) empty, is an error naming it; an empty file found under a directory
 * is a note.
 */
export async function loadManifests(
  paths: readonly string[],
  source: ManifestSource = workTree,
): Promise<Loaded> {
  const all: Loaded = { objects: [], configMaps: [], errors: [], notes: [], unknown: [] };
  for (const path of paths) {
    let files: string[];
    try {
      files = await source.files(path);
    } catch (err) {
      all.errors.push(fileError(path, err));
      continue;
    }
    for (const file of files) {
      let text: string;
      try {
        text = await source.read(file);
      } catch (err) {
        all.errors.push(fileError(file, err));
        continue;
      }
      if (looksBinary(text)) {
        all.errors.push(`${file}: not a YAML file (binary content)`);
        continue;
      }
      if (!text.trim()) {
        if (file === path) all.errors.push(`${file}: empty file (no YAML documents)`);
        else all.notes.push(`${file}: empty file, skipped`);
        continue;
      }
      const loaded = parseManifests(text, file);
      all.objects.push(...loaded.objects);
      all.configMaps.push(...loaded.configMaps);
      all.errors.push(...loaded.errors);
      all.notes.push(...loaded.notes);
      all.unknown.push(...loaded.unknown);
    }
  }
  return all;
}
