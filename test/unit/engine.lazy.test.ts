// The engine loaded at its first operation (engine/lazy.ts): the controller starts without
// the Pulumi libraries, and what it decides before the load still holds after it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { FakeEngine } from "../../controller/testing/fakes.js";
import { createLazyEngine } from "../../engine/lazy.js";
import type { Engine } from "../../engine/stacks.js";
import type { DesiredState } from "../../program/desired.js";

const desired = { namespace: "ns", name: "a", objects: [] } as unknown as DesiredState;

describe("engine loaded at its first operation", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "vmcp-lazy-"));
    mkdirSync(join(root, "bin"));
    writeFileSync(join(root, "bin", "pulumi"), "#!/bin/sh\n");
    chmodSync(join(root, "bin", "pulumi"), 0o755);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("the controller's modules load no Pulumi library and no MCP SDK", function () {
    this.timeout(30_000); // a Node process importing the controller's modules: seconds on a loaded machine
    const main = fileURLToPath(new URL("../../controller/main.js", import.meta.url));
    const script = `
      import { registerHooks } from "node:module";
      const urls = [];
      registerHooks({ resolve(s, c, next) { const r = next(s, c); urls.push(r.url); return r; } });
      await import(${JSON.stringify(main)});
      const heavy = ["/node_modules/@pulumi/", "/node_modules/@modelcontextprotocol/"];
      console.log(JSON.stringify(urls.filter((u) => heavy.some((h) => u.includes(h)))));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.deepEqual(JSON.parse(out), []);
  });

  it("loads once, at the first operation, and hands over the fenced stacks and the holder", async () => {
    let loads = 0;
    const fake = new FakeEngine();
    const holders: unknown[] = [];
    (fake as Engine).setHolder = (f): void => {
      holders.push(f);
    };
    const engine = await createLazyEngine({ passphrase: "p", pulumiRoot: root }, async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return fake;
    });
    const hook = async (): Promise<undefined> => undefined;
    engine.setHolder(hook);
    assert.deepEqual(engine.fence(new Set(["ns.b", "ns.c"])), []);
    engine.unfence(new Set(["ns.c"]));
    assert.equal(loads, 0);
    assert.equal(engine.processesStarted, 0);
    await Promise.all([engine.up(desired), engine.up(desired)]);
    assert.equal(loads, 1);
    assert.deepEqual(fake.killed, ["ns.b"]);
    assert.deepEqual(holders, [hook], "the holder hook set before the load reaches the engine");
    assert.deepEqual(
      fake.calls.map((c) => c.op),
      ["up", "up"],
    );
    assert.equal(engine.processesStarted, 2);
    engine.fence(new Set(["ns.d"])); // loaded: goes straight to the engine
    assert.deepEqual(fake.killed, ["ns.b", "ns.d"]);
  });

  it("a failed load fails that operation and is tried again by the next", async () => {
    let loads = 0;
    const engine = await createLazyEngine({ passphrase: "p", pulumiRoot: root }, async () => {
      if (++loads === 1) throw new Error("pulumi version too old");
      return new FakeEngine();
    });
    await assert.rejects(engine.up(desired), /too old/);
    await engine.up(desired);
    assert.equal(loads, 2);
  });

  it("lists a file backend's locks without loading", async () => {
    const state = join(root, "state");
    mkdirSync(join(state, ".pulumi", "locks", "organization", "vmcp-operator", "ns.a"), { recursive: true });
    writeFileSync(join(state, ".pulumi", "locks", "organization", "vmcp-operator", "ns.a", "x.json"), "{}");
    const load = async () => assert.fail("loaded");
    assert.deepEqual(
      await (
        await createLazyEngine({ passphrase: "p", pulumiRoot: root, stateDir: state }, load)
      ).lockedStacks(),
      new Set(["ns.a"]),
    );
    const other = { passphrase: "p", pulumiRoot: root, backendUrl: "s3://bucket" };
    assert.equal(await (await createLazyEngine(other, load)).lockedStacks(), undefined);
    assert.deepEqual(
      await (await createLazyEngine({ passphrase: "p", pulumiRoot: root }, load)).lockedStacks(),
      new Set(),
    );
  });

  it("a missing CLI still fails the start", async () => {
    await assert.rejects(
      createLazyEngine({ passphrase: "p", pulumiRoot: join(root, "nowhere") }, async () => new FakeEngine()),
      /no Pulumi CLI at .*nowhere\/bin\/pulumi/,
    );
  });
});
