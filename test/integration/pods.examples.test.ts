// Every example of examples/, as a user applies it, deployed by the controller onto real
// vMCP pods (the process kubelet runs ToolHive's vmcp): an MCP client that connects through
// the Service sees exactly the tool list our capability count predicts, and a tool call
// reaches its backend with the credential the example declares. Only what the example
// points at outside the cluster is replaced: each member's URL by a real MCP server with
// the tools the example names, an OIDC issuer and a token endpoint by local ones.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { aggregateCapabilities, type AggregationLike } from "../../health/capabilities.js";
import { serviceProxy, type ProcessKubelet, type ServiceProxy } from "../../localcluster/index.js";
import { configMapName, serviceName, VMCP_PORT } from "../../program/names.js";
import {
  startMcpServer,
  startTokenServer,
  type McpTestServer,
  type TokenServer,
} from "../../samples/mcpservers.js";
import type { TestController } from "../support/controller.js";
import { kube, type Kube } from "../support/kube.js";
import { startIssuer, type TestIssuer } from "../support/oidcissuer.js";
import { poll } from "../support/poll.js";
import { EXAMPLES, ROOT } from "../unit/helpers.js";
import { adminKubeConfig, newNamespace, runPods, startPodsController } from "./fixture.js";

/** Examples that cannot run on this machine, and why (the list must stay exact). */
const NOT_HERE: Record<string, string> = {
  "shared-configs":
    "its optimizer needs a TEI embedding server and its sessions a Redis in the cluster; neither image runs here",
};

const MEMBER_KINDS = new Set(["MCPServer", "MCPServerEntry", "MCPRemoteProxy"]);
/** A document of an example file, as the user's `kubectl apply` sends it. */
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
const specOf = (o: Obj) => o.spec ?? {};
const documentsOf = (example: string): Obj[] =>
  parseAllDocuments(readFileSync(join(ROOT, "examples", example, "vmcp.yaml"), "utf8"))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o);

/** Tool names the example refers to, per workload: filters, overrides, tool configs, composite steps. */
function namedTools(objects: readonly Obj[], members: readonly string[]): Map<string, Set<string>> {
  const tools = new Map(members.map((m) => [m, new Set<string>()] as const));
  const add = (workload: string, names: Iterable<string>) => {
    for (const n of names) tools.get(workload)?.add(n);
  };
  const toolConfig = (name: string) =>
    objects.find((o) => o.kind === "MCPToolConfig" && o.metadata.name === name) as Obj | undefined;
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      const m = /^([a-z0-9-]+)\.([A-Za-z0-9_-]+)$/.exec(v);
      if (m && tools.has(m[1]!)) add(m[1]!, [m[2]!]);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") {
      const o = v as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      if (typeof o.workload === "string") {
        add(o.workload, o.filter ?? []);
        add(o.workload, Object.keys(o.overrides ?? {}));
        const tc = o.toolConfigRef?.name ? toolConfig(o.toolConfigRef.name) : undefined;
        if (tc)
          add(o.workload, [...(tc.spec?.toolsFilter ?? []), ...Object.keys(tc.spec?.toolsOverride ?? {})]);
      }
      Object.values(o).forEach(visit);
    }
  };
  objects.forEach((o) => visit(specOf(o)));
  return tools;
}

interface Deployed {
  example: string;
  ns: string;
  k: Kube;
  vmcps: string[];
  samples: Map<string, McpTestServer>;
  /** The tools each sample serves. */
  toolsOf: Map<string, string[]>;
  /** Bearer token a client presents to `vmcp` (OIDC examples), else undefined. */
  tokenFor(vmcp: string, who?: "member" | "outsider"): string | undefined;
  /** Whether `vmcp` has an authorization policy. */
  authorized(vmcp: string): boolean;
  controller: TestController;
  tokenServers: TokenServer[];
}

