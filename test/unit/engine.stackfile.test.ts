// A new stack in a file backend written as a file (engine/basics.ts createStackFile): the
// layout the CLI reads (an empty backend laid out project-scoped, as `stack init` would), an
// existing stack never overwritten, and a backend in the legacy layout left to `stack init`.
// That the CLI then runs ups on such a stack is engine.test.ts's (real CLI).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStackFile, stackFileExists } from "../../engine/basics.js";

describe("a new stack in a file backend, without a CLI process", () => {
  let state: string;
  beforeEach(() => {
    state = mkdtempSync(join(tmpdir(), "vmcp-stackfile-"));
  });
  afterEach(() => rmSync(state, { recursive: true, force: true }));

  it("lays out an empty backend project-scoped and writes the stack's empty checkpoint", async () => {
    assert.equal(await createStackFile(state, "vmcp-operator", "ns.a", {}), true);
    assert.equal(readFileSync(join(state, ".pulumi", "meta.yaml"), "utf8"), "version: 1\n");
    const dir = join(state, ".pulumi", "stacks", "vmcp-operator");
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "ns.a.json"), "utf8")), {
      version: 3,
      checkpoint: { stack: "organization/vmcp-operator/ns.a", latest: null },
    });
    assert.deepEqual(readdirSync(dir), ["ns.a.json"], "nothing written aside is left");
    assert.equal(await stackFileExists(state, "vmcp-operator", "ns.a"), true);
  });

  it("never overwrites a stack that exists (its checkpoint is its state)", async () => {
    const dir = join(state, ".pulumi", "stacks", "vmcp-operator");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(state, ".pulumi", "meta.yaml"), "version: 1\n");
    writeFileSync(join(dir, "ns.a.json"), '{"version":3,"checkpoint":{"latest":{"resources":[1]}}}');
    assert.equal(await createStackFile(state, "vmcp-operator", "ns.a", {}), true);
    assert.match(readFileSync(join(dir, "ns.a.json"), "utf8"), /"resources":\[1\]/);
    assert.deepEqual(readdirSync(dir), ["ns.a.json"]);
  });

  it("leaves a legacy-layout backend to `stack init` (false, nothing written)", async () => {
    mkdirSync(join(state, ".pulumi", "stacks"), { recursive: true });
    writeFileSync(join(state, ".pulumi", "stacks", "old.json"), "{}"); // no meta.yaml: version 0
    assert.equal(await createStackFile(state, "vmcp-operator", "ns.a", {}), false);
    assert.deepEqual(readdirSync(join(state, ".pulumi")), ["stacks"]);
    const legacy = mkdtempSync(join(tmpdir(), "vmcp-stackfile-"));
    try {
      assert.equal(
        await createStackFile(legacy, "vmcp-operator", "ns.a", { PULUMI_DIY_BACKEND_LEGACY_LAYOUT: "true" }),
        false,
        "an empty backend the user asked to lay out the legacy way",
      );
      assert.deepEqual(readdirSync(legacy), []);
    } finally {
      rmSync(legacy, { recursive: true, force: true });
    }
  });
});
