// No silent drops, by construction: every leaf field of the VirtualMCPServer schema and
// of each kind it references, set to a value other than the one an example has, must
// change what the user gets — the builder's objects and config.yaml, its problems or
// warnings, or a validation error — for at least one example, or be in CONTROLLER_ONLY
// below with the reason. A schema field that nobody wires up fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { kindEntry, openAPISchema, type JSONSchemaProps, type KindName } from "../../api/index.js";
import { parseManifests } from "../../program/manifests.js";
import { canonicalJson } from "../../program/canonical.js";
import { build } from "../../program/desired.js";
import { gatherInputs, objectSet, type AnyObject, type ConfigMapData } from "../../program/inputs.js";
import { EXAMPLES, ROOT, SETTINGS } from "./helpers.js";

/**
 * Fields that are read by the controller (or by ToolHive's own controllers), not by the
 * render, and why. Reviewed: add a field here only with the reason it cannot reach the
 * rendered objects.
 */
const CONTROLLER_ONLY: Record<string, string> = {
  // EmbeddingServer is run by ToolHive's operator; a VirtualMCPServer only reads its URL
  // (status.url, else the Service URL from metadata.name and spec.port).
  "EmbeddingServer.spec.model": "runs in the EmbeddingServer's StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.hfTokenSecretRef.name": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.hfTokenSecretRef.key": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.image": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.imagePullPolicy": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.args": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.env[].name": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.env[].value": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.resources.limits.cpu": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.resources.limits.memory": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.resources.requests.cpu": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.resources.requests.memory": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.modelCache.enabled": "EmbeddingServer PVC (ToolHive's operator)",
  "EmbeddingServer.spec.modelCache.storageClassName": "EmbeddingServer PVC (ToolHive's operator)",
  "EmbeddingServer.spec.modelCache.size": "EmbeddingServer PVC (ToolHive's operator)",
  "EmbeddingServer.spec.modelCache.accessMode": "EmbeddingServer PVC (ToolHive's operator)",
  "EmbeddingServer.spec.podTemplateSpec": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.replicas": "EmbeddingServer StatefulSet (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.statefulSet.annotations":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.statefulSet.labels":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.statefulSet.podTemplateMetadataOverrides.annotations":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.statefulSet.podTemplateMetadataOverrides.labels":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.service.annotations":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.service.labels": "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.persistentVolumeClaim.annotations":
    "EmbeddingServer objects (ToolHive's operator)",
  "EmbeddingServer.spec.resourceOverrides.persistentVolumeClaim.labels":
    "EmbeddingServer objects (ToolHive's operator)",
  // Backends and their auth are always resolved here and embedded ("inline"); "discovered"
  // would make the vmcp pod watch the cluster (README: where vmcp-operator differs).
  "VirtualMCPServer.spec.outgoingAuth.source": "backends are always embedded (source inline), by design",
  // ToolHive mounts CA bundles without `optional` too: a missing bundle fails the pod start.
  "MCPOIDCConfig.spec.inline.caBundleRef.configMapRef.optional": "ToolHive's operator ignores it too",
  "MCPTelemetryConfig.spec.openTelemetry.caBundleRef.configMapRef.optional":
    "ToolHive's operator ignores it too",
};

/** ToolHive kinds walked, with the examples that hold one. */
const WALKED: KindName[] = [
  "VirtualMCPServer",
  "MCPOIDCConfig",
  "MCPAuthzConfig",
  "MCPTelemetryConfig",
  "EmbeddingServer",
];

interface Leaf {
  kind: KindName;
  path: string[];
  node: JSONSchemaProps;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function leaves(kind: KindName, node: JSONSchemaProps, path: string[]): Leaf[] {
  const props = node["properties"];
  if (isObj(props))
    return Object.entries(props).flatMap(([k, c]) => leaves(kind, c as JSONSchemaProps, [...path, k]));
  const items = node["items"];
  if (node["type"] === "array" && isObj(items) && isObj(items["properties"]))
    return leaves(kind, items as JSONSchemaProps, [...path, "[]"]);
  const extra = node["additionalProperties"];
  if (isObj(extra) && isObj(extra["properties"]))
    return leaves(kind, extra as JSONSchemaProps, [...path, "{}"]);
  return [{ kind, path, node }];
}

/** Values to try for a leaf, given what the example has there now. */
function candidates(node: JSONSchemaProps, current: unknown): unknown[] {
  const enumValues = node["enum"];
  if (Array.isArray(enumValues)) return enumValues.filter((v) => v !== current);
  switch (node["type"]) {
    case "boolean":
      return [true, false].filter((v) => v !== current);
    case "integer":
    case "number": {
      const min = typeof node["minimum"] === "number" ? node["minimum"] : 0;
      const base =
        typeof current === "number" ? current : typeof node["default"] === "number" ? node["default"] : min;
      return [base + 1, base + 2, min];
    }
    case "array": {
      const items = (node["items"] ?? {}) as JSONSchemaProps;
      const list = Array.isArray(current) ? current : [];
      return candidates(items, undefined).map((v) => [...list, v]);
    }
    case "object":
      return [{ ...(isObj(current) ? current : {}), probe: "probe-value" }];
    case "string": {
      const pattern = typeof node["pattern"] === "string" ? new RegExp(node["pattern"]) : undefined;
      const pool = [
        typeof current === "string" && current ? `${current}x` : "probe",
        "probe",
        "45s",
        "0.5",
        "https://probe.example.com/p",
        "Probe",
      ];
      return pool.filter((v) => !pattern || pattern.test(v));
    }
    default:
      return [{ probe: "probe-value" }];
  }
}

/** Reads `path` of `obj`; "[]" is the first item, "{}" the first entry. */
function getAt(obj: unknown, path: readonly string[]): unknown {
  let node = obj;
  for (const p of path) {
    if (p === "[]") node = Array.isArray(node) ? node[0] : undefined;
    else if (p === "{}") node = isObj(node) ? Object.values(node)[0] : undefined;
    else node = isObj(node) ? node[p] : undefined;
  }
  return node;
}

/** A copy of `obj` with `path` set to `value`, creating what is missing. */
function setAt(obj: unknown, path: readonly string[], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (head === "[]") {
    const list = Array.isArray(obj) ? [...obj] : [];
    list[0] = setAt(list[0], rest, value);
    return list;
  }
  const o = isObj(obj) ? { ...obj } : {};
  const key = head === "{}" ? (Object.keys(o)[0] ?? "probe") : head;
  o[key] = setAt(o[key], rest, value);
  return o;
}

interface Example {
  name: string;
  docs: unknown[];
}

const examples: Example[] = EXAMPLES.map((name) => ({
  name,
  docs: parseAllDocuments(readFileSync(join(ROOT, "examples", name, "vmcp.yaml"), "utf8")).map((d) =>
    d.toJS(),
  ),
}));

/** Everything the builder produces for every VirtualMCPServer of the docs, or the parse errors. */
function outcome(docs: readonly unknown[]): { ok: boolean; text: string } {
  const loaded = parseManifests(docs.map((d) => `---\n${stringify(d)}`).join(""), "probe");
  if (loaded.errors.length) return { ok: false, text: loaded.errors.join("\n") };
  const set = objectSet(loaded.objects, loaded.configMaps as ConfigMapData[]);
  const results = loaded.objects
    .filter((o): o is Extract<AnyObject, { kind: "VirtualMCPServer" }> => o.kind === "VirtualMCPServer")
    .map((v) => {
      const b = build(gatherInputs(set, v), SETTINGS, { predictUrls: true });
      return {
        objects: b.desired?.objects,
        problems: b.problems,
        warnings: b.warnings,
        unresolved: b.discovery.unresolved,
        auth: b.auth.problems,
      };
    });
  return { ok: true, text: canonicalJson(results) };
}

const pathName = (l: Leaf) =>
  `${l.kind}.spec.${l.path.join(".").replaceAll(".[]", "[]").replaceAll(".{}", "{}")}`;

describe("no silent drops", function () {
  this.timeout(120_000);

  it("every leaf field of the VirtualMCPServer and of each kind it references reaches the rendered output", () => {
    const baselines = examples.map((e) => ({ ...e, base: outcome(e.docs) }));
    for (const b of baselines) assert.ok(b.base.ok, `examples/${b.name} renders: ${b.base.text}`);
    const dropped: string[] = [];
    let walked = 0;
    for (const kind of WALKED) {
      for (const leaf of leaves(kind, openAPISchema(kindEntry(kind).spec), [])) {
        walked++;
        const name = pathName(leaf);
        if (CONTROLLER_ONLY[name]) continue;
        const seen = baselines.some(({ docs, base }) =>
          docs.some((doc, i) => {
            if (!isObj(doc) || doc.kind !== kind) return false;
            const current = getAt(doc.spec, leaf.path);
            return candidates(leaf.node, current).some((value) => {
              const probed = docs.map((d, j) =>
                j === i ? { ...doc, spec: setAt(doc.spec, leaf.path, value) } : d,
              );
              // A changed render, or an error naming the problem: either way the user sees it.
              return outcome(probed).text !== base.text;
            });
          }),
        );
        if (!seen) dropped.push(name);
      }
    }
    assert.ok(walked > 100, `walked ${walked} leaves`);
    assert.deepEqual(
      dropped,
      [],
      "fields that change nothing in any example (wire them up or list them in CONTROLLER_ONLY with the reason)",
    );
  });

  it("lists only fields that exist", () => {
    const all = new Set(WALKED.flatMap((k) => leaves(k, openAPISchema(kindEntry(k).spec), []).map(pathName)));
    assert.deepEqual(
      Object.keys(CONTROLLER_ONLY).filter((f) => !all.has(f)),
      [],
    );
  });
});
