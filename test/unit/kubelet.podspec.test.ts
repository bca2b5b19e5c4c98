// The process kubelet's reading of a pod spec (localcluster/podspec.ts): env as a kubelet
// builds it, probe targets, argv, the crash-loop back-off and the user a container runs as.
import assert from "node:assert/strict";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import {
  backoffMs,
  containerArgv,
  containerEnv,
  ContainerConfigError,
  expand,
  preStopMs,
  probeTarget,
  referencedNames,
  runAs,
  volumeContent,
  type Referenced,
} from "../../localcluster/podspec.js";

const pod = (containers: V1Container[], extra: Partial<V1Pod["spec"]> = {}): V1Pod => ({
  metadata: { name: "gw-abc", namespace: "team", uid: "u-1", labels: { app: "gw" } },
  spec: { containers, nodeName: "process-node-0", ...extra },
  status: { podIP: "10.245.7.2" },
});
const refs: Referenced = {
  secrets: new Map([["creds", { token: Buffer.from("s3cret"), nul: Buffer.from("ab\0cd") }]]),
  configMaps: new Map([["settings", { level: Buffer.from("debug"), mode: Buffer.from("fast") }]]),
};

describe("process kubelet: the pod spec as a kubelet reads it", () => {
  it("holds a container for its preStop sleep; refuses exec and httpGet hooks by name", () => {
    assert.equal(preStopMs({ name: "vmcp" }), 0);
    assert.equal(preStopMs({ name: "vmcp", lifecycle: { preStop: { sleep: { seconds: 5 } } } }), 5000);
    assert.throws(
      () => preStopMs({ name: "vmcp", lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } } }),
      (e: unknown) =>
        e instanceof ContainerConfigError &&
        /container vmcp: lifecycle.preStop: only the sleep/.test(e.message),
    );
  });

  it("lists every Secret and ConfigMap the pod reads", () => {
    const p = pod([
      {
        name: "vmcp",
        env: [{ name: "T", valueFrom: { secretKeyRef: { name: "creds", key: "token" } } }],
        envFrom: [{ configMapRef: { name: "settings" } }],
      },
    ]);
    p.spec!.volumes = [
      { name: "config", configMap: { name: "gw-vmcp-config" } },
      { name: "token", projected: { sources: [{ secret: { name: "sa-token" } }] } },
    ];
    assert.deepEqual(referencedNames(p), {
      secrets: ["creds", "sa-token"],
      configMaps: ["gw-vmcp-config", "settings"],
    });
  });

  it("builds env from envFrom, then env in order, with $(VAR), valueFrom and fieldRef", () => {
    const c: V1Container = {
      name: "vmcp",
      envFrom: [{ configMapRef: { name: "settings" }, prefix: "CFG_" }],
      env: [
        { name: "TOKEN", valueFrom: { secretKeyRef: { name: "creds", key: "token" } } },
        { name: "URL", value: "http://$(POD_IP):4483/$(CFG_mode)/$$(literal)" },
        { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "CUT", valueFrom: { secretKeyRef: { name: "creds", key: "nul" } } },
        { name: "MISSING_OK", valueFrom: { secretKeyRef: { name: "creds", key: "none", optional: true } } },
      ],
    };
    const env = containerEnv(pod([c]), c, refs);
    assert.equal(env.CFG_level, "debug");
    assert.equal(env.TOKEN, "s3cret");
    // POD_IP is defined after URL: a kubelet leaves the reference as written.
    assert.equal(env.URL, "http://$(POD_IP):4483/fast/$(literal)");
    assert.equal(env.POD_IP, "10.245.7.2");
    assert.equal(env.APP, "gw");
    assert.equal(env.CUT, "ab", "a value ends at its first NUL, as execve ends it");
    assert.equal("MISSING_OK" in env, false);
  });

  it("fails as CreateContainerConfigError naming the missing key or object", () => {
    const c = (ref: { name: string; key: string }): V1Container => ({
      name: "vmcp",
      env: [{ name: "X", valueFrom: { secretKeyRef: ref } }],
    });
    const missingKey = c({ name: "creds", key: "gone" });
    assert.throws(
      () => containerEnv(pod([missingKey]), missingKey, refs),
      (err: unknown) =>
        err instanceof ContainerConfigError && /couldn't find key gone in Secret creds/.test(err.message),
    );
    const missingSecret = c({ name: "nope", key: "k" });
    assert.throws(() => containerEnv(pod([missingSecret]), missingSecret, refs), /secret "nope" not found/);
  });

  it("expands $(VAR) only for defined names and unescapes $$", () => {
    assert.equal(expand("$(A)-$(B)-$$(A)", { A: "1" }), "1-$(B)-$(A)");
  });

  it("resolves probe ports by name, with the kubelet's default timings", () => {
    const c: V1Container = { name: "vmcp", ports: [{ name: "http", containerPort: 4483 }] };
    const http = probeTarget({ httpGet: { path: "health", port: "http" as never } }, c, "10.245.7.2");
    assert.deepEqual(http, {
      kind: "http",
      url: "http://10.245.7.2:4483/health",
      port: 4483,
      headers: {},
      initialDelayMs: 0,
      periodMs: 10_000,
      timeoutMs: 1_000,
      failureThreshold: 3,
      successThreshold: 1,
    });
    const tcp = probeTarget({ tcpSocket: { port: 9000 as never }, periodSeconds: 2 }, c, "10.245.7.2");
    assert.equal(tcp?.url, "tcp://10.245.7.2:9000");
    assert.equal(tcp?.periodMs, 2_000);
    assert.equal(probeTarget(undefined, c, "10.245.7.2"), undefined);
    assert.throws(() => probeTarget({ httpGet: { port: "metrics" as never } }, c, "x"), /not a port of vmcp/);
    assert.throws(() => probeTarget({ exec: { command: ["true"] } }, c, "x"), /only httpGet and tcpSocket/);
  });

  it("runs command (default: the image's binary) then args, $(VAR) expanded", () => {
    const env = { PORT: "4483" };
    assert.deepEqual(
      containerArgv({ name: "vmcp", args: ["serve", "--port=$(PORT)"] }, "/opt/bin/vmcp", env),
      ["/usr/local/bin/vmcp", "serve", "--port=4483"],
    );
    assert.deepEqual(containerArgv({ name: "vmcp", command: ["/bin/x", "$(PORT)"] }, "/opt/bin/vmcp", env), [
      "/bin/x",
      "4483",
    ]);
  });

  it("backs off as a kubelet does: none before the first restart, doubling, capped", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 10].map((n) => backoffMs(n, 1_000, 5_000)),
      [0, 1_000, 2_000, 4_000, 5_000],
    );
  });

  it("runs as the container's user over the pod's, the group defaulting to the user", () => {
    const p = pod([{ name: "vmcp", securityContext: { runAsUser: 1001 } }], {
      securityContext: { runAsUser: 65532, runAsGroup: 65532, fsGroup: 2000 },
    });
    assert.deepEqual(runAs(p, p.spec!.containers[0]!), { uid: 1001, gid: 65532, fsGroup: 2000 });
    const q = pod([{ name: "vmcp" }], { securityContext: { runAsUser: 7 } });
    assert.deepEqual(runAs(q, q.spec!.containers[0]!), { uid: 7, gid: 7, fsGroup: undefined });
  });

  it("writes downward API fields as files and refuses what it cannot play (resourceFieldRef)", () => {
    const p = pod([{ name: "vmcp" }]);
    const items = [{ path: "name", fieldRef: { fieldPath: "metadata.name" } }];
    const plain = volumeContent(p, { name: "info", downwardAPI: { items } }, refs);
    assert.equal(plain.kind, "files");
    assert.deepEqual(plain.kind === "files" && plain.files.map((f) => [f.path, f.content.toString()]), [
      ["name", "gw-abc"],
    ]);
    const limits = [{ path: "cpu", resourceFieldRef: { containerName: "vmcp", resource: "limits.cpu" } }];
    for (const volume of [
      { name: "info", downwardAPI: { items: limits } },
      { name: "info", projected: { sources: [{ downwardAPI: { items: limits } }] } },
    ])
      assert.throws(
        () => volumeContent(p, volume, refs),
        (e: unknown) =>
          e instanceof ContainerConfigError &&
          e.reason === "CreateContainerConfigError" &&
          /downwardAPI item cpu: only fieldRef/.test(e.message),
      );
  });
});
