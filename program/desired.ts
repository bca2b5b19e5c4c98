// The builder: a pure function from one VirtualMCPServer and what it references to
// every object its stack declares. Same inputs, in any order → byte-identical objects
// and the same hash, which is what lets the controller skip Pulumi when nothing changed.
import type { VirtualMCPServer } from "../api/index.js";
import { canonicalize, canonicalJson, canonicalYaml, sha256 } from "./canonical.js";
import { discoverBackends, type Discovery, type DiscoveryOptions } from "./discovery.js";
import type { OperatorSettings, VmcpInputs } from "./inputs.js";
import * as n from "./names.js";
import { buildOutgoingAuth, type OutgoingAuth } from "./outgoingauth.js";
import { podTemplateViolations } from "./podpolicy.js";
import { strategicMerge } from "./podtemplate.js";
import { buildVmcpConfig, type PodInputs, type RefProblem, type VmcpConfig } from "./vmcpconfig.js";

/** The preStop pause: long enough for endpoints and proxies to drop a terminating pod. */
export const PRESTOP_SECONDS = 5;
/** preStop + vmcp's graceful shutdown (10 s) + headroom; SIGKILL after this. */
export const TERMINATION_GRACE_SECONDS = 30;

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Record<string, unknown>[];
  };
  [field: string]: unknown;
}

export interface DesiredState {
  namespace: string;
  name: string;
  /**
   * ServiceAccount, Role, RoleBinding (unless spec.serviceAccount), ConfigMap, Deployment,
   * Service, PodDisruptionBudget (replicas > 1).
   */
  objects: Manifest[];
  /** The vmcp config, canonical (exactly what configYaml says), for readers past the builder. */
  config: VmcpConfig;
  configYaml: string;
  configChecksum: string;
  /** Created once with random bytes by the program, never rendered, never diffed. */
  hmacSecret: { name: string; key: string };
  url: string;
  hash: string;
  /**
   * Set by the controller, not the builder (so not in `hash`; controller/steps.ts
   * takeOverOf): objects of the stack's names that exist without an owner reference to this
   * VirtualMCPServer, i.e. were taken over at the first apply (adoptionStep). Applied without
   * an owner reference (the garbage collector must not delete them with the
   * VirtualMCPServer) and `retainOnDelete` (destroy leaves them). In the stack outputs.
   */
  adopted?: ObjectRef[];
  /** Set by the controller for the first apply only: objects that exist then, taken with force. */
  preexisting?: ObjectRef[];
}

/** An object of the stack, by kind and name. */
export interface ObjectRef {
  kind: string;
  name: string;
}

export interface Build {
  discovery: Discovery;
  auth: OutgoingAuth;
  /** Referenced objects missing or invalid: nothing is built, the last deployment stays. */
  problems: RefProblem[];
  /** Settings that were accepted but have no effect on the vmcp runtime. */
  warnings: string[];
  desired: DesiredState | undefined;
}

function ownerReferences(vmcp: VirtualMCPServer): Record<string, unknown>[] | undefined {
  if (!vmcp.metadata.uid) return undefined;
  return [
    {
      apiVersion: vmcp.apiVersion,
      kind: "VirtualMCPServer",
      name: vmcp.metadata.name,
      uid: vmcp.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
}

function rbac(vmcp: VirtualMCPServer, meta: (name: string) => Manifest["metadata"]): Manifest[] {
  if (vmcp.spec.serviceAccount) return [];
  const name = n.rbacName(vmcp.metadata.name);
  return [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(name), automountServiceAccountToken: true },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(name),
      // Backends are embedded in the config, and status is written by the controller
      // alone, so the vMCP only ever reads its own VirtualMCPServer.
      rules: [
        {
          apiGroups: ["toolhive.stacklok.dev"],
          resources: ["virtualmcpservers"],
          resourceNames: [vmcp.metadata.name],
          verbs: ["get"],
        },
      ],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [{ kind: "ServiceAccount", name, namespace: meta(name).namespace }],
    },
  ];
}

