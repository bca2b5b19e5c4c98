// CustomResourceDefinitions derived from the zod schemas. zod emits OpenAPI 3.0 JSON
// Schema; this module rewrites it into the structural subset the API server accepts
// (no additionalProperties:false, free-form nodes marked preserve-unknown, no implicit
// integer bounds) and wraps it in a CRD served at every version.
import { stringify } from "yaml";
import { z } from "zod";
import { DEPRECATED_VERSIONS, GROUP, REQUIRED_WITH_DEFAULT, STORAGE_VERSION, VERSIONS } from "./common.js";
import { KINDS, type KindEntry, type PrinterColumn } from "./kinds.js";

export type JSONSchemaProps = { [key: string]: unknown };

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    scope: "Namespaced";
    versions: {
      name: string;
      served: true;
      storage: boolean;
      deprecated?: true;
      deprecationWarning?: string;
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: { status: Record<string, never> };
    }[];
  };
}

/** ToolHive's label; its storage-version migrator keys on it. */
export const CRD_LABELS = { "toolhive.stacklok.dev/auto-migrate-storage-version": "true" };

const PRESERVE = "x-kubernetes-preserve-unknown-fields";
const IMPLICIT_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2147483647, -2147483648]);

function isRecord(v: unknown): v is JSONSchemaProps {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Rewrites one zod-emitted JSON Schema node (recursively) into a structural schema node. */
export function toStructural(node: JSONSchemaProps): JSONSchemaProps {
  const out: JSONSchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "additionalProperties" || key === REQUIRED_WITH_DEFAULT) continue;
    if ((key === "minimum" || key === "maximum") && typeof value === "number" && IMPLICIT_BOUNDS.has(value))
      continue;
    if (key === "properties" && isRecord(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, child]) => [name, toStructural(isRecord(child) ? child : {})]),
      );
    } else if (key === "items" && isRecord(value)) {
      out[key] = toStructural(value);
    } else if (key === "pattern" && typeof value === "string") {
      // RegExp.source escapes "/", which is noise in an RE2 pattern.
      out[key] = value.replaceAll("\\/", "/");
    } else if (key === "required" && Array.isArray(value)) {
      out[key] = [...value].sort();
    } else {
      out[key] = value;
    }
  }
  const props = node["properties"];
  if (isRecord(props)) {
    const marked = Object.entries(props).filter(([, c]) => isRecord(c) && c[REQUIRED_WITH_DEFAULT] === true);
    if (marked.length > 0) {
      const required = Array.isArray(out["required"]) ? (out["required"] as string[]) : [];
      out["required"] = [...new Set([...required, ...marked.map(([name]) => name)])].sort();
    }
  }
  const extra = node["additionalProperties"];
  if (isRecord(extra)) {
    // `{}` means "anything": keep unknown fields instead of letting the API server prune them.
    if (Object.keys(extra).length === 0) out[PRESERVE] = true;
    else out["additionalProperties"] = toStructural(extra);
  }
  // An untyped node (z.unknown()) is only structural when marked preserve-unknown.
  if (out["type"] === undefined && out[PRESERVE] === undefined) out[PRESERVE] = true;
  return out;
}

/** The structural OpenAPI schema of a zod schema, as the API server would validate input. */
export function openAPISchema(schema: z.ZodType): JSONSchemaProps {
  const json = z.toJSONSchema(schema, { io: "input", target: "openapi-3.0" }) as JSONSchemaProps;
  return toStructural(json);
}

export function crdName(entry: Pick<KindEntry, "plural">): string {
  return `${entry.plural}.${GROUP}`;
}

export function crdFileName(entry: Pick<KindEntry, "plural">): string {
  return `${GROUP}_${entry.plural}.yaml`;
}

/** The CRD of one kind. Pure: the same entry always gives a deep-equal object. */
export function buildCRD(entry: KindEntry): CustomResourceDefinition {
  const openAPIV3Schema: JSONSchemaProps = {
    type: "object",
    description: `${entry.kind} (${GROUP}), compatible with ToolHive's CRD of the same name.`,
    properties: {
      apiVersion: {
        type: "string",
        description: "APIVersion of this object, e.g. toolhive.stacklok.dev/v1beta1.",
      },
      kind: { type: "string", description: `Always ${entry.kind}.` },
      metadata: { type: "object" },
      spec: openAPISchema(entry.spec),
      status: openAPISchema(entry.status),
    },
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: crdName(entry), labels: { ...CRD_LABELS } },
    spec: {
      group: GROUP,
      names: {
        kind: entry.kind,
        listKind: entry.listKind,
        plural: entry.plural,
        singular: entry.singular,
        shortNames: [...entry.shortNames],
        categories: [...entry.categories],
      },
      scope: "Namespaced",
      versions: VERSIONS.map((name) => ({
        name,
        served: true as const,
        storage: name === STORAGE_VERSION,
        ...(DEPRECATED_VERSIONS.includes(name)
          ? {
              deprecated: true as const,
              deprecationWarning: `${GROUP}/${name} is deprecated; use ${GROUP}/${STORAGE_VERSION}`,
            }
          : {}),
        additionalPrinterColumns: entry.printerColumns.map((c) => ({ ...c })),
        // Both versions share one schema, so the API server needs no conversion.
        schema: { openAPIV3Schema: structuredClone(openAPIV3Schema) },
        subresources: { status: {} },
      })),
    },
  };
}

/** Canonical YAML: sorted keys, no line folding, so regeneration is byte-identical. */
export function crdToYAML(crd: CustomResourceDefinition): string {
  return stringify(crd, { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false });
}

export interface RenderedCRD {
  fileName: string;
  content: string;
}

/** Every CRD of the API group, in registry order. */
export function renderCRDs(): RenderedCRD[] {
  return KINDS.map((entry) => ({ fileName: crdFileName(entry), content: crdToYAML(buildCRD(entry)) }));
}
