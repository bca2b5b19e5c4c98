// The controller image, built and started: scripts/image.sh builds it (buildah, no daemon;
// cached under $VMCP_TOOLS/image, keyed by a hash of what goes in), podman starts it against
// the shared local plane (host network, the plane's kubeconfig mounted read-only, the state
// passphrase from the environment), and the controller inside reconciles a VirtualMCPServer
// to Ready with its backends probed over MCP from inside the container. Prints the image size
// and the start-up time. An image that cannot be built fails the test, with the build's output.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, copyFileSync, chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseAllDocuments } from "yaml";
import { join } from "node:path";
import { startMcpServer, unusedPort, type McpTestServer } from "../../samples/mcpservers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const IMAGE_SH = join(ROOT, "scripts", "image.sh");
const KUBECONFIG_IN = "/etc/vmcp-operator/kubeconfig";
const IMAGE_UID = 65532;
const HOME_IN = "/var/lib/vmcp-operator/pulumi-home";
const STATE_IN = "/var/lib/vmcp-operator/state";

/** The command of the chart's `pulumi-home` init container, from the rendered manifests. */
function initCommand(): string[] {
  type Pod = { initContainers?: { name: string; command?: string[] }[] };
  const docs = parseAllDocuments(
    readFileSync(join(ROOT, "deploy", "manifests", "vmcp-operator.yaml"), "utf8"),
  );
  const dep = docs
    .map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: Pod } } } | null)
    .find((o) => o?.kind === "Deployment");
  const cmd = dep?.spec?.template.spec.initContainers?.find((c) => c.name === "pulumi-home")?.command;
  assert.ok(cmd, "the chart's pulumi-home init container");
  return cmd;
}

/** scripts/image.sh ARGS: stdout, or an error carrying the tail of its output. */
function imageSh(args: string[], env: NodeJS.ProcessEnv = process.env, withStderr = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [IMAGE_SH, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (args[0] === "build") process.stdout.write(d.toString().replace(/^(?=.)/gm, "      "));
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve((withStderr ? out + err : out).trim())
        : reject(new Error(`scripts/image.sh ${args.join(" ")} exited ${code}:\n${err.slice(-4000)}`)),
    );
  });
}
const podman = (...args: string[]) => imageSh(["podman", ...args]);
/** The state passphrase, handed to the container through podman's environment. */
const PASSPHRASE = randomBytes(16).toString("hex");

/** Uid line of /proc/<pid>/status: real, effective, saved, filesystem. */
const uids = (pid: number): number[] =>
  (/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "").split(/\s+/).map(Number);
const childrenOf = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);

