import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXAMPLES, ROOT } from "./helpers.js";

const CLI = join(ROOT, "dist", "cli", "main.js");

function vmcpctl(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, VMCP_IMAGE: "" },
  });
}

describe("vmcpctl render", function () {
  this.timeout(30_000); // each case starts vmcpctl in a fresh process
  for (const name of EXAMPLES) {
    it(`renders examples/${name} as in its golden file`, () => {
      const r = vmcpctl(
        "render",
        "-f",
        `examples/${name}`,
        "--vmcp-image",
        "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
      );
      assert.equal(r.status, 0, r.stderr);
      const golden = join(ROOT, "test", "golden", `${name}.yaml`);
      const expected = existsSync(golden) ? readFileSync(golden, "utf8") : "";
      // UPDATE_GOLDEN rewrites a stale file but still fails this run: a green run always
      // compared the output with a file that was there before it.
      if (r.stdout !== expected && process.env.UPDATE_GOLDEN) {
        writeFileSync(golden, r.stdout);
        assert.fail(`golden file ${name}.yaml rewritten: review its diff, then run the tests again`);
      }
      assert.equal(r.stdout, expected, `stale golden file: run UPDATE_GOLDEN=1 npm run test:unit`);
    });
  }

  it("prints field-path errors on stderr, nothing on stdout, and exits 1 for an invalid VirtualMCPServer", () => {
    const r = vmcpctl("render", "-f", "examples/invalid");
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /spec\.config\.aggregation\.conflictResolutionConfig\.priorityOrder: expected .* found nothing/,
    );
    assert.match(r.stderr, /spec\.config\.compositeTools\[0\]\.steps\[0\]\.dependsOn: .*cycle a -> b -> a/);
    assert.match(
      r.stderr,
      /spec\.config\.compositeTools\[0\]\.steps\[1\]\.arguments\.text: expected a valid Go template/,
    );
  });

  it("names the file and object when a schema field is wrong", () => {
    const file = join(ROOT, "dist", "bad-service-type.yaml");
    writeFileSync(
      file,
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: v, namespace: ns}
spec: {groupRef: {name: g}, incomingAuth: {type: anonymous}, serviceType: Ingress}
`,
    );
    const r = vmcpctl("render", "-f", file);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /bad-service-type\.yaml: VirtualMCPServer ns\/v: spec\.serviceType: expected one of .*ClusterIP.*, found "Ingress"/,
    );
  });

  it("prints a kubectl List with --output json", () => {
    const r = vmcpctl("render", "-f", "examples/basic", "-o", "json");
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { kind: string; items: { kind: string }[] };
    assert.equal(list.kind, "List");
    assert.equal(list.items.length, 6);
  });

  describe("input a person gets wrong: the file and the field are named, exit 1", () => {
    const write = (name: string, content: string | Buffer) => {
      const file = join(ROOT, "dist", name);
      writeFileSync(file, content);
      return file;
    };

    it("a missing file", () => {
      const r = vmcpctl("render", "-f", "dist/no-such-manifest.yaml");
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), "error: dist/no-such-manifest.yaml: no such file or directory");
    });

    it("an empty file", () => {
      const file = write("empty-manifest.yaml", "\n");
      const r = vmcpctl("render", "-f", file);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `error: ${file}: empty file (no YAML documents)`);
    });

    it("a binary file", () => {
      const file = write("binary-manifest.yaml", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x1a, 0xff]));
      const r = vmcpctl("render", "-f", file);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `error: ${file}: not a YAML file (binary content)`);
    });

    it("a groupRef to a group that is not among the manifests (as --help promises)", () => {
      const file = write(
        "missing-group.yaml",
        `apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: v, namespace: ns}
spec: {groupRef: {name: nowhere}, incomingAuth: {type: anonymous}}
`,
      );
      const r = vmcpctl("render", "-f", file);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
      assert.match(
        r.stderr,
        /^error: ns\/v: spec\.groupRef\.name: MCPGroup nowhere is not among the manifests/m,
      );
      assert.match(
        vmcpctl("render", "--help").stdout,
        /1 invalid input or a reference that\s+cannot be resolved/,
      );
    });
  });
});
