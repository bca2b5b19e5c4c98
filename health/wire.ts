// The pure rules under every request of a probe (./http.ts sends them): the record of what was
// seen on the wire (for classifying a failure), errors in our own words, the redirect rule
// and the egress check.
import { egressRefusal, type EgressPolicy, type Resolver } from "./egress.js";

/** An error whose message is ours (no backend text): safe for status. */
export class ProbeError extends Error {}

/** Thrown when a redirect or a destination is refused; classified from `Wire`. */
export class RedirectRefused extends ProbeError {}

/** What the probe saw on the wire, for classification. */
export interface Wire {
  authStatus?: number;
  errorStatus?: number;
  networkCode?: string;
  /** A redirect that was not followed: "HTTP 302 to https://other:443". */
  refusedRedirect?: string;
  /** A destination the egress policy refused: nothing was sent there. */
  refusedEgress?: string;
}

export function errCode(e: unknown): string | undefined {
  for (let cur: unknown = e, i = 0; cur && i < 5; i++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The addresses `url`'s host resolves to, checked against the policy: the only ones a
 * connection may then go to. Undefined without a policy (nothing checked, nothing pinned).
 * Throws (recording why in `wire`) when the policy refuses; nothing is sent then.
 */
export async function checkEgress(
  url: URL,
  wire: Wire,
  egress: EgressPolicy | undefined,
  resolve: Resolver,
): Promise<string[] | undefined> {
  if (!egress) return undefined;
  let addresses: string[];
  try {
    addresses = await resolve(url.hostname);
  } catch (e) {
    wire.networkCode ??= errCode(e);
    throw e;
  }
  const refusal = egressRefusal(url, addresses, egress);
  if (refusal === undefined) return addresses;
  wire.refusedEgress = refusal;
  throw new RedirectRefused(refusal);
}

/** Same-origin redirects followed per request; more is a loop. */
export const MAX_REDIRECTS = 5;

export type RedirectStep =
  { kind: "response" } | { kind: "follow"; url: URL } | { kind: "refuse"; reason: string };

/**
 * What to do with a response of a probe request. A redirect is followed only when it keeps
 * the origin (scheme, host and port) and the request as it is (307/308); anything else is
 * the probe's result, naming only the target's origin (a path or query may carry tokens).
 */
export function redirectStep(
  from: URL,
  method: string,
  status: number,
  location: string | null,
): RedirectStep {
  if (status < 300 || status >= 400 || status === 304) return { kind: "response" };
  let target: URL;
  try {
    target = new URL(location ?? "", from);
  } catch {
    return { kind: "refuse", reason: `HTTP ${status} with an invalid Location` };
  }
  if (!location) return { kind: "refuse", reason: `HTTP ${status} without a Location` };
  if (target.origin !== from.origin)
    return {
      kind: "refuse",
      reason: `HTTP ${status} to ${target.origin}: not followed, credentials never leave the backend's origin (${from.origin})`,
    };
  if (status !== 307 && status !== 308 && method !== "GET")
    return {
      kind: "refuse",
      reason: `HTTP ${status} for ${method} (would turn into a GET): point the backend URL at ${target.pathname}`,
    };
  return { kind: "follow", url: target };
}

/** The URL of a redirect to follow at hop `hop`; throws (recorded) when refused or one too many. */
export function followed(wire: Wire, step: Exclude<RedirectStep, { kind: "response" }>, hop: number): URL {
  if (step.kind === "follow" && hop < MAX_REDIRECTS) return step.url;
  wire.refusedRedirect = step.kind === "refuse" ? step.reason : `more than ${MAX_REDIRECTS} redirects`;
  throw new RedirectRefused(wire.refusedRedirect);
}

/** Records the status of the response a request ended with (redirects followed). */
export function recordStatus(wire: Wire, method: string, status: number): void {
  if (status === 401 || status === 403) wire.authStatus = status;
  // A DELETE's failure (the close) and a 405 (a method the server does not offer) are not the backend's.
  else if (status >= 400 && method !== "DELETE" && status !== 405) wire.errorStatus ??= status;
}
