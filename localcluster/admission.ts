// Steering pods to the process kubelet at admission: a MutatingAdmissionPolicy (CEL, in the
// API server; no webhook to run) gives every new pod whose containers all use one of the
// kubelet's images a node selector for the kubelet's node and a toleration of its taint.
// Other pods never tolerate the taint and stay on kwok's node. The Deployment itself is not
// changed, so the controller sees exactly what it applied.
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";

export const NODE_LABEL = "vmcp.stacklok.dev/process-node";

const cel = (s: string): string => JSON.stringify(s);

export function policyName(node: string): string {
  return `process-pods-${node}`;
}

/** The policy and its binding (pure: tested in test/unit). */
export function admissionPolicy(node: string, images: readonly string[]) {
  const toleration = `Object.spec.tolerations{key: ${cel(NODE_LABEL)}, operator: "Exists", effect: "NoSchedule"}`;
  const selectorKey = NODE_LABEL.replace("~", "~0").replace("/", "~1");
  const expression = [
    `(has(object.spec.nodeSelector)`,
    `  ? [JSONPatch{op: "add", path: "/spec/nodeSelector/${selectorKey}", value: ${cel(node)}}]`,
    `  : [JSONPatch{op: "add", path: "/spec/nodeSelector", value: {${cel(NODE_LABEL)}: ${cel(node)}}}]) +`,
    `(has(object.spec.tolerations)`,
    `  ? [JSONPatch{op: "add", path: "/spec/tolerations/-", value: ${toleration}}]`,
    `  : [JSONPatch{op: "add", path: "/spec/tolerations", value: [${toleration}]}])`,
  ].join("\n");
  const name = policyName(node);
  return {
    policy: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicy",
      metadata: { name },
      spec: {
        matchConstraints: {
          resourceRules: [
            { apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"] },
          ],
        },
        matchConditions: [
          {
            name: "runnable-images",
            expression: `object.spec.containers.all(c, c.image in ${JSON.stringify(images)}) && !has(object.spec.nodeName)`,
          },
        ],
        failurePolicy: "Fail",
        reinvocationPolicy: "Never",
        mutations: [{ patchType: "JSONPatch", jsonPatch: { expression } }],
      },
    },
    binding: {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name },
      spec: { policyName: name },
    },
  };
}

export async function applyAdmissionPolicy(
  kc: KubeConfig,
  node: string,
  images: readonly string[],
): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const { policy, binding } = admissionPolicy(node, images);
  await deleteAdmissionPolicy(kc, node);
  await api.createMutatingAdmissionPolicy({ body: policy as never });
  await api.createMutatingAdmissionPolicyBinding({ body: binding as never });
  await untilEffective(kc, node, images[0] as string);
}

/**
 * The API server applies a new policy only once its informer has it: dry-run a pod with the
 * image until the mutation shows, so no pod created right after start slips past to kwok.
 */
async function untilEffective(kc: KubeConfig, node: string, image: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pod = await core.createNamespacedPod({
      namespace: "default",
      dryRun: "All",
      body: {
        metadata: { generateName: "admission-probe-" },
        spec: { containers: [{ name: "probe", image }] },
      },
    });
    if (pod.spec?.nodeSelector?.[NODE_LABEL] === node) return;
    if (Date.now() > deadline)
      throw new Error(`admission policy ${policyName(node)} not effective after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function deleteAdmissionPolicy(kc: KubeConfig, node: string): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const name = policyName(node);
  await api.deleteMutatingAdmissionPolicyBinding({ name }).catch(() => undefined);
  await api.deleteMutatingAdmissionPolicy({ name }).catch(() => undefined);
}
