// Outgoing auth: what the vMCP sends to each backend. Built like ToolHive's operator:
// the default, then each backend's own spec.externalAuthConfigRef, then the inline
// overrides of spec.outgoingAuth.backends. Secrets become env var names backed by
// secretKeyRefs; their values never enter the config file.
import type { MCPExternalAuthConfig } from "../api/index.js";
import type { Backend } from "./discovery.js";
import type { VmcpInputs } from "./inputs.js";
import { headerInjectionValueEnv, tokenExchangeSecretEnv } from "./names.js";

/** A strategy in the vmcp runtime's config format (pkg/vmcp/auth/types). */
export interface BackendAuthStrategy {
  type: string;
  headerInjection?: { headerName: string; headerValueEnv?: string };
  tokenExchange?: {
    tokenUrl: string;
    clientId?: string;
    clientSecretEnv?: string;
    audience?: string;
    scopes?: string[];
    subjectTokenType?: string;
    subjectProviderName?: string;
  };
  upstreamInject?: { providerName: string };
  awsSts?: Record<string, unknown>;
}

export interface SecretEnv {
  name: string;
  secretName: string;
  secretKey: string;
}

export interface AuthProblem {
  /** "default", or the backend's name. */
  scope: string;
  authConfigRef: string;
  reason: string;
  message: string;
}

export interface OutgoingAuth {
  config: { source: string; default?: BackendAuthStrategy; backends: Record<string, BackendAuthStrategy> };
  env: SecretEnv[];
  /** Per routable backend: the auth config it uses and its strategy type. */
  perBackend: Map<string, { authConfigRef: string | undefined; authType: string }>;
  /** Backends left out because their auth could not be built (fail closed). */
  excluded: Set<string>;
  problems: AuthProblem[];
}

/**
 * Annotation of an MCPExternalAuthConfig restricting where its credential may be sent:
 * comma-separated host names, "*.example.com" for subdomains. A backend elsewhere is left
 * out (fail closed) and named in a condition: an MCPServerEntry's author cannot point
 * another team's credential at a host of their choosing.
 */
export const ALLOWED_HOSTS_ANNOTATION = "vmcp.stacklok.dev/allowed-hosts";

/** The hosts an auth config allows, or undefined when it does not restrict them. */
export function allowedHosts(cfg: MCPExternalAuthConfig): string[] | undefined {
  const raw = cfg.metadata.annotations?.[ALLOWED_HOSTS_ANNOTATION];
  if (raw === undefined) return undefined;
  return raw
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return undefined;
  }
}

/** Whether `host` matches one of `allowed` (exact, or "*.suffix" for any subdomain). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((p) => (p.startsWith("*.") ? host.endsWith(p.slice(1)) : host === p));
}

/**
 * Annotation of an MCPExternalAuthConfig ("true") allowing its token exchange over plain
 * http to a host other than loopback: by default the client secret and the subject token
 * must not cross the network in clear.
 */
export const ALLOW_HTTP_TOKEN_URL_ANNOTATION = "vmcp.stacklok.dev/allow-http-token-url";

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1)$/;

/** Why `cfg`'s token exchange may not use its token endpoint, if so. */
function tokenUrlProblem(cfg: MCPExternalAuthConfig): string | undefined {
  const url = cfg.spec.tokenExchange?.tokenUrl;
  if (!url?.toLowerCase().startsWith("http:")) return undefined;
  const host = hostOf(url);
  if (host !== undefined && LOOPBACK.test(host)) return undefined;
  if (cfg.metadata.annotations?.[ALLOW_HTTP_TOKEN_URL_ANNOTATION] === "true") return undefined;
  return `MCPExternalAuthConfig ${cfg.metadata.name}: tokenExchange.tokenUrl ${url} is plain http, which would send the client secret and the user's token in clear; use https, or set the annotation ${ALLOW_HTTP_TOKEN_URL_ANNOTATION}: "true" to accept that`;
}

/** Strategies that send on the client's own token, and what they do with it. */
const ON_CLIENT_TOKEN: Partial<Record<MCPExternalAuthConfig["spec"]["type"], string>> = {
  tokenExchange: "exchanges the client's token",
  awsSts: "trades the client's token for AWS credentials",
  upstreamInject: "injects the client's upstream token",
};

/**
 * A strategy on the client's token behind anonymous incoming auth: the anonymous identity
 * has no token, so ToolHive's vmcp fails every session's initialize to that backend and
 * leaves it out (its health checks still pass with client credentials, which is how the
 * gap would otherwise hide).
 */