describe("every example on real vMCP pods: the tools we predict, served through the Service", function () {
  this.timeout(900_000);
  let kubelet: ProcessKubelet;
  let issuer: TestIssuer;
  const deployed: Deployed[] = [];
  const proxies: ServiceProxy[] = [];
  const runnable = EXAMPLES.filter((e) => !(e in NOT_HERE));

  async function deploy(example: string): Promise<Deployed> {
    const host = kubelet.gateway; // pods reach the host's servers here
    const ns = await newNamespace(`ex-${example}`.slice(0, 20));
    const k = kube(adminKubeConfig, () => ns);
    const objects = documentsOf(example);
    for (const o of objects) o.metadata.namespace = ns;
    const secretValue = (name: string, key: string) => {
      const s = objects.find((o) => o.kind === "Secret" && o.metadata.name === name) as
        (Obj & { stringData?: Record<string, string> }) | undefined;
      const v = s?.stringData?.[key] ?? (s?.data?.[key] && Buffer.from(s.data[key], "base64").toString());
      assert.ok(v, `${example}: Secret ${name}/${key} is not in the example`);
      return v;
    };
    const authConfig = (name: string | undefined) =>
      objects.find((o) => o.kind === "MCPExternalAuthConfig" && o.metadata.name === name);
    const memberObjs = objects.filter((o) => MEMBER_KINDS.has(o.kind));
    const vmcpObjs = objects.filter((o) => o.kind === "VirtualMCPServer");
    const tools = namedTools(
      objects,
      memberObjs.map((m) => m.metadata.name),
    );

    // Each member's credential as the example declares it: its own ref, or each VirtualMCPServer's
    // outgoingAuth (per backend, then default). A sample insists on it only when every
    // VirtualMCPServer in front of the member sends the same one.
    const credentialOf = (member: Obj): Obj | undefined => {
      const own = specOf(member).externalAuthConfigRef?.name as string | undefined;
      const refs = new Set(
        vmcpObjs.map((v) => {
          const out = specOf(v).outgoingAuth ?? {};
          const ref = out.backends?.[member.metadata.name] ?? out.default;
          return ref?.type === "externalAuthConfigRef" ? ref.externalAuthConfigRef?.name : own;
        }),
      );
      return refs.size === 1 ? authConfig([...refs][0]) : undefined;
    };

    const samples = new Map<string, McpTestServer>();
    const toolsOf = new Map<string, string[]>();
    const tokenServers: TokenServer[] = [];
    for (const m of memberObjs) {
      const name = m.metadata.name;
      const auth = credentialOf(m);
      const a = auth ? specOf(auth) : undefined;
      let requireHeader: { name: string; value: string } | undefined;
      if (a?.type === "headerInjection")
        requireHeader = {
          name: a.headerInjection.headerName,
          value: secretValue(a.headerInjection.valueSecretRef.name, a.headerInjection.valueSecretRef.key),
        };
      if (a?.type === "tokenExchange") {
        const te = a.tokenExchange;
        const accessToken = `exchanged-${randomBytes(8).toString("hex")}`;
        const sts = await startTokenServer({
          clientId: te.clientId,
          clientSecret: secretValue(te.clientSecretRef.name, te.clientSecretRef.key),
          accessToken,
          audience: te.audience,
          host,
          acceptSubject: (t) => issuer.issued(t),
        });
        tokenServers.push(sts);
        te.tokenUrl = sts.url;
        // plain http to the test's token endpoint: the user's opt-in (docs/security.md)
        auth!.metadata.annotations = {
          ...auth!.metadata.annotations,
          "vmcp.stacklok.dev/allow-http-token-url": "true",
        };
        requireHeader = { name: "Authorization", value: `Bearer ${accessToken}` };
      }
      const spec = specOf(m);
      const flavour =
        m.kind === "MCPServer" && spec.transport === "stdio"
          ? (spec.proxyMode ?? "streamable-http")
          : (spec.transport ?? "streamable-http");
      const served = [...new Set(["search", ...(tools.get(name) ?? [])])];
      const server = await startMcpServer({
        flavour,
        host,
        // read-only tools: what oidc-authz's readers-only policy lets its readers see
        spec: { tools: served, readOnly: true, ...(requireHeader ? { requireHeader } : {}) },
      });
      samples.set(name, server);
      toolsOf.set(name, served);
      if (m.kind === "MCPServerEntry") spec.remoteUrl = server.url();
    }
    // OIDC: the example's issuer is replaced by the local one (plain http: ToolHive's dev flag).
    for (const o of objects.filter((o) => o.kind === "MCPOIDCConfig")) {
      const inline = specOf(o).inline;
      if (!inline) continue;
      inline.issuer = issuer.url;
      inline.jwksUrl = `${issuer.url}/jwks`;
      inline.insecureAllowHTTP = true;
      inline.jwksAllowPrivateIP = true; // the pods reach it at the kubelet's gateway
      delete inline.introspectionUrl;
      delete inline.caBundleRef;
    }

    // What the example's user applies, in dependency order; then what ToolHive's operator
    // would write (group ready, each MCPServer's URL).
    const rank = (o: Obj) => (o.kind === "VirtualMCPServer" ? 2 : MEMBER_KINDS.has(o.kind) ? 1 : 0);
    for (const o of [...objects].sort((a, b) => rank(a) - rank(b))) {
      if (o.kind === "Secret") await k.core().createNamespacedSecret({ namespace: ns, body: o });
      else if (o.kind === "ConfigMap") await k.core().createNamespacedConfigMap({ namespace: ns, body: o });
      else await k.createObject(o);
    }
    for (const g of objects.filter((o) => o.kind === "MCPGroup"))
      await k.patchStatus("MCPGroup", g.metadata.name, { phase: "Ready" });
    for (const m of memberObjs.filter((m) => m.kind === "MCPServer"))
      await k.patchStatus("MCPServer", m.metadata.name, {
        url: samples.get(m.metadata.name)!.url(),
        phase: "Ready",
      });

    const controller = await startPodsController(`ex-${example}`, ns);
    const tokenFor = (vmcp: string, who: "member" | "outsider" = "member") => {
      const v = vmcpObjs.find((o) => o.metadata.name === vmcp)!;
      const incoming = specOf(v).incomingAuth;
      if (incoming?.type !== "oidc") return undefined;
      const aud = incoming.oidcConfigRef?.audience ?? vmcp;
      // a member of every group the example's policies name, or of none
      return who === "member"
        ? issuer.token(aud, { groups: ["finance", "readers"], roles: ["reader"] })
        : issuer.token(aud, { sub: "mallory", groups: [] });
    };
    const authorized = (vmcp: string) => {
      const incoming = specOf(vmcpObjs.find((o) => o.metadata.name === vmcp)!).incomingAuth ?? {};
      return !!(incoming.authzConfig || incoming.authzConfigRef);
    };
    return {
      example,
      ns,
      k,
      vmcps: vmcpObjs.map((v) => v.metadata.name),
      samples,
      toolsOf,
      tokenFor,
      authorized,
      controller,
      tokenServers,
    };
  }

  before(async function () {
    kubelet = await runPods();
    issuer = await startIssuer({ host: kubelet.gateway });
    // Deployed together: the pods start while the next example is applied.
    for (const e of runnable) deployed.push(await deploy(e));
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(deployed.map((d) => d.controller.stop()));
    await Promise.all(deployed.flatMap((d) => [...d.samples.values()].map((s) => s.stop())));
    await Promise.all(deployed.flatMap((d) => d.tokenServers.map((t) => t.stop())));
    await issuer?.stop();
  });

  it("leaves out only the examples named with a reason", () => {
    assert.deepEqual(
      EXAMPLES.filter((e) => !runnable.includes(e)),
      Object.keys(NOT_HERE).filter((e) => EXAMPLES.includes(e)),
    );
    for (const e of Object.keys(NOT_HERE))
      assert.ok(EXAMPLES.includes(e), `NOT_HERE names ${e}, not an example`);
  });

  for (const example of EXAMPLES.filter((e) => !(e in NOT_HERE))) {
    it(`examples/${example}: each VirtualMCPServer serves the predicted tools through its Service`, async () => {
      const d = deployed.find((x) => x.example === example)!;
      const outsiderSaw = new Map<string, number>();
      for (const vmcp of d.vmcps) {
        const status = await poll(
          `${d.ns}/${vmcp} Ready with a tool count and all pods ready`,
          async () => {
            const s = await d.k.statusOf(vmcp);
            if (s.phase !== "Ready" || s.capabilities?.tools === undefined) return undefined;
            const dep = await d.k.apps().readNamespacedDeployment({ namespace: d.ns, name: vmcp });
            const want = dep.spec?.replicas ?? 1;
            return dep.status?.readyReplicas === want && dep.status?.updatedReplicas === want ? s : undefined;
          },
          300_000,
          1_000,
        );
        const cm = await d.k.core().readNamespacedConfigMap({ namespace: d.ns, name: configMapName(vmcp) });
        const config = parse(cm.data?.["config.yaml"] ?? "") as {
          aggregation?: AggregationLike;
          compositeTools?: { name: string }[];
          backends?: { name: string }[];
        };
        const inConfig = new Set((config.backends ?? []).map((b) => b.name));
        const predicted = aggregateCapabilities(
          [...d.toolsOf]
            .filter(([name]) => inConfig.has(name))
            .map(([name, toolNames]) => ({ name, toolNames, resources: 0, prompts: 0 })),
          config.aggregation,
          (config.compositeTools ?? []).map((t) => t.name),
        );
        const expected = predicted.tools.map((t) => t.name).sort();
        assert.equal(status.capabilities?.tools, expected.length, `${vmcp}: status count vs prediction`);

        const proxy = await serviceProxy(adminKubeConfig(), d.ns, serviceName(vmcp), VMCP_PORT);
        proxies.push(proxy);
        const connect = async (token: string | undefined) => {
          const c = new Client({ name: "examples-on-pods", version: "1.0.0" });
          await c.connect(
            new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
              ...(token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : {}),
            }),
          );
          return c;
        };
        if (d.authorized(vmcp)) {
          // the pod enforces the policy: someone in none of its groups sees at most that
          const outsider = await connect(d.tokenFor(vmcp, "outsider"));
          const seen = (await outsider.listTools()).tools.map((t) => t.name);
          await outsider.close().catch(() => undefined);
          assert.ok(
            seen.every((t) => expected.includes(t)),
            `${vmcp}: outsider saw ${seen.join()}`,
          );
          outsiderSaw.set(vmcp, seen.length);
        }
        const client = await connect(d.tokenFor(vmcp));
        try {
          const listed = (await client.listTools()).tools.map((t) => t.name).sort();
          assert.deepEqual(listed, expected, `${d.ns}/${vmcp}: tools through the pod`);
          // One backend tool called end to end: client → Service → vMCP pod → backend, with the
          // backend's credential (a sample that requires a header refuses without it).
          const first = predicted.tools.find((t) => t.backend !== "");
          if (first) {
            const before = d.samples.get(first.backend)!.stats.toolCalls;
            const res = await client.callTool({ name: first.name, arguments: {} });
            assert.notEqual(res.isError, true, `${vmcp}: ${first.name}: ${JSON.stringify(res.content)}`);
            assert.equal(
              d.samples.get(first.backend)!.stats.toolCalls - before,
              1,
              "the backend saw the call",
            );
          }
        } finally {
          await client.close().catch(() => undefined);
        }
      }
      // a policy that names groups hides every tool from someone outside them
      if (outsiderSaw.size)
        assert.ok(
          [...outsiderSaw.values()].some((n) => n === 0),
          `no policy of ${example} kept a tool from an outsider: ${JSON.stringify([...outsiderSaw])}`,
        );
    });
  }
});
