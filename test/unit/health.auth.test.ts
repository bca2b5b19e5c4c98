import assert from "node:assert/strict";
import { authConfigured, probeAuthFromStrategy, scrub, secretValues, WITHHELD } from "../../health/auth.js";

const env = [
  { name: "TOOLHIVE_HEADER_VALUE_GH", secretName: "gh", secretKey: "token" },
  { name: "TOOLHIVE_TOKEN_EXCHANGE_SECRET_IDP", secretName: "idp", secretKey: "secret" },
];
const secrets: Record<string, string> = { "gh/token": "ghp_value", "idp/secret": "idp_value" };
const read = (name: string, key: string): string | undefined => secrets[`${name}/${key}`];

describe("health auth: runtime strategy → what the probe sends", () => {
  it("no strategy or unauthenticated: nothing, and not 'configured'", () => {
    assert.deepEqual(probeAuthFromStrategy(undefined, env, read), { type: "none" });
    const none = probeAuthFromStrategy({ type: "unauthenticated" }, env, read);
    assert.equal(authConfigured(none), false);
  });

  it("header_injection reads the Secret behind headerValueEnv", () => {
    const a = probeAuthFromStrategy(
      { type: "header_injection", headerInjection: { headerName: "X-Token", headerValueEnv: env[0]!.name } },
      env,
      read,
    );
    assert.deepEqual(a, { type: "header", headerName: "X-Token", value: "ghp_value" });
  });

  it("token_exchange carries the client secret", () => {
    const a = probeAuthFromStrategy(
      {
        type: "token_exchange",
        tokenExchange: {
          tokenUrl: "https://idp/token",
          clientId: "c",
          clientSecretEnv: env[1]!.name,
          audience: "b",
        },
      },
      env,
      read,
    );
    assert.equal(a.type, "token_exchange");
    assert.equal(a.type === "token_exchange" && a.clientSecret, "idp_value");
  });

  it("a missing Secret, or per-user strategies, are configured-but-unresolvable (never unauthenticated-by-omission)", () => {
    const missing = probeAuthFromStrategy(
      { type: "header_injection", headerInjection: { headerName: "X", headerValueEnv: "NOPE" } },
      env,
      read,
    );
    assert.equal(missing.type, "unresolvable");
    assert.ok(authConfigured(missing));
    const upstream = probeAuthFromStrategy(
      { type: "upstream_inject", upstreamInject: { providerName: "g" } },
      env,
      read,
    );
    assert.equal(upstream.type, "unresolvable");
    assert.match(upstream.type === "unresolvable" ? upstream.reason : "", /per user/);
  });

  it("scrub removes secret values from text", () => {
    const auth = { type: "bearer" as const, token: "abcd1234" };
    assert.equal(scrub("got abcd1234 back: abcd1234", secretValues(auth)), "got [redacted] back: [redacted]");
  });

  it("scrub: a text holding a short value (or its encoding) is withheld whole, others are left", () => {
    const auth = { type: "header" as const, headerName: "X-Api-Key", value: "k9?" };
    assert.deepEqual(secretValues(auth), ["k9?"], "short values are kept for scrubbing");
    assert.equal(scrub("backend said k9? twice", secretValues(auth)), WITHHELD);
    assert.equal(scrub("echo k9%3F", secretValues(auth)), WITHHELD, "URL-encoded");
    assert.equal(scrub(`b64 ${Buffer.from("k9?").toString("base64")}`, secretValues(auth)), WITHHELD);
    assert.equal(scrub("3 tools (12 ms)", secretValues(auth)), "3 tools (12 ms)");
  });

  it("scrub removes the encoded forms too: URL/form-encoded, base64, base64url, the Basic credential", () => {
    const secret = "s3cr3t/with+sp ace?";
    const auth = {
      type: "token_exchange" as const,
      tokenUrl: "https://idp.example/token",
      clientId: "client id",
      clientSecret: secret,
    };
    const basic = Buffer.from(`client+id:${encodeURIComponent(secret).replace(/%20/g, "+")}`).toString(
      "base64",
    );
    const text = [
      `raw ${secret}`,
      `url ${encodeURIComponent(secret)}`,
      `b64 ${Buffer.from(secret).toString("base64")}`,
      `b64url ${Buffer.from(secret).toString("base64url")}`,
      `basic Basic ${basic}`,
    ].join("\n");
    const out = scrub(text, secretValues(auth));
    assert.equal(
      out,
      [
        "raw [redacted]",
        "url [redacted]",
        "b64 [redacted]",
        "b64url [redacted]",
        "basic Basic [redacted]",
      ].join("\n"),
    );
  });
});
