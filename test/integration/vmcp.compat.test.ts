// Compatibility with ToolHive's own runtime: the config.yaml we generate is accepted by
// `vmcp validate`, and `vmcp serve` on it aggregates real MCP servers into exactly the
// tool list our capability count predicts. The binary is ToolHive's vmcp 0.44.0, built
// from its Go module by scripts/toolchain.sh (VMCP_BINARY).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { parse } from "yaml";
import { aggregateCapabilities, type AggregationLike } from "../../health/capabilities.js";
import { renderAll } from "../../program/render.js";
import { SAMPLE_NAMES, startSample, type Sample } from "../../samples/demo.js";
import { EXAMPLES, exampleLoaded, loadYaml, SETTINGS } from "../unit/helpers.js";
import { podEnv, VMCP, vmcpModuleVersion, vmcpValidate } from "../support/vmcp.js";

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("compatibility with ToolHive's vmcp 0.44.0", function () {
  this.timeout(120_000);
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "vmcp-compat-"));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("runs ToolHive's vmcp built from the 0.44.0 module", () => {
    assert.equal(vmcpModuleVersion(), "v0.44.0", `${VMCP}`);
  });

  // Counted, so that a loop over no examples (or examples that render nothing) cannot pass.
  let validated = 0;
  it("has examples to validate", () => {
    assert.ok(EXAMPLES.length >= 7, `examples: ${EXAMPLES.join(", ")}`);
  });
  for (const name of EXAMPLES) {
    it(`vmcp validate accepts the config.yaml of examples/${name}`, async () => {
      const loaded = exampleLoaded(name);
      const result = renderAll(loaded.objects, SETTINGS, loaded.configMaps);
      assert.deepEqual(result.errors, []);
      assert.ok(result.rendered.length > 0, `examples/${name} rendered nothing to validate`);
      for (const r of result.rendered) {
        const file = join(work, `${r.vmcp.replace("/", "_")}.yaml`);
        writeFileSync(file, r.configYaml);
        // The pod gets its secret env vars from secretKeyRefs; vmcp checks they are set.
        const v = await vmcpValidate(file, podEnv(r.objects));
        assert.ok(v.ok, `${r.vmcp}: ${v.output}`);
        validated++;
      }
    });
  }
  it("ran vmcp validate on at least one config of every example", () => {
    assert.ok(validated >= EXAMPLES.length, `${validated} configs validated for ${EXAMPLES.length} examples`);
  });

  describe("vmcp serve on our config", () => {
    const samples: Sample[] = [];
    let vmcp: ChildProcess | undefined;
    let client: Client | undefined;
    after(async () => {
      await client?.close().catch(() => undefined);
      vmcp?.kill("SIGKILL");
      await Promise.all(samples.map((s) => s.stop()));
    });

    it("advertises exactly the tools our aggregation predicts", async () => {
      for (const n of SAMPLE_NAMES) samples.push(await startSample(n));
      const manifests = loadYaml(
        [
          `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: demo, namespace: ns}
spec: {}`,
          ...samples.map(
            (s) => `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: ${s.name}, namespace: ns}
spec: {remoteUrl: "${s.url}", transport: streamable-http, groupRef: {name: demo}}`,
          ),
          `apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: gw, namespace: ns}
spec:
  groupRef: {name: demo}
  incomingAuth: {type: anonymous}
  config:
    aggregation:
      conflictResolution: prefix
      tools:
        - workload: notes
          filter: [search, create_note]`,
        ].join("\n---\n"),
      );
      const [rendered] = renderAll(manifests, SETTINGS).rendered;
      assert.ok(rendered);
      const file = join(work, "serve.yaml");
      writeFileSync(file, rendered.configYaml);
      const port = await freePort();
      vmcp = spawn(VMCP, ["serve", "--config", file, "--host", "127.0.0.1", "--port", String(port)], {
        env: { ...process.env, HOME: work, XDG_CONFIG_HOME: work },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let log = "";
      vmcp.stdout?.on("data", (d: Buffer) => (log += d.toString()));
      vmcp.stderr?.on("data", (d: Buffer) => (log += d.toString()));

      const deadline = Date.now() + 60_000;
      let tools: string[] | undefined;
      while (!tools) {
        if (vmcp.exitCode !== null) assert.fail(`vmcp serve exited ${vmcp.exitCode}:\n${log}`);
        try {
          client = new Client({ name: "compat-test", version: "1.0.0" });
          await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
          tools = (await client.listTools()).tools.map((t) => t.name).sort();
        } catch (err) {
          await client?.close().catch(() => undefined);
          if (Date.now() > deadline) assert.fail(`vmcp serve did not answer: ${String(err)}\n${log}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }

      const config = parse(rendered.configYaml) as { aggregation: AggregationLike };
      const predicted = aggregateCapabilities(
        samples.map((s) => ({ name: s.name, toolNames: s.tools, resources: 0, prompts: 0 })),
        config.aggregation,
      );
      assert.deepEqual(tools, predicted.tools.map((t) => t.name).sort(), log);
      assert.equal(tools.length, predicted.counts.tools);
      assert.ok(tools.includes("notes_search") && tools.includes("tickets_search"), tools.join(", "));
      assert.ok(!tools.includes("notes_list_notes"), "the filter was not applied");
    });
  });
});