function container(
  vmcp: VirtualMCPServer,
  settings: OperatorSettings,
  auth: OutgoingAuth,
  pod: PodInputs,
): Record<string, unknown> {
  const args = [
    "serve",
    `--config=${n.CONFIG_MOUNT_PATH}/${n.CONFIG_FILE}`,
    "--host=0.0.0.0",
    `--port=${n.VMCP_PORT}`,
  ];
  if (vmcp.spec.config?.operational?.logLevel === "debug") args.push("--debug");
  const secretEnv = [
    ...auth.env,
    ...pod.secretEnv,
    {
      name: "VMCP_SESSION_HMAC_SECRET",
      secretName: n.hmacSecretName(vmcp.metadata.name),
      secretKey: n.HMAC_SECRET_KEY,
    },
  ];
  const env = [
    ...secretEnv.map((e) => ({
      name: e.name,
      valueFrom: { secretKeyRef: { name: e.secretName, key: e.secretKey } },
    })),
    ...pod.env,
    { name: "HOME", value: "/tmp" },
    { name: "TOOLHIVE_RUNTIME", value: "kubernetes" },
    { name: "UNSTRUCTURED_LOGS", value: "false" },
    { name: "XDG_CONFIG_HOME", value: "/tmp" },
  ].sort((a, b) => a.name.localeCompare(b.name));
  const probe = (path: string, delay: number, period: number, timeout: number) => ({
    httpGet: { path, port: "http" },
    initialDelaySeconds: delay,
    periodSeconds: period,
    timeoutSeconds: timeout,
    failureThreshold: 3,
  });
  return {
    name: n.CONTAINER_NAME,
    image: settings.vmcpImage,
    imagePullPolicy: "IfNotPresent",
    args,
    env,
    ports: [{ name: "http", containerPort: n.VMCP_PORT, protocol: "TCP" }],
    volumeMounts: [
      { name: "vmcp-config", mountPath: n.CONFIG_MOUNT_PATH, readOnly: true },
      ...pod.mounts.map((m) => ({ name: m.volume, mountPath: m.mountPath, readOnly: true })),
    ],
    livenessProbe: probe("/health", 30, 10, 5),
    // vmcp listens only once it has parsed and validated the mounted config, so the first
    // answer of /readyz means "this config is loaded". Probed early and often: a rollout
    // waits for it before it stops an old pod (docs/rollouts.md).
    readinessProbe: probe("/readyz", 1, 2, 3),
    // Kept serving while endpoints and proxies drop the terminating pod; then SIGTERM, and
    // vmcp's own shutdown (up to 10 s) lets in-flight requests finish.
    lifecycle: { preStop: { sleep: { seconds: PRESTOP_SECONDS } } },
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "500m", memory: "512Mi" } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      capabilities: { drop: ["ALL"] },
    },
  };
}

function deployment(
  vmcp: VirtualMCPServer,
  settings: OperatorSettings,
  auth: OutgoingAuth,
  pod: PodInputs,
  configChecksum: string,
  meta: (name: string) => Manifest["metadata"],
): Manifest {
  const name = vmcp.metadata.name;
  const labels = n.baseLabels(name);
  const annotations: Record<string, string> = {};
  if (vmcp.spec.podTemplateSpec)
    annotations[n.ANNOTATION_PODTEMPLATESPEC_HASH] = sha256(canonicalJson(vmcp.spec.podTemplateSpec));
  if (vmcp.spec.imagePullSecrets?.length)
    annotations[n.ANNOTATION_IMAGEPULLSECRETS_HASH] = sha256(canonicalJson(vmcp.spec.imagePullSecrets));
  let template: unknown = {
    metadata: { labels, annotations: { [n.ANNOTATION_RUNCONFIG_CHECKSUM]: configChecksum } },
    spec: {
      serviceAccountName: vmcp.spec.serviceAccount ?? n.rbacName(name),
      terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
      imagePullSecrets: vmcp.spec.imagePullSecrets?.length ? vmcp.spec.imagePullSecrets : undefined,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [container(vmcp, settings, auth, pod)],
      volumes: [
        { name: "vmcp-config", configMap: { name: n.configMapName(name) } },
        ...pod.mounts.map((m) => ({
          name: m.volume,
          configMap: { name: m.configMap, items: [{ key: m.key, path: m.key }] },
        })),
      ],
    },
  };
  if (vmcp.spec.podTemplateSpec) template = strategicMerge(template, vmcp.spec.podTemplateSpec);
  // Our labels and the checksum are not the user's to override: the selector and rollouts depend on them.
  const t = template as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
  t.metadata.labels = { ...t.metadata.labels, ...labels };
  t.metadata.annotations = { ...t.metadata.annotations, [n.ANNOTATION_RUNCONFIG_CHECKSUM]: configChecksum };
  const m = meta(n.deploymentName(name));
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { ...m, labels, annotations: Object.keys(annotations).length ? annotations : undefined },
    spec: {
      // nil stays nil, so an HPA can own the replica count.
      replicas: vmcp.spec.replicas ?? undefined,
      selector: { matchLabels: labels },
      // A new pod is ready before an old one stops: the Service never goes without one.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template,
    },
  };
}

/**
 * With more than one replica, voluntary disruptions (a node drain) take one pod at a time.
 * One replica gets none: a budget that allows no eviction would block every drain.
 */
function podDisruptionBudget(
  vmcp: VirtualMCPServer,
  meta: (name: string) => Manifest["metadata"],
): Manifest[] {
  const name = vmcp.metadata.name;
  if ((vmcp.spec.replicas ?? 0) <= 1) return [];
  return [
    {
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { ...meta(n.pdbName(name)), labels: n.baseLabels(name) },
      spec: { maxUnavailable: 1, selector: { matchLabels: n.baseLabels(name) } },
    },
  ];
}

