// --pod-template-policy: creating a VirtualMCPServer creates a pod, so spec.podTemplateSpec
// may not turn it into a privileged one (restricted, the default, and baseline).
import assert from "node:assert/strict";
import { build } from "../../program/desired.js";
import { gatherInputs, objectSet } from "../../program/inputs.js";
import type { PodTemplatePolicy } from "../../program/podpolicy.js";
import { example, vmcpOf } from "./helpers.js";

function withTemplate(podTemplateSpec: Record<string, unknown>, policy?: PodTemplatePolicy) {
  const objects = example("basic");
  const vmcp = vmcpOf(objects);
  const patched = { ...vmcp, spec: { ...vmcp.spec, podTemplateSpec } };
  return build(gatherInputs(objectSet(objects), patched), {
    vmcpImage: "ghcr.io/stacklok/toolhive/vmcp:v0.44.0",
    ...(policy ? { podTemplatePolicy: policy } : {}),
  });
}

const paths = (b: ReturnType<typeof withTemplate>) =>
  b.problems.filter((p) => p.condition === "PodTemplateValidated").map((p) => p.message.split(":")[0]);

describe("pod template policy", () => {
  it("restricted (default) rejects host namespaces, hostPath and privileged sidecars, naming the path", () => {
    const b = withTemplate({
      spec: {
        hostNetwork: true,
        volumes: [{ name: "root", hostPath: { path: "/" } }],
        containers: [{ name: "sidecar", image: "busybox", securityContext: { privileged: true } }],
      },
    });
    assert.equal(b.desired, undefined, "nothing is deployed");
    assert.deepEqual(paths(b), [
      "spec.podTemplateSpec.spec.hostNetwork",
      "spec.podTemplateSpec.spec.volumes[name=root].hostPath",
      "spec.podTemplateSpec.spec.containers[name=sidecar].securityContext.privileged",
    ]);
  });

  it("restricted keeps the vmcp container's image and command, and its security context", () => {
    const b = withTemplate({
      spec: {
        securityContext: null,
        containers: [
          {
            name: "vmcp",
            image: "evil/vmcp:latest",
            command: ["/bin/sh"],
            securityContext: { capabilities: { add: ["SYS_ADMIN"] } },
          },
        ],
      },
    });
    const found = paths(b);
    for (const p of [
      "spec.podTemplateSpec.spec.containers[name=vmcp].image",
      "spec.podTemplateSpec.spec.containers[name=vmcp].command",
      "spec.podTemplateSpec.spec.containers[name=vmcp].securityContext.capabilities.add",
      "spec.podTemplateSpec.spec.securityContext.runAsNonRoot",
    ])
      assert.ok(found.includes(p), `${p} in ${JSON.stringify(found)}`);
  });

  it("baseline allows another image but still no host namespaces; unrestricted allows everything", () => {
    assert.ok(
      withTemplate({ spec: { containers: [{ name: "vmcp", image: "my/vmcp:dev" }] } }, "baseline").desired,
    );
    assert.deepEqual(paths(withTemplate({ spec: { hostPID: true } }, "baseline")), [
      "spec.podTemplateSpec.spec.hostPID",
    ]);
    assert.ok(
      withTemplate({ spec: { hostPID: true, containers: [{ name: "vmcp", image: "x" }] } }, "unrestricted")
        .desired,
    );
  });

  it("restricted accepts what teams legitimately change: resources, nodeSelector, tolerations, env, a plain sidecar", () => {
    const b = withTemplate({
      metadata: { annotations: { "sidecar.istio.io/inject": "false" } },
      spec: {
        nodeSelector: { pool: "tools" },
        tolerations: [{ key: "dedicated", operator: "Exists" }],
        containers: [
          {
            name: "vmcp",
            resources: { limits: { memory: "1Gi" } },
            env: [{ name: "LOG_FORMAT", value: "json" }],
          },
          {
            name: "proxy",
            image: "envoy:1",
            securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true },
          },
        ],
      },
    });
    assert.deepEqual(paths(b), []);
    assert.ok(b.desired);
  });
});
