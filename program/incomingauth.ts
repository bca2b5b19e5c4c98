// Incoming auth: how the vMCP validates its clients (OIDC) and what it lets them do
// (Cedar). Converted as ToolHive's operator does (pkg/vmcpconfig converter, OIDC
// resolver): an MCPOIDCConfig plus the server's own audience/scopes becomes
// incomingAuth.oidc; inline policies, a ConfigMap or an MCPAuthzConfig become
// incomingAuth.authz. A reference that cannot be resolved is a problem, never a config
// with less security than asked for. Secrets become env vars backed by secretKeyRefs.
import { parse as parseYaml } from "yaml";
import type { MCPAuthzConfig, MCPOIDCConfig } from "../api/index.js";
import type { VmcpInputs } from "./inputs.js";
import * as n from "./names.js";
import type { SecretEnv } from "./outgoingauth.js";

/** The env var ToolHive's vmcp reads the OIDC client secret from (clientSecretEnv). */
export const OIDC_CLIENT_SECRET_ENV = "VMCP_OIDC_CLIENT_SECRET";
export const DEFAULT_AUTHZ_KEY = "authz.json";
const OIDC_CA_MOUNT_BASE = "/config/certs";
const OIDC_CA_VOLUME_PREFIX = "oidc-ca-bundle-";
const DEFAULT_CA_KEY = "ca.crt";
const K8S_ISSUER = "https://kubernetes.default.svc";
const K8S_CA_BUNDLE = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const DEFAULT_UPSTREAM = "default";

export type IncomingCondition = "OIDCConfigRefValidated" | "AuthzConfigRefValidated";

export interface IncomingProblem {
  condition: IncomingCondition;
  reason: string;
  message: string;
}

/** A ConfigMap key mounted read-only into the vmcp container. */
export interface ConfigMapMount {
  volume: string;
  configMap: string;
  key: string;
  mountPath: string;
}

export interface IncomingAuthBuild {
  config: Record<string, unknown>;
  env: SecretEnv[];
  mounts: ConfigMapMount[];
  problems: IncomingProblem[];
  /** Settings that have no effect on the vmcp runtime (ToolHive drops them too). */
  warnings: string[];
}

type Oidc = Record<string, unknown>;
type Authz = { type: "cedar"; [k: string]: unknown };

const isTrue = (conds: { type: string; status: string }[] | undefined, type: string) =>
  conds?.find((c) => c.type === type)?.status;

