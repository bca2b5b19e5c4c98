// The example CI job's render step, run on a real git repository with two revisions.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT } from "./helpers.js";

describe("example CI workflow", () => {
  it("posts the markdown that scripts/ci-preview.sh renders for a pull request", function () {
    this.timeout(60_000);
    const workflow = parse(readFileSync(join(ROOT, "docs", "ci", "vmcp-preview.github.yaml"), "utf8")) as {
      jobs: { preview: { steps: { run?: string }[] } };
    };
    const render = workflow.jobs.preview.steps.find((s) => s.run?.includes("ci-preview.sh"));
    assert.ok(render?.run, "the workflow has no render step");

    const repo = mkdtempSync(join(tmpdir(), "vmcp-ci-"));
    try {
      const git = (...args: string[]) =>
        execFileSync("git", ["-c", "user.email=ci@example.com", "-c", "user.name=ci", ...args], {
          cwd: repo,
        });
      mkdirSync(join(repo, "manifests"));
      cpSync(join(ROOT, "examples", "external-auth", "vmcp.yaml"), join(repo, "manifests", "saas.yaml"));
      git("init", "-q", "-b", "main");
      git("add", ".");
      git("commit", "-qm", "base");
      git("update-ref", "refs/remotes/origin/main", "HEAD");
      const file = join(repo, "manifests", "saas.yaml");
      writeFileSync(
        file,
        readFileSync(file, "utf8").replace("headerName: X-API-Key", "headerName: X-Search-Key"),
      );
      git("commit", "-qam", "rename the header");

      // The step's script, as GitHub would run it (github.base_ref = main).
      const script = render.run
        .replace("${{ github.base_ref }}", "main")
        .replace(/scripts\//g, `${join(ROOT, "scripts")}/`);
      const env = { ...process.env, GITHUB_OUTPUT: join(repo, "github-output") };
      const r = spawnSync("bash", ["-e", "-c", script], { cwd: repo, encoding: "utf8", env });
      assert.equal(r.status, 0, r.stderr);
      assert.match(readFileSync(join(repo, "github-output"), "utf8"), /code=2/);
      const md = readFileSync(join(repo, "preview.md"), "utf8");
      assert.match(md, /#### VirtualMCPServer `platform\/saas-gateway`/);
      assert.match(md, /\+ {8}headerName: X-Search-Key/);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
