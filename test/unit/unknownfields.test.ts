// Typos must not become silent defaults: every field the schema does not know is named,
// with the nearest known field, and `render --strict` refuses the manifest.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { OBJECT_SCHEMAS } from "../../api/kinds.js";
import { unknownFields } from "../../api/unknownfields.js";
import { EXAMPLES, ROOT } from "./helpers.js";

const vmcp = (spec: Record<string, unknown>) => ({
  apiVersion: "toolhive.stacklok.dev/v1beta1",
  kind: "VirtualMCPServer",
  metadata: { name: "v", namespace: "ns" },
  spec: { groupRef: { name: "g" }, incomingAuth: { type: "anonymous" }, ...spec },
});

describe("unknown fields", () => {
  it("names each typo with its path and the nearest known field", () => {
    const found = unknownFields(
      OBJECT_SCHEMAS.VirtualMCPServer,
      vmcp({
        serviceTyp: "LoadBalancer",
        config: {
          aggregation: { conflictResolutoin: "manual", tools: [{ workload: "a", excludeAl: true }] },
          operational: { failureHandling: { healthCheckIntervall: "10s" } },
        },
      }),
    );
    assert.deepEqual(found, [
      { path: "spec.serviceTyp", suggestion: "serviceType" },
      { path: "spec.config.aggregation.conflictResolutoin", suggestion: "conflictResolution" },
      { path: "spec.config.aggregation.tools[0].excludeAl", suggestion: "excludeAll" },
      {
        path: "spec.config.operational.failureHandling.healthCheckIntervall",
        suggestion: "healthCheckInterval",
      },
    ]);
  });

  it("reports nothing for a manifest of known fields (every example)", () => {
    for (const name of EXAMPLES) {
      for (const file of readdirSync(join(ROOT, "examples", name)).filter((f) => f.endsWith(".yaml"))) {
        for (const doc of parseAllDocuments(readFileSync(join(ROOT, "examples", name, file), "utf8"))) {
          const obj = doc.toJS() as { kind?: string } | null;
          const schema = obj?.kind ? OBJECT_SCHEMAS[obj.kind as keyof typeof OBJECT_SCHEMAS] : undefined;
          if (schema) assert.deepEqual(unknownFields(schema, obj), [], `${name}/${file} ${obj?.kind}`);
        }
      }
    }
    const clean = unknownFields(OBJECT_SCHEMAS.VirtualMCPServer, vmcp({ serviceType: "ClusterIP" }));
    assert.deepEqual(clean, []);
  });

  it("render warns (exit 0) and render --strict fails (exit 1), naming the field", function () {
    this.timeout(30_000);
    const dir = mkdtempSync(join(tmpdir(), "unknown-"));
    const file = join(dir, "vmcp.yaml");
    const text = readFileSync(join(ROOT, "examples", "basic", "vmcp.yaml"), "utf8").replace(
      "conflictResolution: prefix",
      "conflictResolutoin: prefix",
    );
    assert.ok(text.includes("conflictResolutoin"));
    writeFileSync(file, text);
    const cli = join(ROOT, "dist", "cli", "main.js");
    const warn = spawnSync(process.execPath, [cli, "render", "-f", file], { encoding: "utf8" });
    assert.equal(warn.status, 0, warn.stderr);
    assert.match(
      warn.stderr,
      /warning: .*unknown field "spec\.config\.aggregation\.conflictResolutoin" \(did you mean "conflictResolution"\?\)/,
    );
    const strict = spawnSync(process.execPath, [cli, "render", "--strict", "-f", file], { encoding: "utf8" });
    assert.equal(strict.status, 1);
    assert.match(strict.stderr, /error: .*conflictResolutoin/);
    assert.equal(strict.stdout, "");
  });
});