function oidcFromConfig(inputs: VmcpInputs, cfg: MCPOIDCConfig, out: IncomingAuthBuild): Oidc | undefined {
  const vmcp = inputs.vmcp;
  const ref = vmcp.spec.incomingAuth.oidcConfigRef;
  if (!ref) return undefined;
  const name = cfg.metadata.name;
  const problem = (reason: string, message: string) => {
    out.problems.push({
      condition: "OIDCConfigRefValidated",
      reason,
      message: `MCPOIDCConfig ${name}: ${message}`,
    });
    return undefined;
  };
  if (isTrue(cfg.status?.conditions, "Valid") === "False")
    return problem("OIDCConfigRefNotValid", "its Valid condition is False");
  // ToolHive defaults the resource to an internal service URL; ours is the Service the
  // vMCP is actually reached at (ToolHive's omits the "vmcp-" prefix of that Service).
  const resource = ref.resourceUrl || n.serviceUrl(vmcp.metadata.name, vmcp.metadata.namespace ?? "default");
  const common = {
    audience: ref.audience,
    resource,
    scopes: ref.scopes?.length ? [...ref.scopes] : undefined,
  };
  const spec = cfg.spec;
  if (spec.type === "inline") {
    const inline = spec.inline;
    if (!inline) return problem("OIDCConfigRefNotValid", "spec.inline is required when type is inline");
    let caBundlePath: string | undefined;
    if (inline.caBundleRef) {
      const cm = inline.caBundleRef.configMapRef;
      if (!cm?.name)
        return problem("OIDCConfigRefNotValid", "spec.inline.caBundleRef.configMapRef.name is required");
      if (cm.name.length > 63 - OIDC_CA_VOLUME_PREFIX.length)
        return problem(
          "OIDCConfigRefNotValid",
          `spec.inline.caBundleRef.configMapRef.name "${cm.name}" is too long for a volume name (at most ${63 - OIDC_CA_VOLUME_PREFIX.length} characters)`,
        );
      const key = cm.key || DEFAULT_CA_KEY;
      const mountPath = `${OIDC_CA_MOUNT_BASE}/${cm.name}`;
      out.mounts.push({ volume: `${OIDC_CA_VOLUME_PREFIX}${cm.name}`, configMap: cm.name, key, mountPath });
      caBundlePath = `${mountPath}/${key}`;
    }
    if (inline.jwksAuthTokenPath)
      out.warnings.push(
        `MCPOIDCConfig ${name}: spec.inline.jwksAuthTokenPath has no effect on a VirtualMCPServer (vmcp has no such setting)`,
      );
    if (inline.clientSecretRef)
      out.env.push({
        name: OIDC_CLIENT_SECRET_ENV,
        secretName: inline.clientSecretRef.name,
        secretKey: inline.clientSecretRef.key,
      });
    return {
      issuer: inline.issuer,
      clientId: inline.clientId ?? "",
      clientSecretEnv: inline.clientSecretRef ? OIDC_CLIENT_SECRET_ENV : undefined,
      ...common,
      jwksUrl: inline.jwksUrl || undefined,
      introspectionUrl: inline.introspectionUrl || undefined,
      caBundlePath,
      insecureAllowHttp: inline.insecureAllowHTTP || undefined,
      jwksAllowPrivateIp: inline.jwksAllowPrivateIP || undefined,
      protectedResourceAllowPrivateIp: inline.protectedResourceAllowPrivateIP || undefined,
    };
  }
  const ksa: Partial<NonNullable<MCPOIDCConfig["spec"]["kubernetesServiceAccount"]>> =
    spec.kubernetesServiceAccount ?? {};
  for (const field of ["serviceAccount", "namespace"] as const)
    if (ksa[field])
      out.warnings.push(
        `MCPOIDCConfig ${name}: spec.kubernetesServiceAccount.${field} has no effect (ToolHive's resolver does not read it either)`,
      );
  // useClusterAuth (default true): trust the cluster CA, allow the API server's private IP.
  const clusterAuth = ksa.useClusterAuth ?? true;
  return {
    issuer: ksa.issuer || K8S_ISSUER,
    clientId: "",
    ...common,
    jwksUrl: ksa.jwksUrl || undefined,
    introspectionUrl: ksa.introspectionUrl || undefined,
    caBundlePath: clusterAuth ? K8S_CA_BUNDLE : undefined,
    jwksAllowPrivateIp: clusterAuth || undefined,
  };
}

/** The options of a cedarv1 authorizer section ({policies, entities_json, …}), or why not. */
function cedarOptions(section: unknown, where: string): Record<string, unknown> | string {
  if (typeof section !== "object" || section === null || Array.isArray(section))
    return `${where}: expected an object with the Cedar settings`;
  const c = section as Record<string, unknown>;
  const policies = c.policies;
  if (!Array.isArray(policies) || !policies.length || policies.some((p) => typeof p !== "string"))
    return `${where}.policies: expected at least one Cedar policy (a list of strings)`;
  const out: Record<string, unknown> = { policies: [...(policies as string[])] };
  const strings = {
    entities_json: "entitiesJson",
    group_claim_name: "groupClaimName",
    role_claim_name: "roleClaimName",
    group_entity_type: "groupEntityType",
  } as const;
  for (const [from, to] of Object.entries(strings)) {
    const v = c[from];
    if (v === undefined || v === "") continue;
    if (typeof v !== "string") return `${where}.${from}: expected a string`;
    out[to] = v;
  }
  const groupType = out.groupEntityType;
  if (typeof groupType === "string" && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(groupType))
    return `${where}.group_entity_type: "${groupType}" is not a Cedar identifier (namespaced types are not supported)`;
  return out;
}

