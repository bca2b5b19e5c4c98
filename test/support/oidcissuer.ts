// A test-local OpenID Connect issuer on 127.0.0.1: it serves the discovery document
// (/.well-known/openid-configuration) and the JWKS, and signs RS256 access tokens with a
// key generated per run. Nothing here is a mock of the validator: ToolHive's vmcp
// fetches these documents over HTTP and checks the signatures itself.
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface TokenOptions {
  /** Sign with a key that is not in the JWKS (same kid), to prove signatures are checked. */
  foreignKey?: boolean;
  /** Lifetime in seconds (negative: already expired). Default 300. */
  expiresIn?: number;
}

export interface TestIssuer {
  /** The issuer URL (also the `iss` claim), http://127.0.0.1:<port>. */
  url: string;
  /** Requests served, by path. */
  hits: Record<string, number>;
  /** A signed access token for `aud`, with `claims` added (sub defaults to "alice"). */
  token(aud: string, claims?: Record<string, unknown>, opts?: TokenOptions): string;
  /** Whether this issuer signed `token` (what a token endpoint trusting it checks). */
  issued(token: string): boolean;
  stop(): Promise<void>;
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

function jwt(header: object, payload: object, key: KeyObject): string {
  const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${body}.${sign("sha256", Buffer.from(body), key).toString("base64url")}`;
}

/** `host`: where it listens (default 127.0.0.1; pods reach the host at the kubelet's gateway). */
export async function startIssuer(opts: { host?: string } = {}): Promise<TestIssuer> {
  const host = opts.host ?? "127.0.0.1";
  const signed = new Set<string>();
  const kid = randomUUID();
  const rsa = () => generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keys = rsa();
  const foreign = rsa();
  const hits: Record<string, number> = {};
  let url = "";

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    hits[path] = (hits[path] ?? 0) + 1;
    const json = (body: unknown) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.method !== "GET") return void res.writeHead(405).end();
    if (path === "/.well-known/openid-configuration")
      return json({
        issuer: url,
        jwks_uri: `${url}/jwks`,
        authorization_endpoint: `${url}/authorize`,
        token_endpoint: `${url}/token`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
      });
    if (path === "/jwks")
      return json({ keys: [{ ...keys.publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] });
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  url = `http://${host}:${(server.address() as AddressInfo).port}`;

  return {
    url,
    hits,
    token(aud, claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const payload = {
        iss: url,
        aud,
        sub: "alice",
        iat: now,
        nbf: now - 5,
        exp: now + (opts.expiresIn ?? 300),
        ...claims,
      };
      const t = jwt(
        { alg: "RS256", typ: "JWT", kid },
        payload,
        (opts.foreignKey ? foreign : keys).privateKey,
      );
      if (!opts.foreignKey) signed.add(t);
      return t;
    },
    issued: (token) => signed.has(token),
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