function service(vmcp: VirtualMCPServer, meta: (name: string) => Manifest["metadata"]): Manifest {
  const name = vmcp.metadata.name;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { ...meta(n.serviceName(name)), labels: n.baseLabels(name) },
    spec: {
      type: vmcp.spec.serviceType ?? "ClusterIP",
      sessionAffinity: vmcp.spec.sessionAffinity ?? "ClientIP",
      selector: n.baseLabels(name),
      ports: [{ name: "http", port: n.VMCP_PORT, targetPort: n.VMCP_PORT, protocol: "TCP" }],
    },
  };
}

/**
 * An exposed Service (LoadBalancer, NodePort) in front of anonymous incoming auth lets
 * anyone who reaches it call the backends with the credentials the vMCP injects.
 */
function exposureWarnings(vmcp: VmcpInputs["vmcp"], auth: OutgoingAuth): string[] {
  const type = vmcp.spec.serviceType;
  if (type !== "LoadBalancer" && type !== "NodePort") return [];
  if (vmcp.spec.incomingAuth.type !== "anonymous") return [];
  const withCredentials = [...auth.perBackend]
    .filter(([, a]) => a.authType !== "unauthenticated")
    .map(([b]) => b);
  if (!withCredentials.length) return [];
  return [
    `spec.serviceType ${type} with spec.incomingAuth.type anonymous: anyone who reaches the Service calls ${withCredentials.sort().join(", ")} with the credentials the vMCP injects; use oidc incoming auth or a ClusterIP Service`,
  ];
}

export function build(inputs: VmcpInputs, settings: OperatorSettings, opts: DiscoveryOptions = {}): Build {
  const { vmcp } = inputs;
  const name = vmcp.metadata.name;
  const namespace = vmcp.metadata.namespace ?? "default";
  const discovery = discoverBackends(inputs, opts);
  const auth = buildOutgoingAuth(inputs, discovery.backends);
  const { config, problems, warnings, pod } = buildVmcpConfig(inputs, discovery.backends, auth);
  warnings.push(...exposureWarnings(vmcp, auth));
  if (problems.length) return { discovery, auth, problems, warnings, desired: undefined };

  const owners = ownerReferences(vmcp);
  const meta = (objName: string): Manifest["metadata"] => ({
    name: objName,
    namespace,
    ownerReferences: owners,
  });
  // A canonical copy: no undefined members, nothing shared with the (cached) spec.
  const vmcpConfig = canonicalize(config) as unknown as VmcpConfig;
  const configYaml = canonicalYaml(vmcpConfig);
  const cmLabels = n.configMapLabels(name);
  const data = { [n.CONFIG_FILE]: configYaml };
  const configChecksum = sha256(canonicalJson({ data, labels: cmLabels }));
  const configMap: Manifest = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      ...meta(n.configMapName(name)),
      labels: cmLabels,
      annotations: { [n.ANNOTATION_CONTENT_CHECKSUM]: configChecksum },
    },
    data,
  };
  const vmcpDeployment = deployment(vmcp, settings, auth, pod, configChecksum, meta);
  if (vmcp.spec.podTemplateSpec) {
    const unpatched = { ...vmcp, spec: { ...vmcp.spec, podTemplateSpec: undefined } };
    const templateOf = (d: Manifest) => (d as unknown as { spec: { template: unknown } }).spec.template;
    const violations = podTemplateViolations(
      templateOf(deployment(unpatched, settings, auth, pod, configChecksum, meta)),
      templateOf(vmcpDeployment),
      n.CONTAINER_NAME,
      settings.podTemplatePolicy ?? "restricted",
    );
    if (violations.length) {
      const policyProblems = violations.map((v): RefProblem => ({
        condition: "PodTemplateValidated",
        reason: "PodTemplatePolicyViolated",
        message: `${v.path}: ${v.message}`,
      }));
      return { discovery, auth, problems: policyProblems, warnings, desired: undefined };
    }
  }
  const objects = [
    ...rbac(vmcp, meta),
    configMap,
    vmcpDeployment,
    service(vmcp, meta),
    ...podDisruptionBudget(vmcp, meta),
  ].map((o) => JSON.parse(canonicalJson(o)) as Manifest);
  const hmacSecret = { name: n.hmacSecretName(name), key: n.HMAC_SECRET_KEY };
  const hash = sha256(canonicalJson({ objects, hmacSecret }));
  return {
    discovery,
    auth,
    problems,
    warnings,
    desired: {
      namespace,
      name,
      objects,
      config: vmcpConfig,
      configYaml,
      configChecksum,
      hmacSecret,
      url: n.serviceUrl(name, namespace),
      hash,
    },
  };
}