/** Settings of a Cedar section the vmcp config has no field for. */
function droppedCedarFields(section: unknown, where: string, out: IncomingAuthBuild): void {
  const c = (section ?? {}) as Record<string, unknown>;
  const known = ["policies", "entities_json", "group_claim_name", "role_claim_name", "group_entity_type"];
  for (const f of Object.keys(c)
    .filter((k) => !known.includes(k))
    .sort())
    out.warnings.push(
      `${where}.${f} has no effect on a VirtualMCPServer (vmcp's authz config has no such setting)`,
    );
}

/** A ToolHive authz config file ({version, type: cedarv1, cedar: {...}}) from a ConfigMap. */
function authzFromConfigMap(inputs: VmcpInputs, out: IncomingAuthBuild): Record<string, unknown> | undefined {
  const spec = inputs.vmcp.spec.incomingAuth.authzConfig;
  const problem = (reason: string, message: string) => {
    out.problems.push({ condition: "AuthzConfigRefValidated", reason, message });
    return undefined;
  };
  const ref = spec?.configMap;
  if (!ref?.name)
    return problem("AuthzConfigRefNotFound", "incomingAuth.authzConfig.configMap.name is required");
  const cm = inputs.authzConfigMap;
  if (!cm) return problem("AuthzConfigRefNotFound", `authz ConfigMap ${ref.name} not found`);
  const key = ref.key || DEFAULT_AUTHZ_KEY;
  const where = `authz ConfigMap ${ref.name} key ${key}`;
  const raw = cm.data[key];
  if (raw === undefined)
    return problem("AuthzConfigRefNotValid", `authz ConfigMap ${ref.name} has no key ${key}`);
  if (!raw.trim()) return problem("AuthzConfigRefNotValid", `${where} is empty`);
  let doc: unknown;
  try {
    doc = parseYaml(raw); // YAML is a superset of JSON: one parser for both, as ToolHive tries both.
  } catch (e) {
    return problem(
      "AuthzConfigRefNotValid",
      `${where}: not YAML or JSON: ${(e as Error).message.split("\n")[0]}`,
    );
  }
  const file = (doc ?? {}) as Record<string, unknown>;
  if (typeof file.version !== "string" || !file.version)
    return problem("AuthzConfigRefNotValid", `${where}: version is required`);
  if (file.type !== "cedarv1")
    return problem(
      "AuthzConfigRefNotValid",
      `${where}: type ${JSON.stringify(file.type ?? null)} is not supported for a VirtualMCPServer; only cedarv1 is`,
    );
  const opts = cedarOptions(file.cedar, `${where}: cedar`);
  if (typeof opts === "string") return problem("AuthzConfigRefNotValid", opts);
  droppedCedarFields(file.cedar, `${where}: cedar`, out);
  return opts;
}

function authzFromRef(cfg: MCPAuthzConfig | undefined, refName: string, out: IncomingAuthBuild) {
  const problem = (reason: string, message: string) => {
    out.problems.push({
      condition: "AuthzConfigRefValidated",
      reason,
      message: `MCPAuthzConfig ${refName}: ${message}`,
    });
    return undefined;
  };
  if (!cfg) return problem("AuthzConfigRefNotFound", "not found");
  // ToolHive waits for its own controller to mark the object Valid; vmcp-operator checks
  // the spec itself, and still honours a Valid=False written by someone else.
  if (isTrue(cfg.status?.conditions, "Valid") === "False")
    return problem("AuthzConfigRefNotValid", "its Valid condition is False");
  if (cfg.spec.type !== "cedarv1")
    return problem(
      "AuthzConfigRefNotValid",
      `type "${cfg.spec.type}" is not supported for a VirtualMCPServer; only cedarv1 is`,
    );
  const opts = cedarOptions(cfg.spec.config, "spec.config");
  if (typeof opts === "string") return problem("AuthzConfigRefNotValid", opts);
  droppedCedarFields(cfg.spec.config, `MCPAuthzConfig ${refName}: spec.config`, out);
  return opts;
}

type Upstreams = { primaryUpstreamProvider?: unknown; upstreamProviders?: { name?: unknown }[] };

