// Object names, labels and annotation keys, as ToolHive's operator spells them, so a
// user can switch controllers without renaming anything.
export const VMCP_PORT = 4483;
export const CONFIG_FILE = "config.yaml";
export const CONFIG_MOUNT_PATH = "/etc/vmcp-config";
export const CONTAINER_NAME = "vmcp";
export const DEFAULT_VMCP_IMAGE = "ghcr.io/stacklok/toolhive/vmcp:v0.44.0";

export const ANNOTATION_CONTENT_CHECKSUM = "toolhive.stacklok.dev/content-checksum";
export const ANNOTATION_RUNCONFIG_CHECKSUM = "toolhive.stacklok.dev/runconfig-checksum";
export const ANNOTATION_PODTEMPLATESPEC_HASH = "toolhive.stacklok.io/podtemplatespec-hash";
export const ANNOTATION_IMAGEPULLSECRETS_HASH = "toolhive.stacklok.io/imagepullsecrets-hash";
/** Our own: the hash of everything the stack declares, for the no-op fast path. */
export const ANNOTATION_DESIRED_HASH = "vmcp.stacklok.dev/desired-hash";
/**
 * Our own, on a VirtualMCPServer: "true" lets its first apply take over existing objects of
 * its derived names that are neither owned by it nor labelled for it.
 */
export const ANNOTATION_ADOPT = "vmcp.stacklok.dev/adopt";
/**
 * Our own, on a VirtualMCPServer, with `--preview-gate replacements`: the first 12 hex
 * digits of the desired hash whose disruptive change a person approves (the held
 * condition's message names them), so an approval never covers a later change.
 */
export const ANNOTATION_APPROVE_CHANGE = "vmcp.stacklok.dev/approve-change";
/** The controller's finalizer on each VirtualMCPServer it manages (its stack is deleted first). */
export const FINALIZER = "vmcp.stacklok.dev/stack";
/** The controller's field manager for status, finalizers and Events. */
export const FIELD_MANAGER = "vmcp-operator";

export const deploymentName = (vmcp: string): string => vmcp;
export const serviceName = (vmcp: string): string => `vmcp-${vmcp}`;
export const configMapName = (vmcp: string): string => `${vmcp}-vmcp-config`;
export const rbacName = (vmcp: string): string => `${vmcp}-vmcp`;
export const hmacSecretName = (vmcp: string): string => `${vmcp}-hmac-secret`;
export const pdbName = (vmcp: string): string => `${vmcp}-vmcp`;
export const HMAC_SECRET_KEY = "hmac-secret";

export function serviceUrl(vmcp: string, namespace: string): string {
  return `http://${serviceName(vmcp)}.${namespace}.svc.cluster.local:${VMCP_PORT}`;
}

/** Labels on the Deployment, its selector and its pod template. */
export function baseLabels(vmcp: string): Record<string, string> {
  return {
    app: "virtualmcpserver",
    "app.kubernetes.io/name": "virtualmcpserver",
    "app.kubernetes.io/instance": vmcp,
    toolhive: "true",
    "toolhive-name": vmcp,
  };
}

/** Whether an object's labels say it is (ToolHive's or our) object of VirtualMCPServer `vmcp`. */
export function labelledFor(vmcp: string, labels: Record<string, string> | undefined): boolean {
  if (!labels) return false;
  if (labels["toolhive.stacklok.io/virtual-mcp-server"] === vmcp) return true;
  return labels.app === "virtualmcpserver" && labels["app.kubernetes.io/instance"] === vmcp;
}

export function configMapLabels(vmcp: string): Record<string, string> {
  return {
    "toolhive.stacklok.io/component": "vmcp-config",
    "toolhive.stacklok.io/virtual-mcp-server": vmcp,
    "toolhive.stacklok.io/managed-by": "toolhive-operator",
  };
}

/** Env var names ToolHive derives from an MCPExternalAuthConfig's name. */
function envSuffix(configName: string): string {
  return configName.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
}
export const tokenExchangeSecretEnv = (cfg: string): string =>
  `TOOLHIVE_TOKEN_EXCHANGE_CLIENT_SECRET_${envSuffix(cfg)}`;
export const headerInjectionValueEnv = (cfg: string): string =>
  `TOOLHIVE_HEADER_INJECTION_VALUE_${envSuffix(cfg)}`;
