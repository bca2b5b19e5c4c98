// Command lines of each component, as pure functions of the plane's layout so they can be
// read (and unit-tested) in one place. Every listener is on 127.0.0.1.

export interface Layout {
  dir: string;
  etcdDataDir: string;
  certDir: string;
  tokenFile: string;
  serviceAccountKeyFile: string;
  adminKubeconfig: string;
  etcdClientPort: number;
  etcdPeerPort: number;
  apiserverPort: number;
}

export const SERVICE_CIDR = "10.96.0.0/24";
export const POD_CIDR = "10.244.0.1/16";
export const FAKE_NODE_IP = "10.240.0.1";

/** The self-generated serving cert (plus its CA) the apiserver writes into --cert-dir. */
export function servingCertFile(layout: Layout): string {
  return `${layout.certDir}/apiserver.crt`;
}

export function etcdArgs(l: Layout): string[] {
  const client = `http://127.0.0.1:${l.etcdClientPort}`;
  const peer = `http://127.0.0.1:${l.etcdPeerPort}`;
  return [
    "--name=vmcp-local",
    `--data-dir=${l.etcdDataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=vmcp-local=${peer}`,
    // Test data is disposable; fsync dominates etcd latency on slow disks.
    "--unsafe-no-fsync",
    "--log-level=warn",
  ];
}

export function apiserverArgs(l: Layout, opts: { serviceAccountAdmission: boolean }): string[] {
  const args = [
    `--etcd-servers=http://127.0.0.1:${l.etcdClientPort}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${l.apiserverPort}`,
    // No --tls-cert-file: the apiserver self-signs a serving cert for 127.0.0.1/localhost here.
    `--cert-dir=${l.certDir}`,
    `--token-auth-file=${l.tokenFile}`,
    "--anonymous-auth=false",
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${l.serviceAccountKeyFile}`,
    `--service-account-signing-key-file=${l.serviceAccountKeyFile}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--allow-privileged=true",
    "--profiling=false",
    // The `kubernetes` Service's Endpoints may not point at loopback (validation rejects
    // 127.0.0.1 and the reconciler would log that every 10 s); in-cluster clients don't exist here.
    "--endpoint-reconciler-type=none",
  ];
  // Without kube-controller-manager nobody creates the `default` ServiceAccount, and the
  // ServiceAccount admission plugin would then reject every Pod.
  if (!opts.serviceAccountAdmission) args.push("--disable-admission-plugins=ServiceAccount");
  return args;
}

export function controllerManagerArgs(l: Layout): string[] {
  return [
    `--kubeconfig=${l.adminKubeconfig}`,
    "--leader-elect=false",
    // 0 = serve no health/metrics endpoint: one port less to allocate, nothing reads it.
    "--secure-port=0",
    `--service-account-private-key-file=${l.serviceAccountKeyFile}`,
    // Published as kube-root-ca.crt into every namespace.
    `--root-ca-file=${servingCertFile(l)}`,
    "--kube-api-qps=200",
    "--kube-api-burst=400",
  ];
}

export function schedulerArgs(l: Layout): string[] {
  return [`--kubeconfig=${l.adminKubeconfig}`, "--leader-elect=false", "--secure-port=0"];
}

export function kwokArgs(l: Layout, stageFiles: readonly string[]): string[] {
  return [
    `--kubeconfig=${l.adminKubeconfig}`,
    // Only nodes we mark as fake, so a real node (should one ever join) is left alone.
    "--manage-all-nodes=false",
    "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
    "--node-lease-duration-seconds=40",
    `--cidr=${POD_CIDR}`,
    `--node-ip=${FAKE_NODE_IP}`,
    ...stageFiles.map((f) => `--config=${f}`),
  ];
}
