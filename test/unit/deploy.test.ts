// The shipping artefacts: the Dockerfile, the Helm chart and the plain manifests rendered
// from it. Pins are read from scripts/toolchain.sh and package.json, never repeated here.
// Tests that render the chart need helm at the version toolchain.sh pins (`scripts/toolchain.sh
// helm`); without it they are skipped, and say so.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ROOT } from "./helpers.js";
import { pinnedHelm } from "../support/helm.js";

const read = (...p: string[]): string => readFileSync(join(ROOT, ...p), "utf8");
const CHART = join(ROOT, "deploy", "helm", "vmcp-operator");
const MANIFESTS = join(ROOT, "deploy", "manifests", "vmcp-operator.yaml");

/** `NAME=value` of scripts/toolchain.sh. */
function toolchainPin(name: string): string {
  const m = new RegExp(`^${name}=(\\S+)$`, "m").exec(read("scripts", "toolchain.sh"));
  assert.ok(m?.[1], `scripts/toolchain.sh has no ${name}=`);
  return m[1];
}

/** The NODE_OPTIONS the image's ENV sets (a quoted value). */
const imageNodeOptions = (dockerfile: string): string | undefined =>
  /^\s+NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1];

/**
 * Whether this Node (the image's version: see "uses the Go and Node versions of the
 * toolchain") starts with these NODE_OPTIONS (it refuses to start on a flag it rejects).
 */
function nodeWith(options: string): { ok: boolean; err: string } {
  const r = spawnSync(process.execPath, ["-e", "0"], {
    env: { ...process.env, NODE_OPTIONS: options },
    encoding: "utf8",
  });
  return { ok: r.status === 0, err: r.stderr };
}

/** `ARG NAME=value` of the Dockerfile. */
function dockerArg(dockerfile: string, name: string): string | undefined {
  return new RegExp(`^ARG ${name}=(\\S+)$`, "m").exec(dockerfile)?.[1];
}

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
};

function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(d.errors[0]?.message);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

