// The one Node of the local cluster. kwok (managing nodes annotated kwok.x-k8s.io/node=fake)
// fills its status (Ready, addresses, huge allocatable) and plays kubelet for pods bound to it.
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";

export const FAKE_NODE_NAME = "kwok-node-0";

export function fakeNode(name = FAKE_NODE_NAME): V1Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/role": "agent",
        type: "kwok",
      },
    },
    // No taint: workloads need no toleration to land here.
    spec: {},
  };
}

export async function createFakeNode(kc: KubeConfig, name = FAKE_NODE_NAME): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNode({ body: fakeNode(name) });
}

export async function nodeReady(kc: KubeConfig, name = FAKE_NODE_NAME): Promise<boolean> {
  const node = await kc.makeApiClient(CoreV1Api).readNode({ name });
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}
