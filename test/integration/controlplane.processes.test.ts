// Process hygiene of the local control plane's supervisor, with plain `sleep` children
// standing in for etcd and kube-apiserver: nothing may outlive its parent, however the
// parent ends (stop(), normal exit, SIGTERM, or SIGKILL where no JS hook can run).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePorts } from "../../localcluster/ports.js";
import { isAlive, Supervisor } from "../../localcluster/processes.js";

/** Pids whose process group is `pgid` (scans /proc). */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") pids.push(Number(entry));
    } catch {
      // raced with an exit
    }
  }
  return pids;
}

async function eventually(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe("local control plane: process supervision", function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "vmcp-proc-test-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("stop() kills the whole process group, grandchildren included", async () => {
    const sup = new Supervisor({ logDir: dir, pidFile: join(dir, "pids") });
    const proc = sup.start({
      name: "forker",
      command: "/bin/sh",
      args: ["-c", "sleep 300 & sleep 300; wait"],
    });
    await eventually("two sleeps in the group", () => groupMembers(proc.pid).length >= 3);
    const members = groupMembers(proc.pid);
    await sup.stop(2000);
    await eventually("group gone", () => members.every((pid) => !isAlive(pid)));
  });

  it("stop() escalates to SIGKILL when SIGTERM is ignored", async () => {
    const sup = new Supervisor({ logDir: dir, pidFile: join(dir, "pids") });
    const proc = sup.start({
      name: "stubborn",
      command: "/bin/sh",
      args: ["-c", "trap '' TERM; sleep 300; :"],
    });
    await sleep(200);
    const t0 = Date.now();
    await sup.stop(300);
    assert.ok(Date.now() - t0 >= 300, "waited for the grace period");
    assert.equal(proc.exit?.signal, "SIGKILL");
    assert.ok(!isAlive(proc.pid));
  });

  it("writes each component's output to <logDir>/<name>.log", async () => {
    const sup = new Supervisor({ logDir: dir, pidFile: join(dir, "pids") });
    const proc = sup.start({ name: "talker", command: "/bin/sh", args: ["-c", "echo out; echo err >&2"] });
    await proc.exited;
    await sup.stop();
    assert.equal(readFileSync(join(dir, "talker.log"), "utf8"), "out\nerr\n");
  });

  for (const ending of ["exit", "SIGTERM", "SIGINT", "SIGKILL"] as const) {
    it(`kills the components when the parent ends by ${ending}`, async () => {
      const moduleUrl = new URL("../../localcluster/processes.js", import.meta.url).href;
      const script = join(dir, "parent.mjs");
      writeFileSync(
        script,
        `import { Supervisor } from ${JSON.stringify(moduleUrl)};
const sup = new Supervisor({ logDir: ${JSON.stringify(dir)}, pidFile: ${JSON.stringify(join(dir, "pids"))} });
const p = sup.start({ name: "child", command: "/bin/sleep", args: ["300"] });
process.stdout.write(p.pid + "\\n");
if (${JSON.stringify(ending)} === "exit") setTimeout(() => process.exit(0), 300);
else setInterval(() => {}, 1000);
`,
      );
      const parent = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
      const childPid = await new Promise<number>((resolve) =>
        parent.stdout.once("data", (b: Buffer) => resolve(Number(String(b).trim()))),
      );
      assert.ok(isAlive(childPid));
      if (ending !== "exit") parent.kill(ending);
      // SIGKILL leaves it to the shell watchdog, which polls once a second.
      await eventually(`child ${childPid} to die after parent ${ending}`, () => !isAlive(childPid), 5000);
    });
  }

  it("freePorts returns distinct loopback ports", async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    for (const p of ports) assert.ok(p > 0 && p < 65536);
  });
});
