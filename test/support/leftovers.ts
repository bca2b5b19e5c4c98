// Pulumi processes a test run left running (scripts/test.sh):
//   node dist/test/support/leftovers.js snapshot FILE   before the suites
//   node dist/test/support/leftovers.js check FILE      after them: exit 1 if any is left
// A process counts as the run's if it is new since the snapshot and carries the run's
// $VMCP_TEST_RUN (every process the suites start inherits it). New Pulumi processes without
// it belong to someone else on the machine (another run, a person's `pulumi up`): listed only.
import { readFileSync, writeFileSync } from "node:fs";
import { describeProcs, pulumiProcesses, type PulumiProc } from "./controllerproc.js";

const RUN_VAR = "VMCP_TEST_RUN";
const id = (p: PulumiProc): string => `${p.pid}/${p.start}`;

function runOf(pid: number): string | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    return env.find((e) => e.startsWith(`${RUN_VAR}=`))?.slice(RUN_VAR.length + 1);
  } catch {
    return undefined;
  }
}

async function check(file: string, run: string): Promise<number> {
  const known = new Set(JSON.parse(readFileSync(file, "utf8")) as string[]);
  // A gracefully stopped CLI stops its plugins within moments: give them 15 s.
  const deadline = Date.now() + 15_000;
  let ours: PulumiProc[];
  let others: PulumiProc[];
  for (;;) {
    const fresh = pulumiProcesses().filter((p) => !known.has(id(p)));
    ours = fresh.filter((p) => runOf(p.pid) === run);
    others = fresh.filter((p) => !ours.includes(p));
    if (ours.length === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(
    `[test] Pulumi processes: ${known.size} before the run, ${ours.length} left by it, ${others.length} new of others`,
  );
  if (others.length) console.log(`[test] (not this run's: ${describeProcs(others)})`);
  if (ours.length) {
    console.log(`[test] the run left Pulumi processes running: ${describeProcs(ours)}`);
    return 1;
  }
  return 0;
}

const [cmd, file] = process.argv.slice(2);
const run = process.env[RUN_VAR];
if (!file || !run || (cmd !== "snapshot" && cmd !== "check")) {
  console.error(`usage: ${RUN_VAR}=<id> leftovers.js snapshot|check FILE`);
  process.exit(2);
}
if (cmd === "snapshot") writeFileSync(file, JSON.stringify(pulumiProcesses().map(id)));
else process.exitCode = await check(file, run);
