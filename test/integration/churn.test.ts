// Churn (real API server, real Pulumi engine): M VirtualMCPServers, K random changes in
// total — spec edits (serviceType, replicas, prefix format, tool filters, group), group
// membership (MCPServerEntry created, deleted, moved, re-transported), auth
// (MCPExternalAuthConfig headerInjection created, header and Secret reference edited,
// deleted; members pointed at one or none) and tool config (MCPToolConfig created, edited)
// — applied in seeded random order at random small intervals. Then, once quiet, the
// cluster must equal what the pure builder gives for the final inputs READ BACK from the
// API server: for every VirtualMCPServer the ConfigMap's config.yaml, the pod template
// checksum, status.appliedHash, the Service type and replica count; one object of each
// kind per VirtualMCPServer, none left over; and an unchanged resync starts no Pulumi.
//
// Defaults fit CI (M=5, K=30, ~2 min). The issue's full size:
//   VMCP_CHURN_VMCPS=50 VMCP_CHURN_CHANGES=200 npx mocha --timeout 0 --require \
//     dist/test/integration/fixture.js dist/test/integration/churn.test.js
// VMCP_CHURN_SEED (default 7), VMCP_CHURN_MAX_GAP_MS (default 250: pause before each change,
// uniform in [0, max]), VMCP_CHURN_WORKERS (default 2).
//
// A second describe sends 20 of the fuzz test's invalid VirtualMCPServers to the real API
// server: each is rejected at admission (CRD schema) or marked Failed by the controller with
// the field path in the Valid condition, and nothing is created and no Pulumi process runs.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { GROUP, KIND_NAMES, parseObject } from "../../api/index.js";
import { createEngine, type Engine } from "../../engine/stacks.js";
import { jsonLogger } from "../../controller/log.js";
import { startController, type Controller } from "../../controller/main.js";
import type { Status } from "../../controller/status.js";
import { build, type DesiredState } from "../../program/desired.js";
import { gatherInputs, objectSet, type AnyObject } from "../../program/inputs.js";
import * as n from "../../program/names.js";
import { invalidCases, rng, type InvalidCase, type Rng } from "../support/specgen.js";
import { adminKubeConfig, controlPlane, newNamespace } from "./fixture.js";
import { kube, VERSION, type Kube } from "../support/kube.js";
import { poll } from "../support/poll.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const env = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

const M = env("VMCP_CHURN_VMCPS", 5);
const K = env("VMCP_CHURN_CHANGES", 30);
const SEED = env("VMCP_CHURN_SEED", 7);
const MAX_GAP_MS = Number(process.env.VMCP_CHURN_MAX_GAP_MS ?? 250);
const WORKERS = env("VMCP_CHURN_WORKERS", 2);
const SETTINGS = { vmcpImage: n.DEFAULT_VMCP_IMAGE };

const TOOLS = ["get_item", "list_items", "search", "create_item", "delete_item"] as const;
const PREFIX_FORMATS = ["{workload}_", "{workload}.", "{workload}__", "x_{workload}_"] as const;

function dirStats(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files++;
    bytes += statSync(join(e.parentPath, e.name)).size;
  }
  return { files, bytes };
}

/** The namespace as the API server holds it, parsed like the controller's cache does. */
async function readBack(ns: string): Promise<{ objects: AnyObject[]; raw: Map<string, RawVmcp> }> {
  const objects: AnyObject[] = [];
  const raw = new Map<string, RawVmcp>();
  for (const kind of KIND_NAMES) {
    for (const item of await kube(adminKubeConfig(), ns).list(kind)) {
      if (kind === "VirtualMCPServer") raw.set(item.metadata.name, item as unknown as RawVmcp);
      const p = parseObject(kind, item);
      if (!p.ok) throw new Error(`${kind} ${JSON.stringify(item.metadata)} is invalid`);
      objects.push(p.value as AnyObject);
    }
  }
  return { objects, raw };
}

interface RawVmcp {
  metadata: { name: string; generation?: number };
  status?: Status;
}