function find(objs: Obj[], kind: string, name?: string): Obj {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  assert.ok(o, `no ${kind} ${name ?? ""}`);
  return o;
}

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: { name: string; emptyDir?: unknown; persistentVolumeClaim?: { claimName: string } }[];
  affinity?: Record<string, unknown>;
  serviceAccountName?: string;
}
const podSpec = (d: Obj): PodSpec =>
  (d as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const controllerOf = (d: Obj): Container => {
  const c = podSpec(d).containers.find((x) => x.name === "controller");
  assert.ok(c, "no controller container");
  return c;
};

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
const rulesOf = (o: Obj): Rule[] => (o as unknown as { rules: Rule[] }).rules;

function helmTemplate(helm: string, sets: string[]): { ok: boolean; out: string; err: string } {
  const args = ["template", "vmcp-operator", CHART, "--namespace", "vmcp-system"];
  for (const s of sets) args.push("--set", s);
  const r = spawnSync(helm, args, { encoding: "utf8" });
  return { ok: r.status === 0, out: r.stdout, err: r.stderr };
}

describe("deploy: Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  const rootfs = read("deploy", "image", "rootfs.sh");
  const pkg = JSON.parse(read("package.json")) as { version: string; dependencies: Record<string, string> };

  it("builds the Pulumi CLI and the Kubernetes provider at the pins of scripts/toolchain.sh, with that script", () => {
    const pulumi = toolchainPin("PULUMI_VERSION");
    const provider = toolchainPin("K8S_PROVIDER_VERSION");
    assert.equal(dockerArg(dockerfile, "PULUMI_VERSION"), pulumi);
    assert.equal(dockerArg(dockerfile, "K8S_PROVIDER_VERSION"), provider);
    // The engine asks for exactly the plugin of the npm SDKs' versions.
    assert.equal(
      pkg.dependencies["@pulumi/pulumi"],
      pulumi,
      "package.json @pulumi/pulumi = toolchain PULUMI_VERSION",
    );
    assert.equal(
      pkg.dependencies["@pulumi/kubernetes"],
      provider,
      "package.json @pulumi/kubernetes = provider",
    );
    assert.match(dockerfile, /^COPY scripts\/toolchain\.sh /m);
    assert.match(dockerfile, /toolchain\.sh pulumi\b/);
    assert.match(dockerfile, /toolchain\.sh provider\b/);
    // the version stamp is verified inside the build
    assert.match(dockerfile, /pulumi version\)" = "v\$\{PULUMI_VERSION\}"/);
    assert.match(dockerfile, /resource-kubernetes-v\$\{K8S_PROVIDER_VERSION\}\/pulumi-resource-kubernetes/);
  });

  it("uses the Go and Node versions of the toolchain", () => {
    assert.equal(dockerArg(dockerfile, "NODE_VERSION"), toolchainPin("NODE_VERSION"));
    assert.match(dockerfile, /^FROM node:\$\{NODE_VERSION\}-slim\b/m);
    const goDirective = /module local\/pulumicli\\n\\ngo (\d+\.\d+)/.exec(
      read("scripts", "toolchain.sh"),
    )?.[1];
    assert.ok(goDirective, "toolchain.sh's go directive");
    assert.equal(dockerArg(dockerfile, "GO_VERSION"), goDirective);
    assert.match(dockerfile, /^FROM golang:\$\{GO_VERSION\}/m);
  });

  it("installs production dependencies only, without scripts, and starts the controller as a non-root user", () => {
    assert.match(dockerfile, /npm ci --omit=dev --ignore-scripts/);
    const users = [...dockerfile.matchAll(/^USER (\S+)$/gm)].map((m) => m[1] as string);
    const last = users.at(-1);
    assert.ok(last, "a USER directive");
    const [uid, gid] = last.split(":").map(Number);
    assert.ok(uid === 65532 || uid === 1000, `numeric non-root uid, found ${last}`);
    assert.ok(gid === undefined || gid > 0);
    assert.match(
      dockerfile,
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "dist\/cli\/main\.js", "controller"\]$/m,
    );
  });

  it("runs the controller under an init that reaps orphans (tini from Debian), signalling Node only", () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    assert.match(rootfs, /^DEBIAN_PACKAGES="[^"]*\btini\b[^"]*"$/m, "rootfs.sh unpacks Debian's tini");
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(runtime)?.[1];
    assert.ok(entry, "an ENTRYPOINT in exec form");
    const argv = JSON.parse(entry) as string[];
    assert.equal(argv[0], "/usr/bin/tini", "PID 1 is tini");
    // -g would forward SIGTERM to the whole group, the running Pulumi CLI included.
    assert.deepEqual(argv.slice(1, argv.indexOf("node")), ["--"], "no tini flags before the command");
  });

  it("has one list of what goes in: deploy/image/rootfs.sh for docker build and scripts/image.sh alike", () => {
    // docker: a rootfs stage runs the script, the last stage is that directory in an empty image
    assert.match(dockerfile, /^RUN .*bash \/src\/rootfs\.sh \/in \/rootfs\b/m);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM ") + 1);
    assert.match(runtime, /^FROM scratch\n/);
    assert.deepEqual(
      [...runtime.matchAll(/^(COPY|ADD|RUN) .*$/gm)].map((m) => m[0]),
      ["COPY --from=rootfs /rootfs /"],
      "the runtime stage adds nothing but the rootfs",
    );
    // buildah: the same script on the host, then the Dockerfile's own last stage
    const imageSh = read("scripts", "image.sh");
    assert.match(imageSh, /bash deploy\/image\/rootfs\.sh "\$stage\/in" "\$stage\/rootfs"/);
    assert.match(imageSh, /s#\^COPY --from=rootfs \/rootfs \/\$#COPY rootfs \/#/);
    // the inputs both builds hand to the script: IN/node, IN/app/{package.json,dist,node_modules}, IN/pulumi
    for (const dest of [
      "/in/node",
      "/in/app/package.json",
      "/in/app/dist",
      "/in/app/node_modules",
      "/in/pulumi",
    ])
      assert.ok(
        new RegExp(`^COPY --from=\\S+ \\S+ ${dest}$`, "m").test(dockerfile),
        `Dockerfile copies ${dest}`,
      );
    for (const dest of [
      '"$in/node"',
      '"$in/app/dist"',
      '"$in/app/"',
      '"$in/pulumi/bin/"',
      '"$in/pulumi/plugins/"',
    ])
      assert.ok(imageSh.includes(dest), `scripts/image.sh fills ${dest}`);
  });

  it("puts every writable path where the chart mounts one (read-only root filesystem)", () => {
    const env = (name: string) => new RegExp(`\\b${name}=(\\S+)`).exec(dockerfile)?.[1];
    const deployment = find(parseObjects(readFileSync(MANIFESTS, "utf8")), "Deployment");
    const c = controllerOf(deployment);
    const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m.name]));
    const chartEnv = new Map((c.env ?? []).map((e) => [e.name, e.value]));
    for (const name of ["PULUMI_HOME", "TMPDIR"]) {
      assert.equal(chartEnv.get(name), env(name), `${name}: image and chart agree`);
      assert.ok(mounts.has(env(name) as string), `${name} (${env(name)}) is a mount`);
    }
    assert.ok(mounts.has("/var/lib/vmcp-operator/state"));
    assert.ok(c.args?.includes("--state-dir=/var/lib/vmcp-operator/state"));
    assert.equal(env("VMCP_PULUMI_ROOT"), "/opt/pulumi");
    // the init container links the image's plugins into the (emptyDir) Pulumi home
    const init = podSpec(deployment).initContainers?.find((x) => x.name === "pulumi-home");
    // (by Node: the image has no shell and no coreutils)
    assert.deepEqual(init?.command?.slice(0, 2), ["node", "-e"]);
    assert.ok(init?.command?.[2]?.includes(`"${env("PULUMI_HOME")}/plugins"`), "links in PULUMI_HOME");
    assert.ok(init?.command?.[2]?.includes('symlinkSync("/opt/pulumi/plugins"'), "to the image's plugins");
    assert.match(rootfs, /^cp -a "\$IN\/pulumi\/bin" "\$IN\/pulumi\/plugins" opt\/pulumi\/$/m);
  });

  it("sizes the V8 heap from the container's memory limit (NODE_OPTIONS), with flags Node accepts", () => {
    const options = imageNodeOptions(dockerfile);
    assert.ok(options, "the image sets NODE_OPTIONS");
    const flags = options.split(/\s+/);
    // The old space a share of the limit (a fixed cap would turn a larger cluster into OOM
    // crashes), the young generation small (the start-up burst is collected, not kept).
    assert.ok(
      flags.some((f) => /^--max-old-space-size-percentage=([1-9]\d?|100)$/.test(f)),
      `an old-space share of the limit in ${options}`,
    );
    assert.ok(!flags.some((f) => f.startsWith("--max-old-space-size=")), "no fixed old-space size");
    assert.ok(
      flags.some((f) => /^--max-semi-space-size=\d+$/.test(f)),
      `a young-generation size in ${options}`,
    );
    const run = nodeWith(options);
    assert.ok(run.ok, `node rejects NODE_OPTIONS=${options}: ${run.err}`);
    // …and the check can fail: "25%" is how the flag is easily misspelt
    assert.ok(!nodeWith("--max-old-space-size-percentage=25%").ok);
  });

  it("builds from a context .dockerignore lets through", () => {
    const ignore = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    assert.equal(ignore[0], "*", ".dockerignore is an allow-list");
    const allowed = ignore.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] as string).split(" "),
    );
    assert.ok(sources.length > 5);
    for (const src of sources) {
      assert.ok(allowed.includes(src), `${src} is COPY'd but excluded by .dockerignore`);
      assert.ok(existsSync(join(ROOT, src)), `${src} exists`);
    }
    // everything the image's tsconfig compiles is copied in
    const tsconfig = JSON.parse(read("deploy", "docker", "tsconfig.build.json")) as { include: string[] };
    for (const dir of tsconfig.include.map((p) => p.replace(/^\.\.\/\.\.\//, "")))
      assert.ok(sources.includes(dir), `${dir} compiled but not COPY'd`);
    // …and it is every source dir of the repo's tsconfig but the tests and benchmarks
    const repo = JSON.parse(read("tsconfig.json")) as { include: string[] };
    assert.deepEqual(
      repo.include.filter((d) => d !== "test" && d !== "bench").sort(),
      tsconfig.include.map((p) => p.replace(/^\.\.\/\.\.\//, "")).sort(),
    );
  });
});

describe("deploy: Helm chart", () => {
  it("ships crds/ byte for byte (files/crds/, rendered by templates/crds.yaml)", () => {
    const repo = readdirSync(join(ROOT, "crds"))
      .filter((f) => f.endsWith(".yaml"))
      .sort();
    const chart = readdirSync(join(CHART, "files", "crds")).sort();
    assert.deepEqual(
      chart,
      repo,
      "deploy/helm/vmcp-operator/files/crds/ holds a different set of files than crds/",
    );
    for (const f of repo)
      assert.ok(
        read("crds", f) === readFileSync(join(CHART, "files", "crds", f), "utf8"),
        `deploy/helm/vmcp-operator/files/crds/${f} differs from crds/${f}: cp crds/*.yaml deploy/helm/vmcp-operator/files/crds/ && deploy/render.sh`,
      );
    // templates/crds.yaml splices the keep annotation in as the metadata's only annotations.
    for (const f of repo) {
      const meta = (parseObjects(read("crds", f))[0] as Obj).metadata as { annotations?: unknown };
      assert.equal(meta.annotations, undefined, `crds/${f} has metadata.annotations`);
    }
  });

  it("has no crds/ directory: Helm would install it once and never upgrade it", () => {
    assert.equal(existsSync(join(CHART, "crds")), false);
  });

  it("has the app's version", () => {
    const pkg = JSON.parse(read("package.json")) as { version: string };
    const chart = parseObjects(readFileSync(join(CHART, "Chart.yaml"), "utf8"))[0] as unknown as {
      version: string;
      appVersion: string;
    };
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(chart.version, pkg.version);
  });

  it("says why, for every RBAC rule", () => {
    for (const file of ["clusterrole.yaml", "role.yaml"]) {
      const lines = readFileSync(join(CHART, "templates", file), "utf8").split("\n");
      lines.forEach((line, i) => {
        if (/^\s*- apiGroups:/.test(line))
          assert.match(lines[i - 1] ?? "", /^\s*#/, `${file}:${i + 1}: a rule without a comment above it`);
      });
    }
  });

  describe("with helm", function () {
    // Each case runs `helm template`, which renders the twelve CRDs too (≈ 1 MB): about a
    // second on a busy machine, more than mocha's default of two for the cases that run it twice.
    this.timeout(30_000);
    const helm = pinnedHelm();
    before(function () {
      if (!helm) {
        console.log(
          `      (skipped: no helm v${toolchainPin("HELM_VERSION")}; run scripts/toolchain.sh helm)`,
        );
        this.skip();
      }
    });

    it("deploy/manifests/vmcp-operator.yaml is exactly what deploy/render.sh renders now", () => {
      const fresh = execFileSync("bash", [join(ROOT, "deploy", "render.sh"), "--stdout"], {
        encoding: "utf8",
      });
      assert.ok(
        fresh === readFileSync(MANIFESTS, "utf8"),
        "deploy/manifests/vmcp-operator.yaml is stale: run deploy/render.sh",
      );
    });

    it("renders byte-identically twice (deterministic templates)", () => {
      const sets = ["state.passphrase=p", "rbac.vmcpNamespaces={b,a,c}", "controller.extraEnv[0].name=X"];
      const a = helmTemplate(helm!, sets);
      assert.ok(a.ok, a.err);
      assert.equal(helmTemplate(helm!, sets).out, a.out);
    });

    it("refuses to render without a passphrase, or with 2 replicas and no leader election", () => {
      const none = helmTemplate(helm!, []);
      assert.ok(!none.ok);
      assert.match(none.err, /set state\.passphrase .* or state\.existingSecret/);
      const racing = helmTemplate(helm!, ["state.passphrase=p", "controller.leaderElect=false"]);
      assert.ok(!racing.ok);
      assert.match(racing.err, /replicas > 1 needs controller\.leaderElect=true or controller\.shards > 1/);
    });

    it("makes the passphrase Secret from a value, and keeps it (and the state PVC) on uninstall", () => {
      const r = helmTemplate(helm!, ["state.passphrase=s3cret"]);
      assert.ok(r.ok, r.err);
      const objs = parseObjects(r.out);
      const secret = find(objs, "Secret", "vmcp-operator-passphrase") as Obj & {
        data: Record<string, string>;
      };
      assert.equal(Buffer.from(secret.data["passphrase"] ?? "", "base64").toString(), "s3cret");
      assert.equal(secret.metadata.annotations?.["helm.sh/resource-policy"], "keep");
      assert.equal(
        find(objs, "PersistentVolumeClaim").metadata.annotations?.["helm.sh/resource-policy"],
        "keep",
      );
      const env = controllerOf(find(objs, "Deployment")).env ?? [];
      assert.deepEqual(env.find((e) => e.name === "PULUMI_CONFIG_PASSPHRASE")?.valueFrom, {
        secretKeyRef: { name: "vmcp-operator-passphrase", key: "passphrase" },
      });
    });

    it("with a backend URL: no PVC, PULUMI_BACKEND_URL set, replicas spread over nodes", () => {
      const r = helmTemplate(helm!, [
        "state.passphrase=p",
        "state.backendUrl=s3://bucket/vmcp?region=eu-west-1",
      ]);
      assert.ok(r.ok, r.err);
      const objs = parseObjects(r.out);
      assert.ok(!objs.some((o) => o.kind === "PersistentVolumeClaim"));
      const d = find(objs, "Deployment");
      const env = controllerOf(d).env ?? [];
      assert.equal(
        env.find((e) => e.name === "PULUMI_BACKEND_URL")?.value,
        "s3://bucket/vmcp?region=eu-west-1",
      );
      assert.ok(podSpec(d).affinity?.["podAntiAffinity"], "spread");
      assert.ok(!podSpec(d).affinity?.["podAffinity"], "no same-node requirement");
      assert.ok(podSpec(d).volumes?.find((v) => v.name === "state")?.emptyDir !== undefined);
    });

    it("3 sharded replicas on PostgreSQL: --shards instead of --leader-elect, Lease RBAC for shards and members, spread, no PVC", () => {
      const r = helmTemplate(helm!, [
        "state.passphrase=p",
        "replicas=3",
        "controller.shards=6",
        "state.backendUrlSecret.name=vmcp-state-db",
        "state.credentials[0].env=PGPASSWORD",
        "state.credentials[0].secretName=vmcp-state-db",
        "state.credentials[0].secretKey=password",
      ]);
      assert.ok(r.ok, r.err);
      const objs = parseObjects(r.out);
      const d = find(objs, "Deployment");
      assert.equal((d as unknown as { spec: { replicas: number } }).spec.replicas, 3);
      const args = controllerOf(d).args ?? [];
      assert.ok(args.includes("--shards=6"), `args: ${args.join(" ")}`);
      assert.ok(args.includes("--lease-namespace=$(POD_NAMESPACE)"));
      assert.ok(!args.includes("--leader-elect"), "one election mode only");
      assert.ok(!objs.some((o) => o.kind === "PersistentVolumeClaim"), "the state is in the database");
      assert.ok(podSpec(d).affinity?.["podAntiAffinity"], "replicas spread over nodes");
      const role = find(objs, "Role", "vmcp-operator-leader-election") as Obj & {
        rules: { resources: string[]; verbs: string[]; resourceNames?: string[] }[];
      };
      const verbs = role.rules.filter((x) => x.resources.includes("leases")).flatMap((x) => x.verbs);
      for (const v of ["create", "get", "list", "update"]) assert.ok(verbs.includes(v), `leases: ${v}`);
      assert.ok(
        !verbs.includes("delete") && !verbs.includes("watch"),
        `no more than needed: ${verbs.join(",")}`,
      );
      // The default stays the single leader, with its Lease named.
      const single = parseObjects(helmTemplate(helm!, ["state.passphrase=p"]).out);
      const singleArgs = controllerOf(find(single, "Deployment")).args ?? [];
      assert.ok(singleArgs.includes("--leader-elect") && !singleArgs.some((a) => a.startsWith("--shards")));
      const bad = helmTemplate(helm!, ["state.passphrase=p", "controller.shards=0"]);
      assert.ok(!bad.ok);
      assert.match(bad.err, /controller\.shards must be from 1 to 1024/);
      // Sharded replicas need no leaderElect: the shard Leases are the election.
      const sharded = helmTemplate(helm!, [
        "state.passphrase=p",
        "replicas=3",
        "controller.shards=6",
        "controller.leaderElect=false",
        "state.backendUrl=s3://b/p",
      ]);
      assert.ok(sharded.ok, sharded.err);
      assert.ok(find(parseObjects(sharded.out), "Role", "vmcp-operator-leader-election"));
    });

    it("postgres:// from a Secret: URL and password by secretKeyRef, never in args or values' output", () => {
      const r = helmTemplate(helm!, [
        "state.passphrase=p",
        "state.backendUrlSecret.name=vmcp-state-db",
        "state.credentials[0].env=PGPASSWORD",
        "state.credentials[0].secretName=vmcp-state-db",
        "state.credentials[0].secretKey=password",
      ]);
      assert.ok(r.ok, r.err);
      const objs = parseObjects(r.out);
      assert.ok(
        !objs.some((o) => o.kind === "PersistentVolumeClaim"),
        "no PVC: the state is in the database",
      );
      const d = find(objs, "Deployment");
      const c = controllerOf(d);
      const env = c.env ?? [];
      assert.deepEqual(env.find((e) => e.name === "PULUMI_BACKEND_URL")?.valueFrom, {
        secretKeyRef: { name: "vmcp-state-db", key: "backendUrl" },
      });
      assert.deepEqual(env.find((e) => e.name === "PGPASSWORD")?.valueFrom, {
        secretKeyRef: { name: "vmcp-state-db", key: "password" },
      });
      assert.ok(!(c.args ?? []).some((a) => /backend-url|postgres:/.test(a)), `args: ${c.args?.join(" ")}`);
      assert.ok(podSpec(d).affinity?.["podAntiAffinity"] && !podSpec(d).affinity?.["podAffinity"], "spread");

      const both = helmTemplate(helm!, [
        "state.passphrase=p",
        "state.backendUrl=postgres://h/db",
        "state.backendUrlSecret.name=s",
      ]);
      assert.ok(!both.ok);
      assert.match(both.err, /set state\.backendUrl OR state\.backendUrlSecret\.name, not both/);
      const noKey = helmTemplate(helm!, ["state.passphrase=p", "state.credentials[0].env=PGPASSWORD"]);
      assert.ok(!noKey.ok);
      assert.match(noKey.err, /state\.credentials\[0\]\.secretName is empty/);
    });

    it("with a ReadWriteMany volume: replicas are not tied to one node", () => {
      const r = helmTemplate(helm!, ["state.passphrase=p", "state.persistence.accessModes={ReadWriteMany}"]);
      assert.ok(r.ok, r.err);
      const d = find(parseObjects(r.out), "Deployment");
      assert.ok(!podSpec(d).affinity?.["podAffinity"]);
    });

    it("binds the vMCP-object writes per namespace, or cluster-wide only when asked with *", () => {
      const per = parseObjects(
        helmTemplate(helm!, ["state.passphrase=p", "rbac.vmcpNamespaces={team-b,team-a}"]).out,
      );
      const bindings = per.filter(
        (o) => o.kind === "RoleBinding" && o.metadata.name === "vmcp-operator-vmcp-objects",
      );
      assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ["team-a", "team-b"]);
      assert.ok(
        !per.some((o) => o.kind === "ClusterRoleBinding" && o.metadata.name === "vmcp-operator-vmcp-objects"),
      );
      const all = parseObjects(helmTemplate(helm!, ["state.passphrase=p", "rbac.vmcpNamespaces={*}"]).out);
      find(all, "ClusterRoleBinding", "vmcp-operator-vmcp-objects");
      assert.ok(
        !all.some((o) => o.kind === "RoleBinding" && o.metadata.name === "vmcp-operator-vmcp-objects"),
      );
    });

    it("sets NODE_OPTIONS from controller.nodeOptions, the image's default unless changed; empty sets none", () => {
      const envOf = (sets: string[]) => {
        const r = helmTemplate(helm!, ["state.passphrase=p", ...sets]);
        assert.ok(r.ok, r.err);
        return controllerOf(find(parseObjects(r.out), "Deployment")).env ?? [];
      };
      const nodeOptions = (sets: string[]) => envOf(sets).find((e) => e.name === "NODE_OPTIONS")?.value;
      assert.equal(nodeOptions([]), imageNodeOptions(read("Dockerfile")));
      assert.equal(
        nodeOptions(["controller.nodeOptions=--max-old-space-size-percentage=40"]),
        "--max-old-space-size-percentage=40",
      );
      assert.ok(!envOf(["controller.nodeOptions="]).some((e) => e.name === "NODE_OPTIONS"));
    });

    it("passes the controller settings as flags", () => {
      const r = helmTemplate(helm!, [
        "state.passphrase=p",
        "controller.workers=4",
        "controller.resync=10m",
        "vmcp.image=registry.example/vmcp:v1",
        "controller.probeInterval=45s",
        "controller.watchNamespace=team-a",
        "metrics.port=9090",
      ]);
      assert.ok(r.ok, r.err);
      const args = controllerOf(find(parseObjects(r.out), "Deployment")).args ?? [];
      for (const a of [
        "--workers=4",
        "--resync=10m",
        "--vmcp-image=registry.example/vmcp:v1",
        "--probe-interval=45s",
        "--namespace=team-a",
        "--metrics-addr=:9090",
        "--leader-elect",
        "--lease-namespace=$(POD_NAMESPACE)",
      ])
        assert.ok(args.includes(a), `${a} in ${args.join(" ")}`);
    });

    // Every value that can reach the controller's command line, set to a non-default value:
    // a value the chart renders into a flag the CLI does not know would crash-loop the pod.
    const EVERY_CONTROLLER_VALUE: Record<string, string> = {
      "controller.workers": "3",
      "controller.resync": "7m",
      "controller.leaderElect": "true",
      "controller.shards": "4",
      "controller.shutdownTimeout": "90s",
      "controller.logLevel": "debug",
      "controller.watchNamespace": "team-a",
      "controller.probeInterval": "45s",
      "controller.podTemplatePolicy": "baseline",
      "controller.previewGate": "replacements",
      "controller.kubeProvider": "per-operation",
      "controller.extraArgs[0]": "--no-health-checks",
      "controller.extraEnv[0].name": "AWS_REGION",
      "controller.extraEnv[0].value": "eu-west-1",
      "controller.extraEnvFrom[0].secretRef.name": "cloud-credentials",
      "controller.nodeOptions": "--max-semi-space-size=4 --max-old-space-size-percentage=40",
      "vmcp.image": "registry.example/vmcp:v1",
      "metrics.port": "9090",
      "state.backendUrl": "s3://bucket/vmcp",
    };

    it("covers every controller.* and vmcp.* value of values.yaml in the flag check below", () => {
      const values = parseAllDocuments(readFileSync(join(CHART, "values.yaml"), "utf8"))[0]?.toJS() as Record<
        string,
        Record<string, unknown>
      >;
      const keys = ["controller", "vmcp"].flatMap((group) =>
        Object.keys(values[group] ?? {}).map((k) => `${group}.${k}`),
      );
      const covered = Object.keys(EVERY_CONTROLLER_VALUE).map((k) => k.replace(/\[.*$/, ""));
      for (const key of keys) assert.ok(covered.includes(key), `${key} is not exercised by the flag check`);
    });

    it("renders only flags that vmcpctl controller accepts, with every controller value set", function () {
      this.timeout(60_000); // vmcpctl loads the controller's modules
      const sets = [
        "state.passphrase=p",
        ...Object.entries(EVERY_CONTROLLER_VALUE).map(([k, v]) => `${k}=${v}`),
      ];
      const r = helmTemplate(helm!, sets);
      assert.ok(r.ok, r.err);
      const controller = controllerOf(find(parseObjects(r.out), "Deployment"));
      const args = (controller.args ?? []).map((a) => a.replace("$(POD_NAMESPACE)", "vmcp-system"));
      assert.ok(args.includes("--probe-interval=45s") && args.includes("--no-health-checks"), args.join(" "));
      assert.ok(args.includes("--pod-template-policy=baseline"), args.join(" "));
      assert.ok(args.includes("--preview-gate=replacements"), args.join(" "));
      assert.ok(args.includes("--kube-provider=per-operation"), args.join(" "));
      assert.ok(args.includes("--shards=4"), args.join(" "));
      const check = spawnSync(
        process.execPath,
        [join(ROOT, "dist", "cli", "main.js"), "controller", ...args, "--check-flags"],
        { encoding: "utf8" },
      );
      assert.equal(check.status, 0, `vmcpctl controller ${args.join(" ")}: ${check.stderr}`);
      assert.equal(check.stdout.trim(), "flags ok");
      // NODE_OPTIONS is read by Node before the CLI runs: it must accept them too
      const nodeOptions = controller.env?.find((e) => e.name === "NODE_OPTIONS")?.value;
      assert.equal(nodeOptions, EVERY_CONTROLLER_VALUE["controller.nodeOptions"]);
      const run = nodeWith(nodeOptions!);
      assert.ok(run.ok, `NODE_OPTIONS=${nodeOptions}: ${run.err}`);
    });

    it("the flag check fails on a flag the controller does not know (it is not a rubber stamp)", function () {
      this.timeout(60_000);
      const check = spawnSync(
        process.execPath,
        [join(ROOT, "dist", "cli", "main.js"), "controller", "--probe-intervall=45s", "--check-flags"],
        { encoding: "utf8" },
      );
      assert.equal(check.status, 1);
      assert.match(check.stderr, /probe-intervall/);
    });
  });
});

describe("deploy: plain manifests", () => {
  const objs = parseObjects(readFileSync(MANIFESTS, "utf8"));

  it("hold the CRDs, the namespace and the controller's objects", () => {
    const kinds = objs.map((o) => o.kind);
    assert.equal(
      kinds.filter((k) => k === "CustomResourceDefinition").length,
      readdirSync(join(ROOT, "crds")).length,
    );
    assert.equal(kinds.indexOf("Namespace"), 0, "the Namespace first");
    for (const crd of objs.filter((o) => o.kind === "CustomResourceDefinition"))
      assert.equal(
        crd.metadata.annotations?.["helm.sh/resource-policy"],
        "keep",
        `${crd.metadata.name}: helm uninstall must not delete it`,
      );
    for (const k of [
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "Deployment",
    ])
      assert.ok(kinds.includes(k), k);
    find(objs, "Service", "vmcp-operator-metrics");
    find(objs, "PersistentVolumeClaim", "vmcp-operator-state");
  });

  it("run 2 replicas with leader election, non-root, on a read-only root filesystem", () => {
    const d = find(objs, "Deployment") as Obj & { spec: { replicas: number } };
    assert.equal(d.spec.replicas, 2);
    const pod = podSpec(d);
    const c = controllerOf(d);
    assert.ok(c.args?.includes("--leader-elect"));
    assert.equal(pod.securityContext?.["runAsNonRoot"], true);
    assert.equal(pod.securityContext?.["runAsUser"], 65532);
    for (const ctr of [c, ...(pod.initContainers ?? [])]) {
      assert.equal(ctr.securityContext?.["readOnlyRootFilesystem"], true, ctr.name);
      assert.equal(ctr.securityContext?.["allowPrivilegeEscalation"], false, ctr.name);
    }
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const m of c.volumeMounts ?? []) assert.ok(volumes.has(m.name), m.name);
    assert.ok(volumes.get("tmp")?.emptyDir !== undefined);
    assert.ok(volumes.get("pulumi-home")?.emptyDir !== undefined);
    assert.equal(volumes.get("state")?.persistentVolumeClaim?.claimName, "vmcp-operator-state");
    // ReadWriteOnce state: the replicas must share the node the volume is attached to
    assert.ok(pod.affinity?.["podAffinity"], "same-node podAffinity for RWO");
    assert.equal(pod.serviceAccountName, "vmcp-operator");
  });

  it("run the controller with the image's NODE_OPTIONS (the chart's default)", () => {
    const env = controllerOf(find(objs, "Deployment")).env ?? [];
    const options = imageNodeOptions(read("Dockerfile"));
    assert.ok(options);
    assert.equal(env.find((e) => e.name === "NODE_OPTIONS")?.value, options);
    const values = parseAllDocuments(read("deploy", "helm", "vmcp-operator", "values.yaml"))[0]?.toJS() as {
      controller: { nodeOptions: string };
    };
    assert.equal(values.controller.nodeOptions, options, "values.yaml controller.nodeOptions");
  });

  it("grant no wildcard, and no write outside the namespaces of VirtualMCPServers", () => {
    const roles = objs.filter((o) => o.kind === "ClusterRole" || o.kind === "Role");
    for (const r of roles)
      for (const rule of rulesOf(r)) {
        for (const f of [rule.apiGroups, rule.resources, rule.verbs])
          assert.ok(!f?.includes("*"), r.metadata.name);
        assert.ok(!rule.verbs.some((v) => ["bind", "escalate", "impersonate"].includes(v)), r.metadata.name);
      }
    const crbs = objs.filter((o) => o.kind === "ClusterRoleBinding") as (Obj & {
      roleRef: { name: string };
    })[];
    const clusterWide = crbs.map((b) => find(objs, "ClusterRole", b.roleRef.name));
    const writes = ["create", "update", "patch", "delete"];
    for (const role of clusterWide)
      for (const rule of rulesOf(role)) {
        const writesObjects = rule.verbs.some((v) => writes.includes(v));
        if (!writesObjects) continue;
        // cluster-wide writes: only VirtualMCPServer finalizers/status
        assert.deepEqual(rule.apiGroups, ["toolhive.stacklok.dev"], JSON.stringify(rule));
        for (const res of rule.resources ?? [])
          assert.match(res, /^virtualmcpservers(\/status|\/finalizers)?$/);
      }
    for (const role of clusterWide)
      for (const rule of rulesOf(role))
        assert.ok(!rule.resources?.includes("secrets"), "no cluster-wide Secret access");
  });

  it("grant on Secrets only get (by name) and the HMAC Secret's server-side apply: no list, watch or delete", () => {
    const verbs = rulesOf(find(objs, "ClusterRole", "vmcp-operator-vmcp-objects"))
      .filter((r) => r.resources?.includes("secrets"))
      .flatMap((r) => r.verbs)
      .sort();
    assert.deepEqual(verbs, ["create", "get", "patch"]);
  });
});
