// Differential test against the reference implementation: ToolHive's own operator
// (thv-operator 0.44.0, the module version of the vmcp we build) reconciles each of our
// examples on a control plane of its own, with ToolHive's CRDs, and the config.yaml it
// writes is compared field by field with the one we render from the same manifests.
// Every difference must be one of DIFFERENCES below, each of which the README's "Where
// vmcp-operator differs" section explains; a listed difference that no example shows any
// more fails too, so the list cannot go stale.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments, parse } from "yaml";
import {
  consoleLogger,
  installCrdsFromDir,
  startControlPlane,
  type ControlPlane,
} from "../../localcluster/index.js";
import { renderAll } from "../../program/render.js";
import { compareConfigs, type Difference } from "../support/configdiff.js";
import { poll } from "../support/poll.js";
import { startThvOperator, THV_CRDS, thvOperatorVersion, type ThvOperator } from "../support/thvoperator.js";
import { EXAMPLES, exampleLoaded, ROOT, SETTINGS } from "../unit/helpers.js";

interface Listed {
  path: RegExp;
  /** When set, the difference is listed only if this holds. */
  when?: (d: Difference) => boolean;
  why: string;
}

/** The reviewed differences (README, "Where vmcp-operator differs"). */
const DIFFERENCES: Listed[] = [
  {
    path: /^backends\[/,
    why: "backends are embedded: we discover the group's members and write them into config.yaml (the vMCP pod needs no Kubernetes API access; previews and status show them); ToolHive's vmcp discovers them at run time",
  },
  {
    path: /^outgoingAuth\.(source|backends(\.|$))/,
    why: "with embedded backends each backend's auth is resolved by us too (source inline); ToolHive's vmcp reads it at run time (source discovered)",
  },
  {
    path: /^incomingAuth\.oidc\.resource$/,
    when: (d) =>
      typeof d.ours === "string" && typeof d.theirs === "string" && d.ours.startsWith("http://vmcp-"),
    why: "the default OIDC resource is the URL of the Service clients reach (vmcp-<name>); ToolHive's default names a Service that does not exist (<name>)",
  },
  {
    path: /^telemetry\.caCertPath$/,
    when: (d) => d.theirs === undefined,
    why: "an MCPTelemetryConfig's caBundleRef is mounted and vmcp is told to trust it; ToolHive 0.44.0 mounts it for a VirtualMCPServer but never sets caCertPath",
  },
];

const listed = (d: Difference): Listed | undefined =>
  DIFFERENCES.find((l) => l.path.test(d.path) && (l.when?.(d) ?? true));

/** Every object of an example as written (Secrets and ConfigMaps included). */
function exampleObjects(name: string): KubernetesObject[] {
  const dir = join(ROOT, "examples", name);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS()))
    .filter((o): o is KubernetesObject => Boolean(o?.kind));
}

describe("differential: ToolHive's thv-operator writes the config.yaml we render", function () {
  this.timeout(300_000);
  let plane: ControlPlane;
  let operator: ThvOperator;
  let kc: KubeConfig;
  const seen = new Set<Listed>();

  before(async function () {
    this.timeout(180_000);
    assert.ok(THV_CRDS, 'THV_OPERATOR_CRDS is set (eval "$(bash scripts/toolchain.sh env)")');
    plane = await startControlPlane({
      // kwok and the controller-manager make Deployments Available: ToolHive's operator waits
      // for the EmbeddingServer's workload before it writes the config that points at it.
      full: true,
      keep: process.env.VMCP_TEST_KEEP === "1",
      log: consoleLogger("thv-plane"),
    });
    kc = new KubeConfig();
    kc.loadFromString(plane.kubeconfig);
    await installCrdsFromDir(kc, THV_CRDS);
    operator = startThvOperator(plane.kubeconfigPath, join(plane.dir, "thv-operator.log"));
  });

  after(async function () {
    this.timeout(60_000);
    await operator?.stop();
    await plane?.stop();
  });

  it("runs ToolHive's operator built from the 0.44.0 module", () => {
    assert.equal(thvOperatorVersion(), "v0.44.0");
  });

  for (const name of EXAMPLES) {
    it(`examples/${name}: every difference from ToolHive's config.yaml is a listed one`, async () => {
      const objects = exampleObjects(name);
      const core = kc.makeApiClient(CoreV1Api);
      const api = KubernetesObjectApi.makeApiClient(kc);
      for (const ns of new Set(objects.map((o) => o.metadata?.namespace ?? "default")))
        await core.createNamespace({ body: { metadata: { name: ns } } }).catch(() => undefined);
      for (const o of objects) await api.create(o);

      const loaded = exampleLoaded(name);
      const ours = renderAll(loaded.objects, SETTINGS, loaded.configMaps);
      assert.deepEqual(ours.errors, []);
      assert.ok(ours.rendered.length > 0);
      const unexplained: string[] = [];
      for (const r of ours.rendered) {
        const [ns, vmcp] = r.vmcp.split("/") as [string, string];
        const theirs = await poll(
          `thv-operator's ConfigMap ${ns}/${vmcp}-vmcp-config`,
          async () =>
            (
              await core
                .readNamespacedConfigMap({ name: `${vmcp}-vmcp-config`, namespace: ns })
                .catch(() => undefined)
            )?.data?.["config.yaml"],
          120_000,
        );
        for (const d of compareConfigs(parse(r.configYaml), parse(theirs))) {
          const l = listed(d);
          if (l) seen.add(l);
          else
            unexplained.push(
              `${r.vmcp} ${d.path}: ours ${JSON.stringify(d.ours)}, ToolHive's ${JSON.stringify(d.theirs)}`,
            );
        }
      }
      assert.deepEqual(unexplained, [], "differences nobody has reviewed");
    });
  }

  it("every listed difference is still shown by some example (the list cannot go stale)", () => {
    assert.deepEqual(
      DIFFERENCES.filter((l) => !seen.has(l)).map((l) => l.why),
      [],
    );
  });
});