/** What the builder gives for one VirtualMCPServer of `objects` (must build). */
function desiredOf(objects: readonly AnyObject[], name: string): DesiredState {
  const vmcp = objects.find((o) => o.kind === "VirtualMCPServer" && o.metadata.name === name);
  if (!vmcp || vmcp.kind !== "VirtualMCPServer") throw new Error(`no VirtualMCPServer ${name}`);
  const b = build(gatherInputs(objectSet(objects), vmcp), SETTINGS);
  if (!b.desired) throw new Error(`${name} does not build: ${b.problems.map((p) => p.message).join("; ")}`);
  return b.desired;
}

// ---- the world the churn plays with (a model, to pick sensible changes) ------------------

interface World {
  groups: string[];
  entries: Map<string, { group: string; auth?: string }>;
  auths: Set<string>;
  toolConfigs: Set<string>;
  vmcps: string[];
  next: number;
}

type Change = { what: string; run: () => Promise<unknown> };

function churnPlan(r: Rng, w: World, k: Kube): () => Change {
  const subset = <T>(items: readonly T[], min = 1): T[] =>
    r.shuffle(items).slice(0, r.range(min, items.length));

  const ops: { weight: number; make: () => Change | undefined }[] = [
    {
      weight: 3,
      make: () => {
        const v = r.pick(w.vmcps);
        const t = r.pick(["ClusterIP", "NodePort", "LoadBalancer"]);
        return {
          what: `${v}: serviceType ${t}`,
          run: () => k.patchSpec("VirtualMCPServer", v, { serviceType: t }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        const v = r.pick(w.vmcps);
        const replicas = r.bool(0.2) ? null : r.range(0, 3);
        return {
          what: `${v}: replicas ${replicas}`,
          run: () => k.patchSpec("VirtualMCPServer", v, { replicas }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        const v = r.pick(w.vmcps);
        const f = r.pick(PREFIX_FORMATS);
        return {
          what: `${v}: prefixFormat ${f}`,
          run: () =>
            k.patchSpec("VirtualMCPServer", v, {
              config: {
                aggregation: { conflictResolution: "prefix", conflictResolutionConfig: { prefixFormat: f } },
              },
            }),
        };
      },
    },
    {
      weight: 4,
      make: () => {
        const v = r.pick(w.vmcps);
        const names = [...w.entries.keys()];
        const tools = subset(names, 0).map((workload) => {
          const e: Record<string, unknown> = { workload };
          if (r.bool(0.7)) e.filter = subset(TOOLS);
          if (w.toolConfigs.size && r.bool(0.4)) e.toolConfigRef = { name: r.pick([...w.toolConfigs]) };
          return e;
        });
        return {
          what: `${v}: tool filters ${JSON.stringify(tools)}`,
          run: () => k.patchSpec("VirtualMCPServer", v, { config: { aggregation: { tools } } }),
        };
      },
    },
    {
      weight: 2,
      make: () => {
        const v = r.pick(w.vmcps);
        const g = r.pick(w.groups);
        return {
          what: `${v}: groupRef ${g}`,
          run: () => k.patchSpec("VirtualMCPServer", v, { groupRef: { name: g } }),
        };
      },
    },
    {
      weight: 4,
      make: () => {
        const name = `e${w.next++}`;
        const group = r.pick(w.groups);
        const auth = w.auths.size && r.bool(0.4) ? r.pick([...w.auths]) : undefined;
        w.entries.set(name, { group, ...(auth ? { auth } : {}) });
        return {
          what: `entry ${name} created in ${group}${auth ? ` with auth ${auth}` : ""}`,
          run: () =>
            k.create("MCPServerEntry", name, {
              remoteUrl: `http://${name}.example.test/mcp`,
              transport: r.pick(["streamable-http", "sse"]),
              groupRef: { name: group },
              ...(auth ? { externalAuthConfigRef: { name: auth } } : {}),
            }),
        };
      },
    },
    {
      weight: 2,
      make: () => {
        if (w.entries.size < 2) return undefined;
        const name = r.pick([...w.entries.keys()]);
        w.entries.delete(name);
        return { what: `entry ${name} deleted`, run: () => k.remove("MCPServerEntry", name) };
      },
    },
    {
      weight: 3,
      make: () => {
        if (!w.entries.size) return undefined;
        const name = r.pick([...w.entries.keys()]);
        const group = r.pick(w.groups);
        (w.entries.get(name) as { group: string }).group = group;
        return {
          what: `entry ${name} moved to ${group}`,
          run: () => k.patchSpec("MCPServerEntry", name, { groupRef: { name: group } }),
        };
      },
    },
    {
      weight: 1,
      make: () => {
        if (!w.entries.size) return undefined;
        const name = r.pick([...w.entries.keys()]);
        const t = r.pick(["streamable-http", "sse"]);
        return {
          what: `entry ${name} transport ${t}`,
          run: () => k.patchSpec("MCPServerEntry", name, { transport: t }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        if (!w.entries.size) return undefined;
        const name = r.pick([...w.entries.keys()]);
        const auth = w.auths.size && r.bool(0.7) ? r.pick([...w.auths]) : undefined;
        return {
          what: `entry ${name} auth ${auth ?? "none"}`,
          run: () =>
            k.patchSpec("MCPServerEntry", name, { externalAuthConfigRef: auth ? { name: auth } : null }),
        };
      },
    },
    {
      weight: 2,
      make: () => {
        const name = `auth${w.next++}`;
        w.auths.add(name);
        return {
          what: `auth ${name} created`,
          run: () =>
            k.create("MCPExternalAuthConfig", name, {
              type: "headerInjection",
              headerInjection: {
                headerName: "X-Api-Key",
                valueSecretRef: { name: `${name}-secret`, key: "value" },
              },
            }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        if (!w.auths.size) return undefined;
        const name = r.pick([...w.auths]);
        const header = r.pick(["X-Api-Key", "X-Token", "Authorization", "X-Tenant-Key"]);
        return {
          what: `auth ${name} header ${header}`,
          run: () => k.patchSpec("MCPExternalAuthConfig", name, { headerInjection: { headerName: header } }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        if (!w.auths.size) return undefined;
        const name = r.pick([...w.auths]);
        const ref = {
          name: r.pick([`${name}-secret`, "shared-secret", "rotated-secret"]),
          key: r.pick(["value", "token"]),
        };
        return {
          what: `auth ${name} secret ref ${ref.name}/${ref.key}`,
          run: () => k.patchSpec("MCPExternalAuthConfig", name, { headerInjection: { valueSecretRef: ref } }),
        };
      },
    },
    {
      weight: 1,
      make: () => {
        if (w.auths.size < 2) return undefined;
        const name = r.pick([...w.auths]);
        w.auths.delete(name);
        return { what: `auth ${name} deleted`, run: () => k.remove("MCPExternalAuthConfig", name) };
      },
    },
    {
      weight: 1,
      make: () => {
        const name = `tc${w.next++}`;
        w.toolConfigs.add(name);
        return {
          what: `tool config ${name} created`,
          run: () => k.create("MCPToolConfig", name, { toolsFilter: subset(TOOLS) }),
        };
      },
    },
    {
      weight: 3,
      make: () => {
        const name = r.pick([...w.toolConfigs]);
        const spec: Record<string, unknown> = { toolsFilter: subset(TOOLS) };
        if (r.bool(0.5))
          spec.toolsOverride = { [r.pick(TOOLS)]: { name: `renamed_${w.next++}`, description: "churned" } };
        return {
          what: `tool config ${name} edited ${JSON.stringify(spec)}`,
          run: () => k.patchSpec("MCPToolConfig", name, spec),
        };
      },
    },
  ];
  const total = ops.reduce((s, o) => s + o.weight, 0);
  return () => {
    for (;;) {
      let x = r.int(total);
      const op = ops.find((o) => (x -= o.weight) < 0) as (typeof ops)[number];
      const c = op.make();
      if (c) return c;
    }
  };
}

describe(`churn: ${M} VirtualMCPServers × ${K} random changes (seed ${SEED}), then the builder's state`, function () {
  this.timeout(0); // every wait below has its own deadline
  let ns: string;
  let stateDir: string;
  let engine: Engine;
  let controller: Controller;
  const journal: string[] = [];
  const k = kube(adminKubeConfig, () => ns);
  const r = rng(SEED);
  const world: World = {
    groups: Array.from({ length: Math.max(2, Math.ceil(M / 3)) }, (_, i) => `g${i}`),
    entries: new Map(),
    auths: new Set(["auth-a", "auth-b"]),
    toolConfigs: new Set(["tc-a", "tc-b"]),
    vmcps: Array.from({ length: M }, (_, i) => `vmcp-${i}`),
    next: 0,
  };
  const applies = async () =>
    (await controller.metrics.pulumiDuration.count({ op: "up" })) +
    (await controller.metrics.pulumiDuration.count({ op: "repair" }));

  /** Waits until every VirtualMCPServer shows the builder's state for what the API server holds now. */
  async function converged(
    timeoutMs: number,
  ): Promise<{ objects: AnyObject[]; desired: Map<string, DesiredState> }> {
    const core = k.core();
    const apps = k.apps();
    let lag: string[] = [];
    try {
      return await poll(
        "every VirtualMCPServer at the builder's state",
        async () => {
          const { objects, raw } = await readBack(ns);
          const desired = new Map<string, DesiredState>();
          lag = [];
          for (const name of world.vmcps) {
            const d = desiredOf(objects, name);
            desired.set(name, d);
            const v = raw.get(name);
            const st = v?.status;
            const cm = await core
              .readNamespacedConfigMap({ name: n.configMapName(name), namespace: ns })
              .catch(() => undefined);
            const dep = await apps.readNamespacedDeployment({ name, namespace: ns }).catch(() => undefined);
            const checksum = dep?.spec?.template.metadata?.annotations?.[n.ANNOTATION_RUNCONFIG_CHECKSUM];
            const why = [
              st?.observedGeneration !== v?.metadata.generation &&
                `observedGeneration ${st?.observedGeneration} ≠ ${v?.metadata.generation}`,
              st?.appliedHash !== d.hash &&
                `appliedHash ${st?.appliedHash?.slice(0, 12)} ≠ ${d.hash.slice(0, 12)}`,
              cm?.data?.[n.CONFIG_FILE] !== d.configYaml && "config.yaml differs",
              checksum !== d.configChecksum && "pod template checksum differs",
            ].filter(Boolean);
            if (why.length) lag.push(`${name}: ${why.join(", ")}`);
          }
          return lag.length ? undefined : { objects, desired };
        },
        timeoutMs,
        250,
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\nstill differing:\n  ${lag.join("\n  ")}\nlast changes:\n  ${journal.slice(-15).join("\n  ")}`,
      );
    }
  }

  before(async () => {
    ns = await newNamespace("churn");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-churn-state-"));
    engine = await createEngine({ stateDir, passphrase: "test", kubeconfig: controlPlane().kubeconfigPath });
    controller = await startController({
      kubeconfig: adminKubeConfig(),
      namespace: ns,
      engine,
      workers: WORKERS,
      resyncMs: 3_600_000,
      applyGraceMs: 5_000,
      healthChecks: false, // backends are placeholders (example.test); the health tests probe real ones
      log: jsonLogger({ level: process.env.VMCP_TEST_LOG === "debug" ? "debug" : "error" }),
    });
    for (const g of world.groups) await k.readyGroup(g);
    for (const a of world.auths)
      await k.create("MCPExternalAuthConfig", a, {
        type: "headerInjection",
        headerInjection: { headerName: "X-Api-Key", valueSecretRef: { name: `${a}-secret`, key: "value" } },
      });
    for (const t of world.toolConfigs) await k.create("MCPToolConfig", t, { toolsFilter: ["search"] });
    for (const [i, g] of world.groups.entries())
      for (const j of [0, 1]) {
        const name = `e${world.next++}`;
        const auth = j === 1 ? [...world.auths][i % world.auths.size] : undefined;
        world.entries.set(name, { group: g, ...(auth ? { auth } : {}) });
        await k.create("MCPServerEntry", name, {
          remoteUrl: `http://${name}.example.test/mcp`,
          transport: "streamable-http",
          groupRef: { name: g },
          ...(auth ? { externalAuthConfigRef: { name: auth } } : {}),
        });
      }
    for (const [i, v] of world.vmcps.entries())
      await k.create("VirtualMCPServer", v, {
        groupRef: { name: world.groups[i % world.groups.length] },
        incomingAuth: { type: "anonymous" },
        config: {
          aggregation: {
            conflictResolution: "prefix",
            conflictResolutionConfig: { prefixFormat: "{workload}_" },
          },
        },
      });
    const t0 = Date.now();
    await converged(120_000 + 10_000 * M);
    console.log(
      `      initial: ${M} VirtualMCPServers applied in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  after(async () => {
    await controller?.stop(30_000);
    await engine?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it(`${K} random changes, then ConfigMap, checksum, appliedHash, Service and replicas equal the builder's, no duplicates, no Pulumi on resync`, async () => {
    const next = churnPlan(r, world, k);
    const appliesBefore = await applies();
    const t0 = Date.now();
    for (let i = 0; i < K; i++) {
      await sleep(r.int(MAX_GAP_MS + 1));
      const c = next();
      journal.push(`${i}: ${c.what}`);
      await c.run();
    }
    const churnMs = Date.now() - t0;
    const { objects, desired } = await converged(120_000 + 10_000 * M);
    const settleMs = Date.now() - t0 - churnMs;
    await controller.queue.idle();

    // Objects: exactly one of each per VirtualMCPServer, matching the builder's, and nothing else.
    const core = k.core();
    const apps = k.apps();
    const rbac = adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const cms = (
      await core.listNamespacedConfigMap({
        namespace: ns,
        labelSelector: "toolhive.stacklok.io/component=vmcp-config",
      })
    ).items;
    const deps = (
      await apps.listNamespacedDeployment({ namespace: ns, labelSelector: "app=virtualmcpserver" })
    ).items;
    const svcs = (await core.listNamespacedService({ namespace: ns, labelSelector: "app=virtualmcpserver" }))
      .items;
    const sas = (await core.listNamespacedServiceAccount({ namespace: ns })).items.filter(
      (s) => s.metadata?.name !== "default",
    );
    const roles = (await rbac.listNamespacedRole({ namespace: ns })).items;
    const names = (items: { metadata?: { name?: string } }[]) =>
      items.map((o) => o.metadata?.name ?? "").sort();
    assert.deepEqual(
      names(cms),
      world.vmcps.map(n.configMapName).sort(),
      "one ConfigMap per VirtualMCPServer",
    );
    assert.deepEqual(
      names(deps),
      world.vmcps.map(n.deploymentName).sort(),
      "one Deployment per VirtualMCPServer",
    );
    assert.deepEqual(names(svcs), world.vmcps.map(n.serviceName).sort(), "one Service per VirtualMCPServer");
    assert.deepEqual(
      names(sas),
      world.vmcps.map(n.rbacName).sort(),
      "one ServiceAccount per VirtualMCPServer",
    );
    assert.deepEqual(names(roles), world.vmcps.map(n.rbacName).sort(), "one Role per VirtualMCPServer");
    for (const name of world.vmcps) {
      const d = desired.get(name) as DesiredState;
      const want = (kind: string) =>
        d.objects.find((o) => o.kind === kind) as unknown as { spec: Record<string, unknown> };
      const svc = svcs.find((s) => s.metadata?.name === n.serviceName(name));
      assert.equal(svc?.spec?.type, want("Service").spec.type, `${name}: Service type`);
      const dep = deps.find((x) => x.metadata?.name === name);
      const replicas = want("Deployment").spec.replicas;
      if (replicas !== undefined) assert.equal(dep?.spec?.replicas, replicas, `${name}: replicas`);
      const st = (await readBack(ns)).raw.get(name)?.status;
      assert.equal(
        st?.stackOutputs?.desiredHash,
        d.hash,
        `${name}: the stack's output is the builder's hash`,
      );
    }

    // Quiet means quiet: a full resync of unchanged VirtualMCPServers starts no Pulumi process.
    const processes = engine.processesStarted;
    controller.queue.resync();
    await sleep(500);
    await controller.queue.idle();
    assert.equal(engine.processesStarted, processes, "an unchanged resync started Pulumi");
    const usedObjects = objects.length;
    const state = dirStats(stateDir);
    const history = dirStats(join(stateDir, ".pulumi", "history"));
    console.log(
      `      churn: ${K} changes in ${(churnMs / 1000).toFixed(1)} s, settled ${(settleMs / 1000).toFixed(1)} s later; ` +
        `${(await applies()) - appliesBefore} Pulumi up/repair, ${engine.processesStarted} CLI processes in all; ` +
        `${usedObjects} ToolHive objects; state dir ${state.files} files ${(state.bytes / 1024).toFixed(0)} KiB ` +
        `(history ${history.files} files ${(history.bytes / 1024).toFixed(0)} KiB)`,
    );
  });
});

describe("invalid VirtualMCPServers on a real API server: rejected at admission or Failed, nothing created", function () {
  this.timeout(300_000);
  let ns: string;
  let stateDir: string;
  let engine: Engine;
  let controller: Controller;
  const k = kube(adminKubeConfig, () => ns);

  before(async () => {
    ns = await newNamespace("invalid");
    stateDir = mkdtempSync(join(tmpdir(), "vmcp-invalid-state-"));
    engine = await createEngine({ stateDir, passphrase: "test", kubeconfig: controlPlane().kubeconfigPath });
    controller = await startController({
      kubeconfig: adminKubeConfig(),
      namespace: ns,
      engine,
      resyncMs: 3_600_000,
      healthChecks: false,
      log: jsonLogger({ level: "error" }),
    });
    // A group and a member, so nothing but the spec itself stands in the way.
    for (const g of ["tools", "team-a", "g1"]) await k.create("MCPGroup", g, {});
  });

  after(async () => {
    await controller?.stop(30_000);
    await engine?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("20 generated invalid specs (10 cross-field, 10 schema): each rejected with its field path, 0 objects, 0 Pulumi processes", async () => {
    const all = invalidCases(20261128, 1000, ns).filter((c) => c.cluster);
    const pick = (level: InvalidCase["level"]) => {
      const of = all.filter((c) => c.level === level);
      const step = Math.floor(of.length / 10);
      return of.filter((_, i) => i % step === 0).slice(0, 10);
    };
    const sample = [...pick("rule"), ...pick("schema")];
    const admission: string[] = [];
    const accepted: InvalidCase[] = [];
    for (const c of sample) {
      const [, version = VERSION] = String(c.object.apiVersion).split("/");
      try {
        await k.custom().createNamespacedCustomObject({
          group: GROUP,
          version,
          namespace: ns,
          plural: "virtualmcpservers",
          body: c.object,
        });
        accepted.push(c);
      } catch (err) {
        const code = (err as { code?: number }).code;
        assert.ok(
          code === 422 || code === 400,
          `case ${c.index} (${c.mutations.join(" + ")}): unexpected ${String(err)}`,
        );
        admission.push(`${c.index} ${c.mutations.join("+")}`);
      }
    }
    const name = (c: InvalidCase) => (c.object.metadata as { name: string }).name;
    const problems: string[] = [];
    for (const c of accepted) {
      const st = await poll(
        `${name(c)} Failed`,
        async () => {
          const st = await k.statusOf(name(c));
          return st.phase === "Failed" ? st : undefined;
        },
        60_000,
        250,
      );
      const valid = st.conditions?.find((x) => x.type === "Valid");
      const missing = c.expects.filter((e) => !valid?.message.includes(e.prefix));
      if (valid?.status !== "False" || missing.length)
        problems.push(
          `case ${c.index} (${c.mutations.join(" + ")}): Valid=${valid?.status} "${valid?.message}", want ${c.expects.map((e) => e.prefix).join(", ")}`,
        );
    }
    assert.deepEqual(problems, []);
    await controller.queue.idle();
    const core = k.core();
    const apps = k.apps();
    const created = [
      ...(await core.listNamespacedConfigMap({ namespace: ns })).items.filter(
        (o) => o.metadata?.name !== "kube-root-ca.crt",
      ),
      ...(await apps.listNamespacedDeployment({ namespace: ns })).items,
      ...(await core.listNamespacedService({ namespace: ns })).items,
      ...(await core.listNamespacedSecret({ namespace: ns })).items.filter(
        (o) => o.type !== "kubernetes.io/service-account-token",
      ),
      ...(await core.listNamespacedServiceAccount({ namespace: ns })).items.filter(
        (o) => o.metadata?.name !== "default",
      ),
    ].map((o) => `${o.kind ?? ""} ${o.metadata?.name}`);
    assert.deepEqual(created, [], "no object created for an invalid VirtualMCPServer");
    assert.equal(engine.processesStarted, 0, "no Pulumi process");
    console.log(
      `      ${sample.length} invalid specs: ${admission.length} rejected at admission by the CRD schema, ` +
        `${accepted.length} accepted and marked Failed by the controller (cross-field rules and what the CRD cannot express)`,
    );
    assert.ok(accepted.length >= 10, "the cross-field cases reach the controller");
  });
});
