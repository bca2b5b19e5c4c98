// Secrets never leak (self-contained: its own namespace, controller, state and work dirs).
//
// A VirtualMCPServer whose backends need credentials: one MCPServerEntry behind a
// headerInjection MCPExternalAuthConfig (a real MCP server answering 401 without the exact
// header), one behind tokenExchange (a real token endpoint: client_credentials with the
// client secret, then an RFC 8693 exchange; the MCP server wants the exchanged token). The
// controller probes both with the real credentials (so its memory held every value), first
// with a wrong header value, then the right one; the Pulumi engine applies the stack.
// The header's Secret is then rotated (nothing else changes: the next probe reads it). A
// third backend redirects (307) to a server on another origin that records every request
// it receives: the controller must not follow it with the credential.
// Then every place a value could land is scanned for every secret value, raw and base64
// (at each of the three byte alignments): ConfigMaps and every other object of the
// namespace except Secrets, Events, the VirtualMCPServer status, every file of the Pulumi
// state dir and the workspaces dir, every log line the controller wrote (debug level), its
// /metrics, and what the redirect target received.
// Secrets checked: both header values, the client secret, the exchanged access token, the
// Pulumi passphrase, and the HMAC session secret the Pulumi program generated.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import { startController, type Controller } from "../../controller/main.js";
import { KIND_NAMES } from "../../api/index.js";
import * as n from "../../program/names.js";
import {
  startMcpServer,
  startTokenServer,
  type McpTestServer,
  type TokenServer,
} from "../../samples/mcpservers.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { backendOf as backend, kube, mergePatch as merge } from "../support/kube.js";
import { poll } from "../support/poll.js";

/**
 * The strings that betray `value`: itself, and its base64 at each byte alignment (a value
 * inside a larger base64 blob shows up as one of the three, minus the edge characters).
 */
export function needles(value: string): string[] {
  const bytes = Buffer.from(value);
  const out = new Set([value, bytes.toString("base64"), bytes.toString("base64url")]);
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad, 0x20), bytes]).toString("base64");
    // Skip the characters that depend on the padding before and the bytes after.
    const start = Math.ceil((pad * 4) / 3) + (pad ? 1 : 0);
    const end = Math.floor(((pad + bytes.length) * 4) / 3) - 1;
    if (end - start >= 16) out.add(b64.slice(start, end));
  }
  return [...out];
}