function clientTokenProblem(
  cfg: MCPExternalAuthConfig,
  backend: Backend,
  incoming: string,
): string | undefined {
  const what = ON_CLIENT_TOKEN[cfg.spec.type];
  if (incoming !== "anonymous" || !what) return undefined;
  return `MCPExternalAuthConfig ${cfg.metadata.name} (${cfg.spec.type}) ${what}, but spec.incomingAuth.type is anonymous: clients carry no token, so ToolHive's vmcp would leave backend ${backend.name} out of every client session ("identity has no token"); use oidc incoming auth`;
}

/** Why `cfg`'s credential must not be used for `backend` at all (it is left out), if so. */
function refusalOf(
  cfg: MCPExternalAuthConfig,
  backend: Backend,
  incoming: string,
): { reason: string; message: string } | undefined {
  const tokenless = clientTokenProblem(cfg, backend, incoming);
  if (tokenless) return { reason: "AuthNeedsClientToken", message: tokenless };
  const insecure = tokenUrlProblem(cfg);
  if (insecure) return { reason: "AuthInsecureTokenUrl", message: insecure };
  const destination = destinationProblem(cfg, backend);
  if (destination) return { reason: "AuthHostNotAllowed", message: destination };
  return undefined;
}

/** Why `cfg`'s credential may not go to `backend` (its URL, or its token endpoint), if so. */
function destinationProblem(cfg: MCPExternalAuthConfig, backend: Backend): string | undefined {
  const allowed = allowedHosts(cfg);
  if (allowed === undefined) return undefined;
  const name = cfg.metadata.name;
  const list = allowed.length ? allowed.join(", ") : "no host";
  const targets = [backend.url, cfg.spec.tokenExchange?.tokenUrl].filter((u): u is string => !!u);
  for (const url of targets) {
    const host = hostOf(url);
    if (host === undefined || !hostAllowed(host, allowed))
      return `MCPExternalAuthConfig ${name} allows its credential only to ${list} (annotation ${ALLOWED_HOSTS_ANNOTATION}); backend ${backend.name} would send it to ${host ?? url}`;
  }
  return undefined;
}

const SUBJECT_TOKEN_TYPES: Record<string, string> = {
  access_token: "urn:ietf:params:oauth:token-type:access_token",
  id_token: "urn:ietf:params:oauth:token-type:id_token",
  jwt: "urn:ietf:params:oauth:token-type:jwt",
};

type Converted = { strategy: BackendAuthStrategy; env: SecretEnv[] } | { reason: string; message: string };

/** MCPExternalAuthConfig → runtime strategy. Pure; the referenced Secrets are not read. */
export function convertExternalAuth(cfg: MCPExternalAuthConfig): Converted {
  const name = cfg.metadata.name;
  const spec = cfg.spec;
  switch (spec.type) {
    case "unauthenticated":
      return { strategy: { type: "unauthenticated" }, env: [] };
    case "headerInjection": {
      const h = spec.headerInjection;
      if (!h)
        return {
          reason: "AuthInvalid",
          message: `MCPExternalAuthConfig ${name}: spec.headerInjection is missing`,
        };
      const env = h.valueSecretRef
        ? [
            {
              name: headerInjectionValueEnv(name),
              secretName: h.valueSecretRef.name,
              secretKey: h.valueSecretRef.key,
            },
          ]
        : [];
      return {
        strategy: {
          type: "header_injection",
          headerInjection: { headerName: h.headerName, headerValueEnv: env[0]?.name },
        },
        env,
      };
    }
    case "tokenExchange": {
      const t = spec.tokenExchange;
      if (!t)
        return {
          reason: "AuthInvalid",
          message: `MCPExternalAuthConfig ${name}: spec.tokenExchange is missing`,
        };
      const env = t.clientSecretRef
        ? [
            {
              name: tokenExchangeSecretEnv(name),
              secretName: t.clientSecretRef.name,
              secretKey: t.clientSecretRef.key,
            },
          ]
        : [];
      const subjectTokenType = t.subjectTokenType
        ? (SUBJECT_TOKEN_TYPES[t.subjectTokenType] ?? t.subjectTokenType)
        : undefined;
      return {
        strategy: {
          type: "token_exchange",
          tokenExchange: {
            tokenUrl: t.tokenUrl,
            clientId: t.clientId || undefined,
            clientSecretEnv: env[0]?.name,
            audience: t.audience || undefined,
            scopes: t.scopes?.length ? [...t.scopes] : undefined,
            subjectTokenType,
            subjectProviderName: t.subjectProviderName || undefined,
          },
        },
        env,
      };
    }
    case "upstreamInject": {
      const u = spec.upstreamInject;
      if (!u)
        return {
          reason: "AuthInvalid",
          message: `MCPExternalAuthConfig ${name}: spec.upstreamInject is missing`,
        };
      return {
        strategy: { type: "upstream_inject", upstreamInject: { providerName: u.providerName } },
        env: [],
      };
    }
    case "awsSts": {
      const a = spec.awsSts;
      if (!a)
        return { reason: "AuthInvalid", message: `MCPExternalAuthConfig ${name}: spec.awsSts is missing` };
      return { strategy: { type: "aws_sts", awsSts: { ...a } }, env: [] };
    }
    default:
      return {
        reason: "AuthTypeUnsupported",
        message: `MCPExternalAuthConfig ${name}: type "${spec.type}" cannot be used for a virtual MCP server's outgoing auth`,
      };
  }
}

