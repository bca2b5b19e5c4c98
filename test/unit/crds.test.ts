import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { buildCRD, kindEntry, renderCRDs, type JSONSchemaProps } from "../../api/index.js";

// dist/test/unit → repo root
const CRD_DIR = fileURLToPath(new URL("../../../crds/", import.meta.url));

function at(schema: JSONSchemaProps, path: string): JSONSchemaProps {
  let node = schema;
  for (const key of path.split(".")) {
    const props = node["properties"] as Record<string, JSONSchemaProps> | undefined;
    const next = props?.[key];
    assert.ok(next, `no property ${key} in ${path}`);
    node = next;
  }
  return node;
}

describe("generated CRDs", () => {
  it("match the checked-in crds/ (run `npm run gen:crds` after changing api/)", () => {
    const generated = renderCRDs();
    const onDisk = readdirSync(CRD_DIR)
      .filter((f) => f.endsWith(".yaml"))
      .sort();
    assert.deepEqual(
      onDisk,
      generated.map((c) => c.fileName).sort(),
      "crds/ holds a different set of files; run `npm run gen:crds`",
    );
    for (const crd of generated) {
      const checkedIn = readFileSync(CRD_DIR + crd.fileName, "utf8");
      assert.ok(checkedIn === crd.content, `crds/${crd.fileName} is stale; run \`npm run gen:crds\``);
    }
  });

  it("are deterministic", () => {
    assert.deepEqual(renderCRDs(), renderCRDs());
  });

  const vmcp = buildCRD(kindEntry("VirtualMCPServer"));
  const v1beta1 = vmcp.spec.versions.find((v) => v.name === "v1beta1");
  const v1alpha1 = vmcp.spec.versions.find((v) => v.name === "v1alpha1");

  it("serve v1beta1 as storage and v1alpha1 deprecated with the same schema and a status subresource", () => {
    assert.equal(vmcp.metadata.name, "virtualmcpservers.toolhive.stacklok.dev");
    assert.equal(v1beta1?.storage, true);
    assert.equal(v1alpha1?.storage, false);
    assert.equal(v1alpha1?.deprecated, true);
    assert.match(v1alpha1?.deprecationWarning ?? "", /v1alpha1 is deprecated/);
    assert.deepEqual(v1alpha1?.schema, v1beta1?.schema);
    assert.deepEqual(v1beta1?.subresources, { status: {} });
  });

  it("carry ToolHive's names, short names and printer columns", () => {
    assert.deepEqual(vmcp.spec.names.shortNames, ["vmcp", "virtualmcp"]);
    assert.deepEqual(vmcp.spec.names.categories, ["toolhive"]);
    assert.deepEqual(
      v1beta1?.additionalPrinterColumns.map((c) => [c.name, c.type, c.jsonPath]),
      [
        ["Phase", "string", ".status.phase"],
        ["URL", "string", ".status.url"],
        ["Backends", "integer", ".status.backendCount"],
        ["Age", "date", ".metadata.creationTimestamp"],
        ["Ready", "string", ".status.conditions[?(@.type=='Ready')].status"],
      ],
    );
    assert.deepEqual(buildCRD(kindEntry("MCPGroup")).spec.names.shortNames, ["mcpg", "mcpgroup"]);
    assert.deepEqual(buildCRD(kindEntry("VirtualMCPCompositeToolDefinition")).spec.names.shortNames, [
      "vmcpctd",
      "compositetool",
    ]);
  });

  it("default conflictResolution to prefix and enumerate the strategies", () => {
    const schema = v1beta1?.schema.openAPIV3Schema ?? {};
    const cr = at(schema, "spec.config.aggregation.conflictResolution");
    assert.deepEqual(cr["enum"], ["prefix", "priority", "manual"]);
    assert.equal(cr["default"], "prefix");
    assert.equal(
      at(schema, "spec.config.aggregation.conflictResolutionConfig.prefixFormat")["default"],
      "{workload}_",
    );
  });

  it("are structural: required fields, preserved free-form fields, no additionalProperties:false", () => {
    const schema = v1beta1?.schema.openAPIV3Schema ?? {};
    assert.deepEqual(at(schema, "spec")["required"], ["groupRef", "incomingAuth"]);
    assert.equal(at(schema, "spec.config")["x-kubernetes-preserve-unknown-fields"], true);
    assert.equal(at(schema, "spec.podTemplateSpec")["x-kubernetes-preserve-unknown-fields"], true);
    assert.equal(at(schema, "spec.replicas")["format"], "int32");
    assert.equal(at(schema, "spec.replicas")["maximum"], undefined);
    assert.doesNotMatch(JSON.stringify(schema), /"additionalProperties":false/);
    const authzType = at(schema, "spec.incomingAuth.authzConfig");
    assert.ok(
      (authzType["required"] as string[]).includes("type"),
      "defaulted-but-required type stays required",
    );
  });
});
