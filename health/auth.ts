// What the probe sends to a backend: the backend's outgoing auth with secret VALUES
// already resolved (the controller reads the Secrets; this module never does I/O).
// Values live only in memory for the duration of a probe: they are never logged, never
// put in a result or a message (messages are additionally scrubbed of them).
import type { TokenRequest } from "./token.js";
import type { BackendAuthStrategy, SecretEnv } from "../program/outgoingauth.js";

export type ProbeAuth =
  /** The vMCP sends nothing to this backend. */
  | { type: "none" }
  /** header_injection: `headerName: value`. */
  | { type: "header"; headerName: string; value: string }
  /** A static bearer token: `Authorization: Bearer <token>`. */
  | { type: "bearer"; token: string }
  /**
   * token_exchange (RFC 8693). The probe has no user: the subject token is `subjectToken`
   * when the controller has one for itself, else one obtained with the client
   * credentials grant at the same tokenUrl. The exchanged token is sent as a bearer.
   */
  | ({ type: "token_exchange" } & TokenRequest)
  /**
   * Auth is configured but the probe cannot produce the credentials (per-user
   * upstream_inject, aws_sts, obo, xaa; or a Secret that could not be read). The probe
   * goes out without credentials; a 401/403 then means "reachable, needs credentials"
   * (unauthenticated), not "down".
   */
  | { type: "unresolvable"; authType: string; reason: string };

/** True when the vMCP sends credentials of some kind to this backend. */
export function authConfigured(auth: ProbeAuth): boolean {
  return auth.type !== "none";
}

/** The strategy name, for messages and status (`authType`). Never a value. */
export function authLabel(auth: ProbeAuth): string {
  switch (auth.type) {
    case "none":
      return "unauthenticated";
    case "header":
      return "header_injection";
    case "bearer":
      return "bearer_token";
    case "token_exchange":
      return "token_exchange";
    case "unresolvable":
      return auth.authType;
  }
}

/** Every secret value an auth carries (to scrub them out of error text). */
export function secretValues(auth: ProbeAuth): string[] {
  const out: string[] = [];
  const add = (v: string | undefined): void => {
    if (v) out.push(v);
  };
  switch (auth.type) {
    case "header":
      add(auth.value);
      break;
    case "bearer":
      add(auth.token);
      break;
    case "token_exchange":
      add(auth.clientSecret);
      add(auth.subjectToken);
      // The HTTP Basic credential the token client sends (RFC 6749 §2.3.1), as a whole.
      if (auth.clientId && auth.clientSecret)
        add(`${formEncode(auth.clientId)}:${formEncode(auth.clientSecret)}`);
      break;
  }
  return out;
}

const formEncode = (v: string): string => encodeURIComponent(v).replace(/%20/g, "+");

/** A secret as it may appear in text: raw, URL/form-encoded, base64 (standard or URL-safe). */
function encodings(secret: string): string[] {
  const b64 = Buffer.from(secret).toString("base64");
  const b64url = Buffer.from(secret).toString("base64url");
  return [secret, encodeURIComponent(secret), formEncode(secret), b64, b64.replace(/=+$/, ""), b64url];
}

/** Below this length a secret's form is not cut out of text (it would cut words apart). */
const MIN_SCRUB_LENGTH = 6;
/** What a text becomes when it holds a form of a short secret. */
export const WITHHELD = "[message withheld: it may contain a short credential]";

/**
 * Replaces every occurrence of a secret value, in any of its encodings, by `[redacted]`.
 * A short value (under 6 characters) cannot be cut out without mangling the rest, nor
 * found reliably: a text holding any form of one is withheld as a whole.
 */
export function scrub(text: string, secrets: readonly string[]): string {
  // Longest first, so a form that contains another is replaced whole.
  const forms = [...new Set(secrets.flatMap(encodings))].sort((a, b) => b.length - a.length);
  let out = text;
  for (const f of forms) {
    if (f.length < MIN_SCRUB_LENGTH) {
      if (out.includes(f)) return WITHHELD;
    } else out = out.split(f).join("[redacted]");
  }
  return out;
}

/** Reads one key of a Secret in the VirtualMCPServer's namespace; undefined when absent. */
export type SecretReader = (secretName: string, key: string) => string | undefined;

/**
 * A runtime strategy (program/outgoingauth.ts: `OutgoingAuth.config.backends[name]`, or
 * `.default` for backends without one) → what the probe sends. `env` is
 * `OutgoingAuth.env`: it maps the strategy's env var names to Secret keys.
 */
export function probeAuthFromStrategy(
  strategy: BackendAuthStrategy | undefined,
  env: readonly SecretEnv[],
  readSecret: SecretReader,
): ProbeAuth {
  if (!strategy || strategy.type === "unauthenticated") return { type: "none" };
  const fromEnv = (envName: string | undefined): { value?: string; problem?: string } => {
    if (!envName) return {};
    const ref = env.find((e) => e.name === envName);
    if (!ref) return { problem: `no Secret reference for ${envName}` };
    const value = readSecret(ref.secretName, ref.secretKey);
    return value === undefined
      ? { problem: `Secret ${ref.secretName} key ${ref.secretKey} not found` }
      : { value };
  };
  switch (strategy.type) {
    case "header_injection": {
      const h = strategy.headerInjection;
      if (!h) return { type: "unresolvable", authType: strategy.type, reason: "headerInjection is missing" };
      const literal = (h as { headerValue?: string }).headerValue;
      const got = literal !== undefined ? { value: literal } : fromEnv(h.headerValueEnv);
      if (got.value === undefined)
        return { type: "unresolvable", authType: strategy.type, reason: got.problem ?? "no header value" };
      return { type: "header", headerName: h.headerName, value: got.value };
    }
    case "token_exchange": {
      const t = strategy.tokenExchange;
      if (!t) return { type: "unresolvable", authType: strategy.type, reason: "tokenExchange is missing" };
      const got = fromEnv(t.clientSecretEnv);
      if (got.problem) return { type: "unresolvable", authType: strategy.type, reason: got.problem };
      return {
        type: "token_exchange",
        tokenUrl: t.tokenUrl,
        clientId: t.clientId,
        clientSecret: got.value,
        audience: t.audience,
        scopes: t.scopes,
      };
    }
    default:
      return {
        type: "unresolvable",
        authType: strategy.type,
        reason: `${strategy.type} credentials are per user; a health probe has none`,
      };
  }
}
