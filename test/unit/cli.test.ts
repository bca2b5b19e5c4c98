// vmcpctl as a person runs it: version, refusals that say how to fix them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers.js";

const CLI = join(ROOT, "dist", "cli", "main.js");
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env });

describe("vmcpctl", function () {
  this.timeout(60_000); // each run loads the controller's modules in a fresh process
  it("--version prints package.json's version", () => {
    const r = run(["--version"]);
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    assert.equal(r.stdout.trim(), `vmcpctl ${pkg.version}`);
  });

  it("controller refuses to start without a state passphrase, and says how to set one", () => {
    const env = { ...process.env };
    delete env.PULUMI_CONFIG_PASSPHRASE;
    delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
    const r = run(["controller", "--kubeconfig", "/nonexistent"], env);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no \(or an empty\) Pulumi state passphrase: set PULUMI_CONFIG_PASSPHRASE/);
    const empty = run(["controller", "--kubeconfig", "/nonexistent"], {
      ...env,
      PULUMI_CONFIG_PASSPHRASE: "",
    });
    assert.equal(empty.status, 1);
    assert.match(empty.stderr, /passphrase/);
  });

  it("controller --check-flags accepts valid flags and names an unknown one", () => {
    assert.equal(
      run(["controller", "--probe-interval=45s", "--probe-allow-loopback", "--check-flags"]).stdout.trim(),
      "flags ok",
    );
    const bad = run(["controller", "--probe-interval=soon", "--check-flags"]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad duration "soon"/);
  });
});