export function buildOutgoingAuth(inputs: VmcpInputs, backends: readonly Backend[]): OutgoingAuth {
  const spec = inputs.vmcp.spec.outgoingAuth;
  const env = new Map<string, SecretEnv>();
  const problems: AuthProblem[] = [];
  const excluded = new Set<string>();
  const perBackend = new Map<string, { authConfigRef: string | undefined; authType: string }>();
  const strategies: Record<string, BackendAuthStrategy> = {};

  const resolve = (scope: string, ref: string): BackendAuthStrategy | undefined => {
    const cfg = inputs.authConfigs.get(ref);
    if (!cfg) {
      problems.push({
        scope,
        authConfigRef: ref,
        reason: "AuthConfigNotFound",
        message: `MCPExternalAuthConfig ${ref} not found`,
      });
      return undefined;
    }
    const converted = convertExternalAuth(cfg);
    if ("reason" in converted) {
      problems.push({ scope, authConfigRef: ref, ...converted });
      return undefined;
    }
    for (const e of converted.env) {
      // Env names are derived from config names (`gh.token` and `gh-token` give the same):
      // two different Secrets behind one name would silently share one credential.
      const taken = env.get(e.name);
      if (taken && (taken.secretName !== e.secretName || taken.secretKey !== e.secretKey)) {
        problems.push({
          scope,
          authConfigRef: ref,
          reason: "AuthEnvClash",
          message: `MCPExternalAuthConfig ${ref}: its credential would use env var ${e.name}, already taken by another config with Secret ${taken.secretName}/${taken.secretKey}; rename one of the configs`,
        });
        return undefined;
      }
      env.set(e.name, e);
    }
    return converted.strategy;
  };

  let defaultStrategy: BackendAuthStrategy | undefined;
  const defaultRef =
    spec?.default?.type === "externalAuthConfigRef" ? spec.default.externalAuthConfigRef?.name : undefined;
  if (defaultRef) defaultStrategy = resolve("default", defaultRef);

  for (const backend of backends) {
    const override = spec?.backends?.[backend.name];
    // An inline override of type "discovered" means: use the backend's own reference.
    const ref =
      override?.type === "externalAuthConfigRef"
        ? override.externalAuthConfigRef?.name
        : backend.authConfigRef;
    const appliedRef = ref ?? defaultRef;
    const cfg = appliedRef ? inputs.authConfigs.get(appliedRef) : undefined;
    const refusal = cfg && refusalOf(cfg, backend, inputs.vmcp.spec.incomingAuth.type);
    if (appliedRef && refusal) {
      problems.push({ scope: backend.name, authConfigRef: appliedRef, ...refusal });
      excluded.add(backend.name);
      continue;
    }
    if (!ref) {
      perBackend.set(backend.name, {
        authConfigRef: defaultRef,
        authType: defaultStrategy?.type ?? "unauthenticated",
      });
      continue;
    }
    const strategy = resolve(backend.name, ref);
    if (!strategy) {
      excluded.add(backend.name);
      continue;
    }
    strategies[backend.name] = strategy;
    perBackend.set(backend.name, { authConfigRef: ref, authType: strategy.type });
  }

  return {
    // "inline": the backends and their auth are resolved here and embedded. `discovered`
    // would make the vmcp runtime watch the cluster itself (and need in-cluster access).
    config: { source: "inline", default: defaultStrategy, backends: strategies },
    env: [...env.values()].sort((a, b) => a.name.localeCompare(b.name)),
    perBackend,
    excluded,
    problems,
  };
}
