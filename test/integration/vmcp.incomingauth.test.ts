// Runtime proof of incoming auth with ToolHive's own vmcp 0.44.0 (VMCP_BINARY): for an
// OIDC-protected VirtualMCPServer, `vmcp serve` on the config.yaml WE render refuses
// requests without a valid token, serves MCP with one, and enforces the Cedar policy —
// for each source of that policy (inline, a ConfigMap, an MCPAuthzConfig). The issuer
// is test-local (discovery + JWKS on 127.0.0.1, tokens signed here); the backend is a
// real MCP server. Each source uses claim settings that differ from vmcp's defaults, so
// a permit only matches if our converter carried them through.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { parseManifests } from "../../program/manifests.js";
import { startSample, type Sample } from "../../samples/demo.js";
import { renderAll } from "../../program/render.js";
import { startIssuer, type TestIssuer } from "../support/oidcissuer.js";
import { unusedPort } from "../../samples/mcpservers.js";
import { SETTINGS } from "../unit/helpers.js";

const VMCP = process.env.VMCP_BINARY ?? "vmcp";
const CLIENT_SECRET = "s3cret-from-the-secret";
const ALLOWED = "notes_search";
const FORBIDDEN = "notes_create_note";

interface Source {
  name: string;
  /** The VirtualMCPServer's incomingAuth authorization part (YAML, indented 4). */
  incomingAuthz: string;
  /** Further manifests the policy lives in. */
  extra: string[];
  /** Claims that make the caller a member the policy permits. */
  member: Record<string, unknown>;
}

const permitAndForbid = (group: string) => [
  `permit(principal in ${group}, action == Action::"call_tool", resource);`,
  `forbid(principal, action == Action::"call_tool", resource == Tool::"${FORBIDDEN}");`,
];

const SOURCES: Source[] = [
  {
    name: "inline",
    incomingAuthz: `    authzConfig:
      type: inline
      inline:
        policies: ${JSON.stringify(permitAndForbid('Team::"staff"'))}
      groupClaimName: teams
      groupEntityType: Team`,
    extra: [],
    member: { teams: ["staff"] },
  },
  {
    name: "configMap",
    incomingAuthz: `    authzConfig:
      type: configMap
      configMap: {name: gw-policy, key: authz.json}`,
    extra: [
      `apiVersion: v1
kind: ConfigMap
metadata: {name: gw-policy, namespace: ns}
data:
  authz.json: ${JSON.stringify(
    JSON.stringify({
      version: "1.0",
      type: "cedarv1",
      cedar: {
        policies: permitAndForbid('THVGroup::"editors"'),
        entities_json: "[]",
        role_claim_name: "app_roles",
      },
    }),
  )}`,
    ],
    member: { app_roles: ["editors"] },
  },
  {
    name: "MCPAuthzConfig",
    incomingAuthz: `    authzConfigRef: {name: ops-policy}`,
    extra: [
      `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPAuthzConfig
metadata: {name: ops-policy, namespace: ns}
spec:
  type: cedarv1
  config:
    policies: ${JSON.stringify(permitAndForbid('Dept::"ops"'))}
    group_claim_name: memberships
    group_entity_type: Dept`,
    ],
    member: { memberships: ["ops"] },
  },
];

function manifests(issuer: TestIssuer, backend: Sample, source: Source): string {
  return [
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: tools, namespace: ns}
spec: {}`,
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: ${backend.name}, namespace: ns}
spec: {remoteUrl: "${backend.url}", transport: streamable-http, groupRef: {name: tools}}`,
    // The issuer is plain http on loopback: ToolHive's flags for a development issuer.
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPOIDCConfig
metadata: {name: test-idp, namespace: ns}
spec:
  type: inline
  inline:
    issuer: "${issuer.url}"
    clientId: vmcp-test
    clientSecretRef: {name: test-idp-client, key: secret}
    insecureAllowHTTP: true
    jwksAllowPrivateIP: true`,
    ...source.extra,
    `apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: gw-${source.name.toLowerCase()}, namespace: ns}
spec:
  groupRef: {name: tools}
  incomingAuth:
    type: oidc
    oidcConfigRef: {name: test-idp, audience: ${audience(source)}}
${source.incomingAuthz}`,
  ].join("\n---\n");
}

const audience = (source: Source) => `gw-${source.name.toLowerCase()}`;

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
type DeploymentLike = { kind: string; spec: { template: { spec: { containers: { env?: EnvVar[] }[] } } } };

/**
 * The env vars the Deployment takes from Secrets, resolved as the kubelet would: from the
 * Secrets the user holds, or (for the operator's own per-server HMAC Secret) a fresh value.
 * The container's plain env (HOME=/tmp, TOOLHIVE_RUNTIME=kubernetes) describes the pod,
 * not this laptop process, and is left out.
 */
function secretEnv(objects: readonly { kind: string }[], secrets: Record<string, string>) {
  const dep = objects.find((o) => o.kind === "Deployment") as DeploymentLike | undefined;
  assert.ok(dep, "no Deployment rendered");
  const env: Record<string, string> = {};
  for (const e of dep.spec.template.spec.containers[0]?.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (!ref) continue;
    const held = secrets[`${ref.name}/${ref.key}`];
    if (held !== undefined) env[e.name] = held;
    else if (ref.name.endsWith("-hmac-secret")) env[e.name] = randomBytes(32).toString("base64");
    else
      assert.fail(`env ${e.name} refers to Secret ${ref.name} key ${ref.key}, which the user never created`);
  }
  return env;
}

async function waitHealthy(base: string, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) assert.fail(`vmcp serve exited ${proc.exitCode}:\n${log()}`);
    try {
      if ((await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) assert.fail(`vmcp serve never became healthy:\n${log()}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
});