/** ToolHive's resolvePrimaryUpstreamProvider: explicit (checked against the auth server) or the first upstream. */
function primaryUpstream(inputs: VmcpInputs, authz: Authz, out: IncomingAuthBuild): boolean {
  const spec = inputs.vmcp.spec;
  const server = spec.authServerConfig as Upstreams | undefined;
  const names = Array.isArray(server?.upstreamProviders)
    ? server.upstreamProviders.map((u) => (typeof u?.name === "string" && u.name ? u.name : DEFAULT_UPSTREAM))
    : [];
  const explicit =
    (typeof server?.primaryUpstreamProvider === "string" && server.primaryUpstreamProvider) ||
    spec.incomingAuth.authzConfig?.inline?.primaryUpstreamProvider ||
    "";
  if (explicit) {
    const fail = (why: string) => {
      out.problems.push({
        condition: "AuthzConfigRefValidated",
        reason: "AuthzConfigRefNotValid",
        message: `authz primaryUpstreamProvider "${explicit}" ${why}`,
      });
      return false;
    };
    if (!server)
      return fail("set without an embedded auth server (spec.authServerConfig must be configured)");
    if (!names.includes(explicit))
      return fail("does not match any upstream declared on spec.authServerConfig.upstreamProviders");
    authz.primaryUpstreamProvider = explicit;
  } else if (names.length) {
    authz.primaryUpstreamProvider = names[0];
  }
  return true;
}

function buildAuthz(inputs: VmcpInputs, out: IncomingAuthBuild): Authz | undefined {
  const incoming = inputs.vmcp.spec.incomingAuth;
  const inline = incoming.authzConfig;
  let authz: Authz;
  if (inline && incoming.authzConfigRef) {
    out.problems.push({
      condition: "AuthzConfigRefValidated",
      reason: "AuthzConfigRefNotValid",
      message: "incomingAuth: authzConfig and authzConfigRef are mutually exclusive",
    });
    return undefined;
  }
  if (inline) {
    const opts = inline.type === "inline" ? inline.inline : authzFromConfigMap(inputs, out);
    if (!opts) {
      if (inline.type === "inline")
        out.problems.push({
          condition: "AuthzConfigRefValidated",
          reason: "AuthzConfigRefNotValid",
          message: "incomingAuth.authzConfig.inline is required when type is inline",
        });
      return undefined;
    }
    authz =
      inline.type === "inline"
        ? { type: "cedar", policies: [...(opts.policies as string[])], entitiesJson: opts.entitiesJson }
        : { type: "cedar", ...opts };
    // The VirtualMCPServer's own claim settings win over the ConfigMap's.
    if (inline.groupClaimName) authz.groupClaimName = inline.groupClaimName;
    if (inline.roleClaimName) authz.roleClaimName = inline.roleClaimName;
    if (inline.groupEntityType) authz.groupEntityType = inline.groupEntityType;
  } else if (incoming.authzConfigRef) {
    const opts = authzFromRef(inputs.authzConfig, incoming.authzConfigRef.name, out);
    if (!opts) return undefined;
    authz = { type: "cedar", ...opts };
  } else {
    return undefined;
  }
  return primaryUpstream(inputs, authz, out) ? authz : undefined;
}

export function buildIncomingAuth(inputs: VmcpInputs): IncomingAuthBuild {
  const spec = inputs.vmcp.spec.incomingAuth;
  const out: IncomingAuthBuild = {
    config: { type: spec.type },
    env: [],
    mounts: [],
    problems: [],
    warnings: [],
  };
  if (spec.oidcConfigRef) {
    if (!inputs.oidcConfig)
      out.problems.push({
        condition: "OIDCConfigRefValidated",
        reason: "OIDCConfigRefNotFound",
        message: `MCPOIDCConfig ${spec.oidcConfigRef.name} not found`,
      });
    else out.config.oidc = oidcFromConfig(inputs, inputs.oidcConfig, out);
  } else if (spec.type === "oidc") {
    out.problems.push({
      condition: "OIDCConfigRefValidated",
      reason: "OIDCConfigRefNotFound",
      message: "incomingAuth.oidcConfigRef is required when type is oidc",
    });
  }
  out.config.authz = buildAuthz(inputs, out);
  return out;
}
