// Token exchange for probes (RFC 8693), with the client credentials grant (RFC 6749
// §4.4) for the subject token when the controller has none of its own. Tokens are cached
// in memory until shortly before they expire, keyed by a hash of everything that goes
// into the request (so a rotated client secret gets a new token).
import { createHash } from "node:crypto";
import type { EgressPolicy, Resolver } from "./egress.js";
import { discard, exchange, readText } from "./http.js";

const isRedirect = (status: number): boolean => status >= 300 && status < 400 && status !== 304;

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

export interface TokenRequest {
  tokenUrl: string;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  audience?: string | undefined;
  scopes?: readonly string[] | undefined;
  subjectToken?: string | undefined;
  subjectTokenType?: string | undefined;
}

export class TokenError extends Error {
  constructor(
    message: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/** Where a token request may go: the probe's egress policy and its (memoized) resolver. */
export interface TokenContext {
  signal: AbortSignal;
  egress: EgressPolicy | undefined;
  resolve: Resolver;
}

/** " to <origin>" of a redirect's Location (never its path or query: they may carry tokens). */
function redirectTarget(from: URL, location: string | undefined): string {
  if (!location) return "";
  try {
    return ` to ${new URL(location, from).origin}`;
  } catch {
    return "";
  }
}

function basic(clientId: string, secret: string): string {
  // RFC 6749 §2.3.1: each part form-urlencoded, then base64.
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, "+");
  return "Basic " + Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString("base64");
}

async function post(
  url: URL,
  form: Record<string, string | undefined>,
  req: TokenRequest,
  ctx: TokenContext,
): Promise<{ token: string; expiresIn: number | undefined }> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v) body.set(k, v);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
  };
  if (req.clientId && req.clientSecret) headers.authorization = basic(req.clientId, req.clientSecret);
  else if (req.clientId) body.set("client_id", req.clientId);
  // Over the probe's HTTP client: checked against the egress policy and connected to the
  // checked addresses only. Never a redirect: it would resend the client secret and the
  // subject token (307/308 keep the body) to wherever the Location points, https → http included.
  const { egress, resolve, signal } = ctx;
  const reply = await exchange(
    { method: "POST", url, headers, body: body.toString() },
    { headers: {}, wire: {}, egress, resolve, signal, redirects: "none" },
    (res) => (isRedirect(res.statusCode ?? 0) ? discard(res) : readText(res)),
  );
  const { status } = reply;
  if (isRedirect(status))
    throw new TokenError(
      `token endpoint redirected (HTTP ${status}${redirectTarget(url, reply.headers.location)}); not followed: the request carries credentials`,
      status,
    );
  const text = reply.body ?? "";
  if (status < 200 || status >= 300) {
    // The error code is safe to show (RFC 6749 §5.2); the rest of the body is not echoed.
    let code = "";
    try {
      code = String((JSON.parse(text) as { error?: unknown }).error ?? "");
    } catch {
      /* not JSON */
    }
    throw new TokenError(`token endpoint answered HTTP ${status}${code ? ` (${code})` : ""}`, status);
  }
  let parsed: { access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new TokenError("token endpoint answered with something other than JSON");
  }
  if (typeof parsed.access_token !== "string" || !parsed.access_token)
    throw new TokenError("token endpoint answered without an access_token");
  const expiresIn = typeof parsed.expires_in === "number" ? parsed.expires_in : undefined;
  return { token: parsed.access_token, expiresIn };
}

export class TokenCache {
  private readonly entries = new Map<string, { token: string; expiresAt: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 1024,
    /** Refresh this long before expiry. */
    private readonly skewMs = 30_000,
    /** Lifetime assumed when the endpoint gives no expires_in. */
    private readonly defaultTtlMs = 300_000,
  ) {}

  private key(req: TokenRequest): string {
    return createHash("sha256")
      .update(
        JSON.stringify([
          req.tokenUrl,
          req.clientId ?? "",
          req.clientSecret ?? "",
          req.audience ?? "",
          [...(req.scopes ?? [])],
          req.subjectToken ?? "",
          req.subjectTokenType ?? "",
        ]),
      )
      .digest("hex");
  }

  /** An access token for the backend: cached, or exchanged now. */
  async get(req: TokenRequest, ctx: TokenContext): Promise<string> {
    const key = this.key(req);
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > this.now()) return hit.token;
    const scope = req.scopes?.length ? req.scopes.join(" ") : undefined;
    const url = new URL(req.tokenUrl);
    let subject = req.subjectToken;
    if (!subject) {
      const cc = await post(url, { grant_type: "client_credentials", scope }, req, ctx);
      subject = cc.token;
    }
    const ex = await post(
      url,
      {
        grant_type: TOKEN_EXCHANGE_GRANT,
        subject_token: subject,
        subject_token_type: req.subjectTokenType ?? ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        audience: req.audience,
        scope,
      },
      req,
      ctx,
    );
    const ttl = ex.expiresIn !== undefined ? ex.expiresIn * 1000 : this.defaultTtlMs;
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { token: ex.token, expiresAt: this.now() + Math.max(0, ttl - this.skewMs) });
    return ex.token;
  }

  clear(): void {
    this.entries.clear();
  }
}