/** A raw initialize POST with the given Authorization header (or none). */
async function initialize(mcpUrl: string, authorization?: string): Promise<Response> {
  return fetch(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(authorization ? { authorization } : {}),
    },
    body: INITIALIZE,
    signal: AbortSignal.timeout(10_000),
  });
}

/** vmcp's Cedar denial: HTTP 403 with a JSON-RPC error saying the policy denied the call. */
function denied(err: unknown): true {
  const e = err as { code?: unknown; message?: string };
  assert.equal(e.code, 403, String(err));
  assert.match(e.message ?? "", /denied by authorization policy/);
  return true;
}

describe("incoming auth (OIDC + Cedar) with ToolHive's vmcp 0.44.0", function () {
  this.timeout(120_000);
  let work: string;
  let issuer: TestIssuer;
  let backend: Sample;
  const clients: Client[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "vmcp-incomingauth-"));
    issuer = await startIssuer();
    backend = await startSample("notes");
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await backend?.stop();
    await issuer?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function connect(mcpUrl: string, token: string): Promise<Client> {
    const client = new Client({ name: "incomingauth-test", version: "1.0.0" });
    clients.push(client);
    await client.connect(
      new StreamableHTTPClientTransport(new URL(mcpUrl), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    return client;
  }

  for (const source of SOURCES) {
    describe(`authorization from ${source.name}`, () => {
      let vmcp: ChildProcess | undefined;
      let log = "";
      let mcpUrl = "";
      const aud = audience(source);

      before(async () => {
        const loaded = parseManifests(manifests(issuer, backend, source), source.name);
        assert.deepEqual(loaded.errors, []);
        const result = renderAll(loaded.objects, SETTINGS, loaded.configMaps);
        assert.deepEqual(result.errors, []);
        const [rendered] = result.rendered;
        assert.ok(rendered);
        const file = join(work, `${aud}.yaml`);
        writeFileSync(file, rendered.configYaml);
        const port = await unusedPort();
        const base = `http://127.0.0.1:${port}`;
        mcpUrl = `${base}/mcp`;
        vmcp = spawn(VMCP, ["serve", "--config", file, "--host", "127.0.0.1", "--port", String(port)], {
          env: {
            PATH: process.env.PATH ?? "",
            HOME: work,
            XDG_CONFIG_HOME: work,
            ...secretEnv(rendered.objects, { "test-idp-client/secret": CLIENT_SECRET }),
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        vmcp.stdout?.on("data", (d: Buffer) => (log += d.toString()));
        vmcp.stderr?.on("data", (d: Buffer) => (log += d.toString()));
        await waitHealthy(base, vmcp, () => log);
      });
      after(async () => {
        if (vmcp && vmcp.exitCode === null) {
          const exited = new Promise((r) => vmcp?.once("exit", r));
          vmcp.kill("SIGTERM");
          const t = setTimeout(() => vmcp?.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(t);
        }
      });

      it("answers 401 without a token, with a foreign signature, the wrong audience, or an expired token", async () => {
        const none = await initialize(mcpUrl);
        assert.equal(none.status, 401, log);
        assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/i);
        const bad = {
          "foreign signature": issuer.token(aud, source.member, { foreignKey: true }),
          "another audience": issuer.token("someone-else", source.member),
          expired: issuer.token(aud, source.member, { expiresIn: -60 }),
        };
        for (const [what, token] of Object.entries(bad))
          assert.equal((await initialize(mcpUrl, `Bearer ${token}`)).status, 401, `${what}\n${log}`);
        // The same request with a good token gets through: the 401s are the token's fault.
        const good = await initialize(mcpUrl, `Bearer ${issuer.token(aud, source.member)}`);
        assert.equal(good.status, 200, log);
      });

      it("serves MCP with a valid token: initialize, tools/list without the forbidden tool", async () => {
        const client = await connect(mcpUrl, issuer.token(aud, source.member));
        const tools = (await client.listTools()).tools.map((t) => t.name).sort();
        assert.deepEqual(tools, ["notes_list_notes", "notes_search"], log);
        // The validator found the keys through the issuer's discovery document.
        assert.ok((issuer.hits["/.well-known/openid-configuration"] ?? 0) > 0, "no OIDC discovery");
        assert.ok((issuer.hits["/jwks"] ?? 0) > 0, "JWKS never fetched");
      });

      it("lets the permitted tool run and refuses the forbidden one", async () => {
        const client = await connect(mcpUrl, issuer.token(aud, source.member));
        const ok = await client.callTool({ name: ALLOWED, arguments: { q: "roadmap" } });
        assert.notEqual(ok.isError, true, JSON.stringify(ok));
        assert.deepEqual(ok.content, [{ type: "text", text: '2 notes mention "roadmap"' }]);
        await assert.rejects(client.callTool({ name: FORBIDDEN, arguments: { q: "x" } }), denied);
      });

      it("permits nothing to a caller outside the policy's group (the claim mapping is in force)", async () => {
        const client = await connect(mcpUrl, issuer.token(aud, { sub: "mallory" }));
        assert.deepEqual((await client.listTools()).tools, [], log);
        await assert.rejects(client.callTool({ name: ALLOWED, arguments: { q: "x" } }), denied);
      });
    });
  }
});
