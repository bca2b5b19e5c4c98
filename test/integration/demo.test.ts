// README command #1: the demo brings a VirtualMCPServer to Ready against real MCP servers.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../unit/helpers.js";

describe("vmcpctl demo", function () {
  this.timeout(300_000);
  it("starts everything, shows the VirtualMCPServer Ready with its backends, and cleans up", async () => {
    const child = spawn(
      process.execPath,
      [join(ROOT, "dist", "cli", "main.js"), "demo", "--until-ready", "--timeout", "180"],
      {
        cwd: ROOT,
        env: { ...process.env, KUBECONFIG: "" },
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, out);
    assert.match(out, /phase {11}Ready/);
    for (const name of ["notes", "tickets", "weather"])
      assert.match(out, new RegExp(`^  ${name} +ready`, "m"));
    assert.match(out, /Ready after \d+\.\d+s/);
    assert.match(out, /VirtualMCPServer deleted; its stack was destroyed by the controller/);
    assert.match(out, /\[demo \+[\d.]+s\] stopped$/m);
  });
});