describe("the controller image (buildah-built, run by podman)", function () {
  this.timeout(900_000);
  const name = `vmcp-image-test-${randomBytes(3).toString("hex")}`;
  let ns: string;
  let ref: string;
  let started = false;
  let metricsPort: number;
  let secretDir: string | undefined;
  let homeDir: string | undefined;
  let stateDir: string | undefined;
  const servers: McpTestServer[] = [];
  const k = kube(adminKubeConfig, () => ns);

  before(async () => {
    const t0 = Date.now();
    ref = await imageSh(["build"]);
    console.log(`      image ${ref} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (build or cache)`);
    ns = await newNamespace("image");
    servers.push(
      await startMcpServer({ flavour: "streamable-http", spec: { tools: ["search", "get_page"] } }),
    );
    servers.push(
      await startMcpServer({ flavour: "streamable-http", spec: { tools: ["open", "close", "list"] } }),
    );
    await k.create("MCPGroup", "g", {});
    for (const [i, entry] of ["wiki", "tracker"].entries()) await k.entry(entry, "g", servers[i]!.url());
    metricsPort = await unusedPort();
    // The kubeconfig as a Secret volume with fsGroup would give it: readable by the image's
    // user only (the plane's own copy is root's, mode 0600).
    secretDir = mkdtempSync(join(tmpdir(), "vmcp-image-kubeconfig-"));
    copyFileSync(controlPlane().kubeconfigPath, join(secretDir, "kubeconfig"));
    chmodSync(join(secretDir, "kubeconfig"), 0o400);
    chownSync(join(secretDir, "kubeconfig"), IMAGE_UID, IMAGE_UID);
    chmodSync(secretDir, 0o755);
    // The chart's volumes: emptyDir for the Pulumi home, a PVC for the state.
    homeDir = mkdtempSync(join(tmpdir(), "vmcp-image-home-"));
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-image-state-"));
    for (const d of [homeDir, stateDir]) chownSync(d, IMAGE_UID, IMAGE_UID);
  });

  after(async function () {
    this.timeout(120_000);
    if (started) {
      if (this.currentTest?.state !== "passed" || process.env.VMCP_TEST_LOG)
        console.log(
          (
            await imageSh(["podman", "logs", "--tail", "40", name], process.env, true).catch(
              (e: Error) => e.message,
            )
          ).replace(/^(?=.)/gm, "      [ctr] "),
        );
      await podman("rm", "--force", "--time", "10", name).catch((e: Error) =>
        console.log(`      ${e.message}`),
      );
      const left = await podman("ps", "--all", "--filter", `name=^${name}$`, "--format", "{{.Names}}");
      assert.equal(left, "", `container ${name} removed`);
    }
    await Promise.all(servers.map((s) => s.stop()));
    for (const d of [secretDir, homeDir, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("runs the chart's init container: the image's plugins linked into an empty Pulumi home", async () => {
    const [entrypoint, ...args] = initCommand();
    await podman(
      "run",
      "--rm",
      "--read-only",
      "--volume",
      `${homeDir}:${HOME_IN}`,
      "--entrypoint",
      entrypoint!,
      ref,
      ...args,
    );
    assert.equal(readlinkSync(join(homeDir!, "plugins")), "/opt/pulumi/plugins");
    // and again (an init container may run twice on one emptyDir)
    await podman(
      "run",
      "--rm",
      "--read-only",
      "--volume",
      `${homeDir}:${HOME_IN}`,
      "--entrypoint",
      entrypoint!,
      ref,
      ...args,
    );
    assert.equal(readlinkSync(join(homeDir!, "plugins")), "/opt/pulumi/plugins");
  });

  it("starts as a non-root user on a read-only root and reconciles a VirtualMCPServer to Ready", async () => {
    const size = Number(await podman("image", "inspect", "--format", "{{.Size}}", ref));
    const t0 = Date.now();
    await imageSh(
      [
        "podman",
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        // as the chart runs it: read-only root (podman mounts a tmpfs on /tmp), the Pulumi home
        // the init container prepared, the state on a volume
        "--read-only",
        "--volume",
        `${homeDir}:${HOME_IN}`,
        "--volume",
        `${stateDir}:${STATE_IN}`,
        "--volume",
        `${join(secretDir!, "kubeconfig")}:${KUBECONFIG_IN}:ro`,
        "--env",
        "PULUMI_CONFIG_PASSPHRASE", // the value from this environment: never on a command line
        ref,
        "--kubeconfig",
        KUBECONFIG_IN,
        "--namespace",
        ns,
        "--metrics-addr",
        `127.0.0.1:${metricsPort}`,
        "--probe-allow-loopback",
        "--log-level",
        "info",
      ],
      { ...process.env, PULUMI_CONFIG_PASSPHRASE: PASSPHRASE },
    );
    started = true;
    const runMs = Date.now() - t0;
    await poll(
      "the container's /readyz",
      async () => ((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok ? true : undefined),
      120_000,
      100,
    );
    const readyMs = Date.now() - t0;

    // PID 1 of the container is tini; it and Node run as the image's user, not root.
    const pid = Number(await podman("inspect", "--format", "{{.State.Pid}}", name));
    assert.ok(pid > 0, "the container runs");
    const node = childrenOf(pid);
    assert.equal(node.length, 1, "tini runs one child (node)");
    for (const p of [pid, node[0]!]) {
      assert.deepEqual(uids(p), [IMAGE_UID, IMAGE_UID, IMAGE_UID, IMAGE_UID], `pid ${p} runs as uid 65532`);
      assert.match(
        readFileSync(`/proc/${p}/cmdline`, "utf8"),
        p === pid ? /tini/ : /node\0dist\/cli\/main\.js\0controller/,
      );
    }

    const t1 = Date.now();
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "g" },
      incomingAuth: { type: "anonymous" },
      config: { operational: { failureHandling: { healthCheckInterval: "2s", healthCheckTimeout: "1s" } } },
    });
    let last = {};
    const st = await poll(
      "VirtualMCPServer gw Ready with both backends probed",
      async () => {
        const s = await k.statusOf("gw");
        last = s;
        return s.phase === "Ready" && s.capabilities?.tools === 5 ? s : undefined;
      },
      300_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last status: ${JSON.stringify(last)}`);
    });
    const reconcileMs = Date.now() - t1;
    assert.ok(
      readFileSync(join(stateDir!, ".pulumi", "stacks", "vmcp-operator", `${ns}.gw.json`), "utf8").includes(
        "kubernetes:apps/v1:Deployment",
      ),
      "the stack's state is on the state volume",
    );
    assert.equal(st.backendCount, 2, JSON.stringify(st));
    assert.ok(st.stackOutputs?.desiredHash, "the stack's outputs are in the status");
    const dep = await k.apps().readNamespacedDeployment({ name: "gw", namespace: ns });
    assert.equal(dep.status?.availableReplicas, 1, "the vMCP Deployment is available");

    console.log(
      `      image ${(size / 1e6).toFixed(0)} MB; podman run ${runMs} ms, /readyz after ${readyMs} ms; ` +
        `VirtualMCPServer Ready ${reconcileMs} ms after create`,
    );

    // Deleting goes through the containerized controller too (finalizer: stack destroyed).
    await k.remove("VirtualMCPServer", "gw");
    await poll("VirtualMCPServer gw gone", async () =>
      (await k.list("VirtualMCPServer")).some((o) => o.metadata.name === "gw") ? undefined : true,
    );
  });
});
