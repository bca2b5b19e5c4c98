// Property-style test of validation: 1,000 seeded invalid VirtualMCPServers (a random
// valid base with one or two mutations from test/support/specgen.ts) are each rejected
// with an error whose path names the mutated field, and validation never throws. A sample
// goes through `vmcpctl render`: exit 1, the path on stderr, nothing on stdout (so the
// builder never ran). Reproduce with VMCP_FUZZ_SEED=<seed>; VMCP_FUZZ_CASES sets the count.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  formatFieldErrors,
  parseObject,
  validateVirtualMCPServer,
  type FieldError,
} from "../../api/index.js";
import { invalidCases, MUTATIONS, rng, validVirtualMCPServer, type InvalidCase } from "../support/specgen.js";
import { ROOT } from "./helpers.js";

const SEED = Number(process.env.VMCP_FUZZ_SEED ?? 20261128);
const COUNT = Number(process.env.VMCP_FUZZ_CASES ?? 1000);
const CLI = join(ROOT, "dist", "cli", "main.js");

/** `path` is `prefix` or lies under it (a.b matches a.b, a.b.c, a.b[0]; not a.bc). */
export function under(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  const next = path[prefix.length];
  return next === undefined || next === "." || next === "[";
}

function describeCase(c: InvalidCase, errors: readonly FieldError[] | string): string {
  return [
    `case ${c.index} (seed ${SEED}): ${c.mutations.join(" + ")}`,
    `  expected paths under: ${c.expects.map((e) => e.prefix).join(", ")}`,
    `  got: ${typeof errors === "string" ? errors : formatFieldErrors(errors).replaceAll("\n", "\n       ")}`,
  ].join("\n");
}

/** What is wrong with the validation of one case, or undefined. */
function check(c: InvalidCase): string | undefined {
  let result: ReturnType<typeof validateVirtualMCPServer>;
  try {
    result = validateVirtualMCPServer(c.object);
  } catch (err) {
    return describeCase(c, `THREW ${err instanceof Error ? err.stack : String(err)}`);
  }
  if (result.ok) return describeCase(c, "accepted as valid");
  const errors = result.errors;
  for (const e of errors) {
    if (!e.path || !e.expected || !e.found || !e.message)
      return describeCase(c, `an error lacks path/expected/found/message: ${JSON.stringify(e)}`);
  }
  for (const exp of c.expects) {
    const hit = errors.some(
      (e) => under(e.path, exp.prefix) && (!exp.mentions || exp.mentions.test(`${e.found} ${e.message}`)),
    );
    if (!hit) return describeCase(c, errors);
  }
  // The controller's cache parses with parseObject: it must agree.
  const parsed = parseObject("VirtualMCPServer", c.object);
  if (parsed.ok) return describeCase(c, "parseObject accepted what validateVirtualMCPServer rejected");
  return undefined;
}

describe(`fuzz: ${COUNT} generated invalid VirtualMCPServers (seed ${SEED})`, function () {
  this.timeout(120_000);
  const cases = invalidCases(SEED, COUNT);

  it("the generator's bases are valid (so every rejection is the mutation's doing)", () => {
    const r = rng(SEED);
    for (let i = 0; i < 200; i++) {
      const base = validVirtualMCPServer(r, `base-${i}`);
      const v = validateVirtualMCPServer(base);
      assert.ok(
        v.ok,
        v.ok ? "" : `base ${i}:\n${formatFieldErrors(v.errors)}\n${JSON.stringify(base, null, 1)}`,
      );
    }
  });

  it("is deterministic: the same seed gives the same cases", () => {
    const again = invalidCases(SEED, 50);
    assert.deepEqual(
      again.map((c) => JSON.stringify(c.object)),
      cases.slice(0, 50).map((c) => JSON.stringify(c.object)),
    );
  });

  it("exercises every mutation of the catalogue, schema and cross-field, single and paired", () => {
    const used = new Set(cases.flatMap((c) => c.mutations));
    const unused = MUTATIONS.map((m) => m.id).filter((id) => !used.has(id));
    assert.deepEqual(unused, [], `mutations never applied: ${unused.join(", ")}`);
    assert.ok(cases.filter((c) => c.level === "rule").length >= COUNT / 4, "enough cross-field cases");
    assert.ok(cases.filter((c) => c.mutations.length === 2).length >= COUNT / 10, "enough paired mutations");
  });

  it(`rejects every one with an error at the mutated field's path, never throwing`, () => {
    const failures = cases.map(check).filter((f): f is string => f !== undefined);
    assert.equal(
      failures.length,
      0,
      `${failures.length} of ${cases.length} cases failed:\n${failures.slice(0, 15).join("\n")}`,
    );
  });

  it("vmcpctl render exits 1 with the path on stderr and nothing on stdout (builder never reached), for 20 of them", async function () {
    this.timeout(180_000);
    const dir = mkdtempSync(join(tmpdir(), "vmcp-fuzz-"));
    try {
      // Spread the sample over the catalogue: every k-th case, both levels. (Cases that break
      // apiVersion/kind/metadata are left out: render skips documents that are not
      // recognisably ToolHive objects, as it skips Secrets and Namespaces.)
      const eligible = cases.filter((c) => c.cluster);
      const step = Math.max(1, Math.floor(eligible.length / 20));
      const sample = eligible.filter((_, i) => i % step === 0).slice(0, 20);
      assert.ok(sample.some((c) => c.level === "rule") && sample.some((c) => c.level === "schema"));
      const run = promisify(execFile);
      const problems: string[] = [];
      for (let i = 0; i < sample.length; i += 4) {
        await Promise.all(
          sample.slice(i, i + 4).map(async (c) => {
            const file = join(dir, `case-${c.index}.yaml`);
            writeFileSync(file, JSON.stringify(c.object, null, 1)); // JSON is YAML
            const r = await run(process.execPath, [CLI, "render", "-f", file], { cwd: ROOT }).then(
              (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
              (err: { code?: number; stdout?: string; stderr?: string }) => ({
                code: err.code ?? -1,
                stdout: err.stdout ?? "",
                stderr: err.stderr ?? "",
              }),
            );
            const missing = c.expects.filter((e) => !r.stderr.includes(e.prefix));
            if (r.code !== 1 || r.stdout !== "" || missing.length)
              problems.push(
                `${describeCase(c, r.stderr)}\n  exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 200))}`,
              );
          }),
        );
      }
      assert.deepEqual(problems, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