/** An HTTP server on 127.0.0.1 and its base URL. */
async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe("secrets never leak: ConfigMaps, objects, Events, status, Pulumi state and workspaces, logs", function () {
  this.timeout(300_000);
  const rand = (label: string) => `${label}-${randomBytes(16).toString("hex")}`;
  const secrets = {
    headerWrong: rand("hdr-wrong"),
    headerRight: rand("hdr-right"),
    clientSecret: rand("client-secret"),
    accessToken: rand("access-token"),
    passphrase: rand("passphrase"),
  };
  let ns: string;
  let stateDir: string;
  let workDir: string;
  let engine: Engine;
  let controller: Controller | undefined;
  const logLines: string[] = [];
  let alpha: McpTestServer;
  let beta: McpTestServer;
  let tokens: TokenServer;
  /** Every request the redirect target received: method, URL, headers, body. */
  const received: string[] = [];
  let target: { server: Server; url: string };
  let redirector: { server: Server; url: string };
  const k = kube(adminKubeConfig, () => ns);
  const { core } = k;
  const vmcp = () => k.vmcp("gw");

  before(async () => {
    ns = await newNamespace("secrets");
    alpha = await startMcpServer({
      flavour: "streamable-http",
      spec: { tools: ["search"], requireHeader: { name: "X-Api-Key", value: secrets.headerRight } },
    });
    beta = await startMcpServer({
      flavour: "streamable-http",
      spec: {
        tools: ["create_issue", "close_issue"],
        requireHeader: { name: "Authorization", value: `Bearer ${secrets.accessToken}` },
      },
    });
    tokens = await startTokenServer({
      clientId: "vmcp-probe",
      clientSecret: secrets.clientSecret,
      accessToken: secrets.accessToken,
      audience: "beta-api",
    });
    target = await listen((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    redirector = await listen((req, res) => {
      req.resume();
      res.writeHead(307, { location: `${target.url}/mcp` }).end();
    });
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "alpha-key" }, stringData: { key: secrets.headerWrong } },
    });
    await core().createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "beta-client" }, stringData: { secret: secrets.clientSecret } },
    });
    await k.readyGroup("g");
    await k.create("MCPExternalAuthConfig", "alpha-header", {
      type: "headerInjection",
      headerInjection: { headerName: "X-Api-Key", valueSecretRef: { name: "alpha-key", key: "key" } },
    });
    await k.create("MCPExternalAuthConfig", "beta-exchange", {
      type: "tokenExchange",
      tokenExchange: {
        tokenUrl: tokens.url,
        clientId: "vmcp-probe",
        clientSecretRef: { name: "beta-client", key: "secret" },
        audience: "beta-api",
        scopes: ["issues"],
      },
    });
    await k.create("MCPServerEntry", "alpha", {
      remoteUrl: alpha.url(),
      transport: "streamable-http",
      groupRef: { name: "g" },
      externalAuthConfigRef: { name: "alpha-header" },
    });
    await k.create("MCPServerEntry", "beta", {
      remoteUrl: beta.url(),
      transport: "streamable-http",
      groupRef: { name: "g" },
      externalAuthConfigRef: { name: "beta-exchange" },
    });
    // Token exchange trades the client's token: behind anonymous incoming auth the backend
    // would be refused (AuthNeedsClientToken). The pods are kwok's: the issuer is never read.
    await k.create("MCPOIDCConfig", "idp", {
      type: "inline",
      inline: { issuer: "https://idp.example.test" },
    });
    await k.create("VirtualMCPServer", "gw", {
      groupRef: { name: "g" },
      incomingAuth: { type: "oidc", oidcConfigRef: { name: "idp", audience: "gw" } },
      config: {
        operational: {
          failureHandling: { healthCheckInterval: "1s", healthCheckTimeout: "900ms", unhealthyThreshold: 1 },
        },
      },
    });
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-secrets-state-"));
    workDir = mkdtempSync(join(tmpdir(), "vmcp-secrets-work-"));
    engine = await createEngine({
      stateDir,
      workDir,
      passphrase: secrets.passphrase,
      kubeconfig: controlPlane().kubeconfigPath,
    });
    controller = await startController({
      probeEgress: { allowLoopback: true }, // the MCP servers listen on 127.0.0.1
      kubeconfig: adminKubeConfig(),
      namespace: ns,
      engine,
      workers: 2,
      resyncMs: 3_600_000, // no resync during the test: a rotation must not wait for one
      applyGraceMs: 5_000,
      metricsAddr: "127.0.0.1:0",
      log: jsonLogger({ level: "debug", write: (line) => void logLines.push(line) }),
    });
  });

  after(async () => {
    await controller?.stop(30_000);
    await engine?.close();
    await Promise.all([alpha?.stop(), beta?.stop(), tokens?.stop()]);
    for (const s of [target?.server, redirector?.server]) s?.close();
    for (const d of [stateDir, workDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it("probes with the credentials: a wrong header value → unauthenticated; the token exchange → ready", async () => {
    const st = await poll("alpha unauthenticated, beta ready", async () => {
      const s = (await vmcp()).status;
      return backend(s, "alpha")?.status === "unauthenticated" && backend(s, "beta")?.status === "ready"
        ? s
        : undefined;
    });
    assert.ok(st.appliedHash, "the stack was applied");
    assert.ok(alpha.stats.unauthorized > 0, "alpha saw the wrong header");
    assert.ok(
      tokens.grants.includes("urn:ietf:params:oauth:grant-type:token-exchange"),
      `token exchanges: ${tokens.grants.join(",")}`,
    );
  });

  it("the Secret rotated to the right header value, nothing else changed → both ready, phase Ready", async () => {
    const generation = (await vmcp()).metadata.generation;
    await core().patchNamespacedSecret(
      { name: "alpha-key", namespace: ns, body: { stringData: { key: secrets.headerRight } } },
      merge,
    );
    // No spec change, no resync: the next probe reads the Secret (a 1 s interval).
    const st = await poll("both ready, phase Ready", async () => {
      const s = (await vmcp()).status;
      return s?.phase === "Ready" &&
        backend(s, "alpha")?.status === "ready" &&
        backend(s, "beta")?.status === "ready"
        ? s
        : undefined;
    });
    assert.equal(st.backendCount, 2);
    assert.ok(alpha.stats.requests > alpha.stats.unauthorized, "alpha answered an authorised probe");
    assert.equal((await vmcp()).metadata.generation, generation, "the spec was not touched");
  });

  it("a backend that redirects to another origin: not followed with the credential", async () => {
    await k.create("MCPServerEntry", "gamma", {
      remoteUrl: `${redirector.url}/mcp`,
      transport: "streamable-http",
      groupRef: { name: "g" },
      externalAuthConfigRef: { name: "alpha-header" },
    });
    const st = await poll("gamma probed: redirected", async () => {
      const s = (await vmcp()).status;
      return /redirected/.test(backend(s, "gamma")?.message ?? "") ? s : undefined;
    });
    assert.match(backend(st, "gamma")?.message ?? "", new RegExp(`to ${target.url.replace(/\./g, "\\.")}`));
    assert.deepEqual(received, [], "the redirect target received nothing");
  });

  it("after all that: 0 occurrences of any secret value, raw or base64, anywhere", async () => {
    // The HMAC session secret the Pulumi program generated is a secret too.
    const hmac = await core().readNamespacedSecret({ name: n.hmacSecretName("gw"), namespace: ns });
    // 32 random bytes: their base64 text is what the program handles (and state would hold).
    const hmacValue = hmac.data?.[n.HMAC_SECRET_KEY] ?? "";
    assert.equal(Buffer.from(hmacValue, "base64").length, 32, "the HMAC secret exists");
    const all: Record<string, string> = { ...secrets, hmac: hmacValue };
    // Let the last reconciles, status writes and Pulumi checkpoints land; then stop (flushes).
    await controller?.queue.idle();
    const metrics = await (await fetch(`http://127.0.0.1:${controller?.port}/metrics`)).text();
    await controller?.stop(30_000);
    controller = undefined;

    const places: { where: string; text: string }[] = [];
    const add = (where: string, obj: unknown) =>
      places.push({ where, text: typeof obj === "string" ? obj : JSON.stringify(obj) });
    const c = core();
    const apps = k.apps();
    const rbac = adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const cms = (await c.listNamespacedConfigMap({ namespace: ns })).items;
    const events = (await c.listNamespacedEvent({ namespace: ns })).items;
    for (const o of cms) add(`ConfigMap ${o.metadata?.name}`, o);
    for (const o of events) add(`Event ${o.metadata?.name} (${o.reason})`, o);
    for (const o of (await c.listNamespacedService({ namespace: ns })).items)
      add(`Service ${o.metadata?.name}`, o);
    for (const o of (await c.listNamespacedPod({ namespace: ns })).items) add(`Pod ${o.metadata?.name}`, o);
    for (const o of (await c.listNamespacedServiceAccount({ namespace: ns })).items)
      add(`ServiceAccount ${o.metadata?.name}`, o);
    for (const o of (await apps.listNamespacedDeployment({ namespace: ns })).items)
      add(`Deployment ${o.metadata?.name}`, o);
    for (const o of (await apps.listNamespacedReplicaSet({ namespace: ns })).items)
      add(`ReplicaSet ${o.metadata?.name}`, o);
    for (const o of (await rbac.listNamespacedRole({ namespace: ns })).items)
      add(`Role ${o.metadata?.name}`, o);
    for (const o of (await rbac.listNamespacedRoleBinding({ namespace: ns })).items)
      add(`RoleBinding ${o.metadata?.name}`, o);
    for (const kind of KIND_NAMES) for (const o of await k.list(kind)) add(`${kind} ${o.metadata.name}`, o);
    add("VirtualMCPServer gw status", (await vmcp()).status);
    const files = [...filesUnder(stateDir), ...filesUnder(workDir)];
    for (const f of files) if (statSync(f).size < 64 << 20) add(`file ${f}`, readFileSync(f, "latin1"));
    add("controller log", logLines.join("\n"));
    add("/metrics", metrics);
    add("what the redirect target received", received.join("\n"));

    // Not vacuous: the places hold what they should.
    const configYaml =
      cms.find((m) => m.metadata?.name === n.configMapName("gw"))?.data?.[n.CONFIG_FILE] ?? "";
    assert.match(configYaml, /headerValueEnv: /, "the config refers to the header value by env var");
    assert.match(configYaml, /clientSecretEnv: /, "the config refers to the client secret by env var");
    assert.ok(events.length >= 3, `events: ${events.length}`);
    const checkpoint = files.find((f) => f.endsWith(`${ns}.gw.json`) && f.includes(".pulumi"));
    assert.ok(checkpoint, `a stack checkpoint exists among ${files.length} files`);
    assert.match(
      readFileSync(checkpoint, "utf8"),
      /"secureValue"|"ciphertext"/,
      "Pulumi secrets are encrypted",
    );
    assert.ok(
      files.some((f) => f.includes(join(".pulumi", "history"))),
      "update history was written (and scanned)",
    );
    assert.ok(logLines.length >= 20, `log lines: ${logLines.length}`);
    assert.match(metrics, /vmcp_/, "the controller's metrics were read");
    assert.ok(
      logLines.some((l) => l.includes("backend health changed")),
      "probe transitions were logged",
    );

    // Control: the scan finds a value where it belongs (a Secret holds it base64-encoded).
    const secretObject = JSON.stringify(await c.readNamespacedSecret({ name: "beta-client", namespace: ns }));
    assert.ok(
      needles(secrets.clientSecret).some((x) => secretObject.includes(x)),
      "the scanner sees the client secret in its own Secret",
    );

    const leaks: string[] = [];
    for (const [label, value] of Object.entries(all)) {
      for (const needle of needles(value)) {
        for (const p of places) {
          const at = p.text.indexOf(needle);
          if (at >= 0)
            leaks.push(
              `${label} (${needle === value ? "raw" : "base64"}) in ${p.where}: …${p.text.slice(Math.max(0, at - 60), at + 20)}…`,
            );
        }
      }
    }
    assert.deepEqual(leaks, [], `scanned ${places.length} places (${files.length} files)`);
  });
});
