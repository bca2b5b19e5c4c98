// Pulumi processes left by a killed engine (engine/orphans.ts): which processes count as
// orphans, and the sweep on real processes (`sleep` standing in for a provider plugin).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";
import {
  environValue,
  orphans,
  OWNER_VAR,
  ownerMark,
  parseStat,
  reapOrphans,
  selfMark,
  type Proc,
} from "../../engine/orphans.js";

const NS = "pid:[4026531836]";

describe("engine orphans: what counts as an orphan", () => {
  it("reads the state and start time of /proc/<pid>/stat, also with spaces and parentheses in comm", () => {
    const rest = "0 0 4194560 100 0 0 0 1 2 0 0 20 0 1 0"; // fields 7-21
    assert.deepEqual(parseStat(`42 (pulumi-resource-kubernetes) S 1 42 42 ${rest} 987654 1000 200`), {
      state: "S",
      start: "987654",
    });
    assert.deepEqual(parseStat(`43 (a (b) c) Z 1 43 43 ${rest} 55 0 0`), { state: "Z", start: "55" });
    assert.equal(parseStat("garbage"), undefined);
  });

  it("reads one variable of /proc/<pid>/environ", () => {
    const environ = `PATH=/bin\0${OWNER_VAR}=${NS}/7/100\0${OWNER_VAR}X=no\0`;
    assert.equal(environValue(environ, OWNER_VAR), `${NS}/7/100`);
    assert.equal(environValue(environ, "HOME"), undefined);
  });

  it("a marked process is an orphan when its owner pid is gone or now another process", () => {
    const procs: Proc[] = [
      { pid: 7, start: "100", argv: ["node"] }, // a live engine
      { pid: 8, start: "101", argv: ["pulumi"], owner: ownerMark(NS, 7, "100") }, // its CLI
      { pid: 9, start: "102", argv: ["pulumi-resource-kubernetes"], owner: ownerMark(NS, 5, "90") }, // owner gone
      { pid: 10, start: "103", argv: ["pulumi-resource-kubernetes"], owner: ownerMark(NS, 7, "60") }, // pid 7 reused
      { pid: 11, start: "104", argv: ["pulumi", "up"] }, // a person's pulumi up: no mark
      { pid: 12, start: "105", argv: ["pulumi"], owner: ownerMark("pid:[1]", 3, "1") }, // another namespace
    ];
    assert.deepEqual(
      orphans(procs, NS).map((p) => p.pid),
      [9, 10],
    );
  });
});

describe("engine orphans: the sweep", function () {
  this.timeout(20_000);
  const started: ChildProcess[] = [];
  const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const sleeper = (env: NodeJS.ProcessEnv) => {
    const c = spawn("sleep", ["60"], { env: { ...process.env, ...env }, stdio: "ignore" });
    started.push(c);
    return c;
  };
  after(() => {
    for (const c of started) if (alive(c)) c.kill("SIGKILL");
  });

  it("kills the processes of a dead owner only: not a live owner's, not unmarked ones", async function () {
    if (!selfMark()) this.skip(); // no /proc
    // A dead owner: a process that has exited, with its start time.
    const owner = spawn("true");
    const pid = owner.pid!;
    const start = parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"))?.start;
    await new Promise((r) => owner.on("exit", r));
    assert.ok(start);
    const ns = readlinkSync("/proc/self/ns/pid");
    const orphan = sleeper({ [OWNER_VAR]: ownerMark(ns, pid, start) });
    const ours = sleeper({ [OWNER_VAR]: selfMark() });
    const foreign = sleeper({});
    await new Promise((r) => setTimeout(r, 200)); // exec'd: its environ is sleep's own

    const killed = await reapOrphans();
    assert.ok(
      killed.some((p) => p.pid === orphan.pid),
      "the dead owner's process was stopped",
    );
    await new Promise((r) => (alive(orphan) ? orphan.on("exit", r) : r(undefined)));
    assert.equal(orphan.signalCode, "SIGKILL");
    assert.ok(alive(ours), "a live owner's process is left alone");
    assert.ok(alive(foreign), "an unmarked process is left alone");
    assert.ok(!killed.some((p) => p.pid === ours.pid || p.pid === foreign.pid));
  });
});
