// What the Pulumi program declares, checked with Pulumi's mocks (no engine, no cluster).
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { build } from "../../program/desired.js";
import { gatherInputs, objectSet } from "../../program/inputs.js";
import { parseManifests } from "../../program/manifests.js";
import type { VirtualMCPServer } from "../../api/index.js";
import {
  COMPONENT_TYPE,
  hmacSecretDeletion,
  VirtualMCPServer as Component,
} from "../../program/resources.js";

interface Declared {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider?: string;
}
const declared: Declared[] = [];

await pulumi.runtime.setMocks(
  {
    newResource(args) {
      declared.push({
        type: args.type,
        name: args.name,
        inputs: args.inputs as Record<string, unknown>,
        provider: args.provider,
      });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "vmcp-operator",
  "test",
  false,
);

const objects = parseManifests(
  `apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPGroup
metadata: {name: g, namespace: ns}
spec: {}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServerEntry
metadata: {name: a, namespace: ns}
spec: {remoteUrl: "https://a.example.com/mcp", transport: streamable-http, groupRef: {name: g}}
---
apiVersion: toolhive.stacklok.dev/v1beta1
kind: VirtualMCPServer
metadata: {name: v, namespace: ns, uid: 1234-abcd}
spec: {groupRef: {name: g}, incomingAuth: {type: anonymous}}`,
  "test",
).objects;
const vmcp = objects.find((o) => o.kind === "VirtualMCPServer") as VirtualMCPServer;
const desired = build(gatherInputs(objectSet(objects), vmcp), { vmcpImage: "img:1" }).desired;
assert.ok(desired);

const byType = (type: string) => declared.find((d) => d.type === type);
const meta = (d: Declared | undefined) =>
  d?.inputs.metadata as {
    name: string;
    ownerReferences?: { uid: string }[];
    annotations?: Record<string, string>;
  };

/** Every URN the mock engine registered so far. */
function urns(): string[] {
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    getRegisteredResources(): Map<string, unknown>;
  };
  return [...monitor.getRegisteredResources().keys()];
}
const settle = () => new Promise((r) => setTimeout(r, 100)); // let the mock engine register resources

describe("Pulumi program", () => {
  let component: Component;
  before(async () => {
    component = new Component("v", { desired });
    await settle();
  });

  it("groups the provider and every object under one VirtualMCPServer component", () => {
    const all = urns();
    assert.ok(all.includes(`urn:pulumi:test::vmcp-operator::${COMPONENT_TYPE}::v`), all.join("\n"));
    const children = all.filter((u) => u.includes(`::${COMPONENT_TYPE}$`));
    assert.deepEqual(children.map((u) => u.split("::").slice(2).join("::")).sort(), [
      `${COMPONENT_TYPE}$kubernetes:apps/v1:Deployment::v-deployment`,
      `${COMPONENT_TYPE}$kubernetes:core/v1:ConfigMap::v-configmap`,
      `${COMPONENT_TYPE}$kubernetes:core/v1:Secret::v-hmac-secret`,
      `${COMPONENT_TYPE}$kubernetes:core/v1:Service::v-service`,
      `${COMPONENT_TYPE}$kubernetes:core/v1:ServiceAccount::v-serviceaccount`,
      `${COMPONENT_TYPE}$kubernetes:rbac.authorization.k8s.io/v1:Role::v-role`,
      `${COMPONENT_TYPE}$kubernetes:rbac.authorization.k8s.io/v1:RoleBinding::v-rolebinding`,
      `${COMPONENT_TYPE}$pulumi:providers:kubernetes::v-k8s`,
    ]);
    assert.equal(children.length + 1, all.length, `resources outside the component:\n${all.join("\n")}`);
    for (const d of declared.filter((x) => x.type.startsWith("kubernetes:")))
      assert.match(
        d.provider ?? "",
        /\$pulumi:providers:kubernetes::v-k8s::/,
        `${d.name} uses another provider`,
      );
  });

  it("declares every object of the desired state, owned by the VirtualMCPServer", () => {
    for (const [type, name] of [
      ["kubernetes:core/v1:ServiceAccount", "v-vmcp"],
      ["kubernetes:rbac.authorization.k8s.io/v1:Role", "v-vmcp"],
      ["kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "v-vmcp"],
      ["kubernetes:core/v1:ConfigMap", "v-vmcp-config"],
      ["kubernetes:apps/v1:Deployment", "v"],
      ["kubernetes:core/v1:Service", "vmcp-v"],
      ["kubernetes:core/v1:Secret", "v-hmac-secret"],
    ] as const) {
      const d = byType(type);
      assert.ok(d, `${type} not declared`);
      assert.equal(meta(d).name, name);
      assert.equal(meta(d).ownerReferences?.[0]?.uid, "1234-abcd", `${type} has no owner reference`);
    }
  });

  it("uses a provider that updates ConfigMaps in place instead of replacing them", () => {
    const provider = byType("pulumi:providers:kubernetes");
    assert.ok(provider);
    assert.equal(provider.inputs.enableConfigMapMutable, "true");
    assert.equal(
      provider.inputs.kubeconfig,
      undefined,
      "credentials must not become provider inputs (state)",
    );
  });

  it("does not block on rollouts by default", () => {
    assert.equal(meta(byType("kubernetes:apps/v1:Deployment")).annotations?.["pulumi.com/skipAwait"], "true");
    assert.equal(meta(byType("kubernetes:core/v1:Service")).annotations?.["pulumi.com/skipAwait"], "true");
  });

  it("generates the HMAC secret as a Pulumi secret of 32 random bytes", () => {
    const secret = byType("kubernetes:core/v1:Secret");
    // Mocks see a secret as the wire envelope {<sig>: <secret sig>, value}.
    const wrapped = secret?.inputs.data as Record<string, unknown> | undefined;
    const sig = "4dabf18193072939515e22adb298388d";
    assert.equal(wrapped?.[sig], "1b47061264138c4ac30d75fd1eb44270", "data is not marked secret");
    const value = (wrapped?.value as Record<string, string> | undefined)?.["hmac-secret"] ?? "";
    assert.equal(Buffer.from(value, "base64").length, 32);
  });

  it("leaves an owned HMAC Secret to the garbage collector on destroy, deletes an unowned one", () => {
    assert.deepEqual(hmacSecretDeletion(desired), { retainOnDelete: true });
    const unowned = structuredClone(vmcp);
    delete unowned.metadata.uid;
    const free = build(gatherInputs(objectSet(objects), unowned), { vmcpImage: "img:1" }).desired;
    assert.ok(free);
    assert.deepEqual(hmacSecretDeletion(free), {});
    // The root program deletes it either way: one it left would block a controller's create.
    assert.deepEqual(hmacSecretDeletion(desired, true), {});
  });

  it("exports the URL, config checksum and desired hash", async () => {
    const value = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));
    assert.equal(await value(component.url), "http://vmcp-v.ns.svc.cluster.local:4483");
    assert.equal(await value(component.configChecksum), desired.configChecksum);
    assert.equal(await value(component.desiredHash), desired.hash);
    assert.equal((await value(component.objects)).length, 6);
    assert.deepEqual(component.stackOutputs.url, "http://vmcp-v.ns.svc.cluster.local:4483");
  });

  it("builds from the builder's inputs the same objects as from a built state", async () => {
    const before = declared.length;
    const built = new Component("w", {
      inputs: gatherInputs(objectSet(objects), vmcp),
      settings: { vmcpImage: "img:1" },
    });
    await settle();
    assert.deepEqual(built.stackOutputs, component.stackOutputs);
    const deployments = declared.filter((d) => d.type === "kubernetes:apps/v1:Deployment");
    assert.equal(declared.length - before, 9, "component, provider, 7 objects");
    assert.deepEqual(deployments[1]?.inputs, deployments[0]?.inputs);
    // A second component in the same program: its children do not collide with the first's.
    assert.equal(new Set(urns()).size, urns().length);
    assert.ok(urns().some((u) => u.endsWith("$kubernetes:apps/v1:Deployment::w-deployment")));
  });

  it("names the VirtualMCPServer and the missing reference when the inputs cannot be built", () => {
    const broken = { ...vmcp, spec: { ...vmcp.spec, embeddingServerRef: { name: "missing" } } };
    assert.throws(
      () =>
        new Component("x", {
          inputs: gatherInputs(objectSet(objects), broken),
          settings: { vmcpImage: "img:1" },
        }),
      /VirtualMCPServer ns\/v: .*EmbeddingServer missing/,
    );
  });
});
