import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diffRendered, disruptions, flatten, lineDiff, objectFieldChanges } from "../../program/diff.js";
import { renderAll } from "../../program/render.js";
import { example, loadYaml, ROOT, SETTINGS } from "./helpers.js";
import type { AnyObject } from "../../program/inputs.js";

const timeServer = loadYaml(`apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata: {name: time, namespace: team-a}
spec: {image: time:1, transport: streamable-http, groupRef: {name: engineering}}`);

const render = (objects: AnyObject[]) => renderAll(objects, SETTINGS).rendered;

describe("offline diff", () => {
  it("addresses list items by name", () => {
    const flat = flatten({ env: [{ name: "A", value: "1" }], args: ["x"] });
    assert.deepEqual(
      [...flat.entries()],
      [
        ["env[name=A].name", "A"],
        ["env[name=A].value", "1"],
        ["args[0]", "x"],
      ],
    );
  });

  it("reports a group membership change as in-place updates with a config.yaml diff", () => {
    const d = diffRendered(render(example("basic")), render([...example("basic"), ...timeServer]));
    assert.deepEqual(d.summary, { create: 0, update: 2, replace: 0, delete: 0 });
    const v = d.vmcps[0];
    assert.deepEqual(
      v?.changes.map((c) => `${c.op} ${c.kind}`),
      ["update ConfigMap", "update Deployment"],
    );
    const dep = v?.changes.find((c) => c.kind === "Deployment");
    assert.deepEqual(
      dep?.fields.map((f) => f.path),
      ['spec.template.metadata.annotations["toolhive.stacklok.dev/runconfig-checksum"]'],
    );
    assert.match(v?.configDiff ?? "", /^\+ {5}name: time$/m);
    assert.deepEqual(v?.warnings, []);
  });

  it("warns about a Service type change", () => {
    const changed = structuredClone(example("basic"));
    const vmcp = changed.find((o) => o.kind === "VirtualMCPServer");
    (vmcp?.spec as { serviceType?: string }).serviceType = "NodePort";
    const d = diffRendered(render(example("basic")), render(changed));
    const svc = d.vmcps[0]?.changes.find((c) => c.kind === "Service");
    assert.deepEqual(svc?.fields, [{ path: "spec.type", old: "ClusterIP", new: "NodePort" }]);
    assert.match(d.vmcps[0]?.warnings[0] ?? "", /Service type ClusterIP → NodePort/);
  });

  it("reports nothing when only the document order changed", () => {
    const d = diffRendered(
      render(example("composite-tools")),
      render([...example("composite-tools")].reverse()),
    );
    assert.deepEqual(d.vmcps, []);
  });

  it("masks Secret data", () => {
    const before = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", namespace: "n" },
      data: { k: "b2xk" },
    };
    const after = { ...before, data: { k: "bmV3" } };
    const [change] = objectFieldChanges("Secret", before, after);
    assert.deepEqual(change, { path: "data.k", old: "(secret)", new: "(secret)" });
  });

  it("diffs lines with context", () => {
    assert.equal(lineDiff("a\nb\nc", "a\nB\nc"), "  a\n- b\n+ B\n  c");
    assert.equal(lineDiff("same", "same"), "");
  });

  it("vmcpctl render --diff compares two git revisions of examples/", function () {
    this.timeout(30_000);
    const repo = mkdtempSync(join(tmpdir(), "vmcp-diff-"));
    try {
      const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8" });
      cpSync(join(ROOT, "examples"), join(repo, "examples"), { recursive: true });
      rmSync(join(repo, "examples", "invalid"), { recursive: true }); // rendering it fails by design
      git("init", "-q");
      git("add", ".");
      git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base");
      const file = join(repo, "examples", "basic", "vmcp.yaml");
      writeFileSync(
        file,
        readFileSync(file, "utf8").replace("type: anonymous", "type: anonymous\n  serviceType: LoadBalancer"),
      );
      git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "expose");
      const cli = join(ROOT, "dist", "cli", "main.js");
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [cli, "render", ...args], { cwd: repo, encoding: "utf8" });

      const json = run("--diff", "HEAD~1", "-f", "examples", "-o", "json", "--detailed-exitcode");
      assert.equal(json.status, 2, json.stderr);
      const report = JSON.parse(json.stdout) as {
        summary: Record<string, number>;
        vmcps: { vmcp: string; warnings: string[] }[];
      };
      assert.deepEqual(report.summary, { create: 0, update: 1, replace: 0, delete: 0 });
      assert.equal(report.vmcps[0]?.vmcp, "team-a/engineering-tools");
      assert.match(report.vmcps[0]?.warnings[0] ?? "", /LoadBalancer/);

      const md = run("--diff", "HEAD~1", "-f", "examples", "-o", "markdown");
      assert.equal(md.status, 0, md.stderr);
      assert.match(md.stdout, /^### vmcp-operator render diff/m);
      assert.match(
        md.stdout,
        /\| update \| Service `team-a\/vmcp-engineering-tools` \| `spec\.type: "ClusterIP" → "LoadBalancer"` \|/,
      );

      const same = run("--diff", "HEAD", "-f", "examples", "--detailed-exitcode");
      assert.equal(same.status, 0, same.stderr);
      assert.match(same.stdout, /No changes\./);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it("warns about a selector change only for an update, once per Deployment", () => {
    const fields = ["spec.selector.matchLabels.a", "spec.selector.matchLabels.b"].map((path) => ({
      path,
      old: "x",
      new: "y",
    }));
    const change = (op: "create" | "update") =>
      ({ vmcp: "ns/gw", kind: "Deployment", namespace: "ns", name: "gw", op, fields }) as Parameters<
        typeof disruptions
      >[0];
    assert.deepEqual(disruptions(change("create")), []);
    const created = diffRendered([], render(example("basic")));
    assert.ok(created.summary.create > 0);
    assert.deepEqual(
      created.vmcps.flatMap((v) => v.warnings),
      [],
      "objects only being created disrupt nothing",
    );
    assert.deepEqual(disruptions(change("update")), [
      "Deployment ns/gw: spec.selector changes, which forces a replacement (downtime)",
    ]);
  });
});
