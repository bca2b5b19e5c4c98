// A real S3-compatible object store for a test: MinIO ($VMCP_MINIO_BINARY, built from its Go
// module by scripts/toolchain.sh minio), one drive in a temp dir, on a free loopback port,
// with random root credentials; stopped and removed by stop(). The test's own reads (list
// and get) are plain S3 REST calls signed with AWS Signature V4 here, so no S3 SDK is needed.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "../../localcluster/ports.js";
import { poll } from "./poll.js";

const REGION = "us-east-1";

export interface Minio {
  readonly endpoint: string;
  readonly bucket: string;
  readonly accessKey: string;
  readonly secretKey: string;
  /** An s3:// backend URL WITHOUT credentials: those come from env (AWS_ACCESS_KEY_ID, …). */
  readonly url: string;
  readonly env: Record<string, string>;
  /** Keys of the bucket (ListObjectsV2, every page). */
  keys(prefix?: string): Promise<string[]>;
  /** The object's bytes as UTF-8. */
  get(key: string): Promise<string>;
  stop(): Promise<void>;
}

const sha256 = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");
const hmac = (key: string | Buffer, s: string) => createHmac("sha256", key).update(s).digest();
/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const enc = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A SigV4-signed request to MinIO (path style); throws on a non-2xx answer. */
async function s3(
  opts: { endpoint: string; accessKey: string; secretKey: string },
  method: "GET" | "PUT",
  path: string,
  query: Record<string, string> = {},
): Promise<string> {
  const url = new URL(opts.endpoint);
  const now = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const day = now.slice(0, 8);
  const payload = sha256("");
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((k) => `${enc(k)}=${enc(query[k]!)}`)
    .join("&");
  const canonicalPath = path.split("/").map(enc).join("/");
  const headers = `host:${url.host}\nx-amz-content-sha256:${payload}\nx-amz-date:${now}\n`;
  const signed = "host;x-amz-content-sha256;x-amz-date";
  const request = [method, canonicalPath, canonicalQuery, headers, signed, payload].join("\n");
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", now, scope, sha256(request)].join("\n");
  let key: Buffer = hmac(`AWS4${opts.secretKey}`, day);
  for (const part of [REGION, "s3", "aws4_request"]) key = hmac(key, part);
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  const res = await fetch(`${opts.endpoint}${canonicalPath}${canonicalQuery ? `?${canonicalQuery}` : ""}`, {
    method,
    headers: {
      "x-amz-content-sha256": payload,
      "x-amz-date": now,
      authorization: `AWS4-HMAC-SHA256 Credential=${opts.accessKey}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
    },
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`S3 ${method} ${path}: ${res.status} ${body.slice(0, 500)}`);
  return body;
}

const xmlValues = (xml: string, tag: string): string[] =>
  [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, "g"))].map((m) =>
    m[1]!
      .replace(/&amp;/g, "&")
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&quot;/g, '"'),
  );

export async function startMinio(opts: { name: string }): Promise<Minio> {
  const binary = process.env.VMCP_MINIO_BINARY;
  if (!binary || !existsSync(binary))
    throw new Error(
      `no MinIO at VMCP_MINIO_BINARY=${binary ?? ""}: run scripts/toolchain.sh minio, then 'eval "$(bash scripts/toolchain.sh env)"'`,
    );
  const dir = mkdtempSync(join(tmpdir(), `vmcp-${opts.name}-minio-`));
  const [port, consolePort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKey = `vmcp${randomBytes(6).toString("hex")}`;
  const secretKey = randomBytes(24).toString("base64url");
  const bucket = "vmcp-state";
  const creds = { endpoint, accessKey, secretKey };
  const lines: string[] = [];
  const server: ChildProcess = spawn(
    binary,
    [
      "server",
      join(dir, "data"),
      "--address",
      `127.0.0.1:${port}`,
      "--console-address",
      `127.0.0.1:${consolePort}`,
      "--quiet",
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: dir,
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_BROWSER: "off",
        MINIO_UPDATE: "off",
      },
    },
  );
  const exited = new Promise<void>((resolve) => server.on("exit", () => resolve()));
  for (const s of [server.stdout, server.stderr]) s?.on("data", (c: Buffer) => lines.push(c.toString()));
  const stop = async (): Promise<void> => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill("SIGTERM");
      const killed = setTimeout(() => server.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killed);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await poll(
      `MinIO on ${endpoint}`,
      async () => {
        if (server.exitCode !== null) throw new Error(`minio exited: ${lines.join("").slice(-2000)}`);
        const res = await fetch(`${endpoint}/minio/health/ready`);
        return res.ok ? true : undefined;
      },
      60_000,
      200,
    );
    await s3(creds, "PUT", `/${bucket}`);
    return {
      endpoint,
      bucket,
      accessKey,
      secretKey,
      url: `s3://${bucket}?endpoint=${encodeURIComponent(endpoint)}&use_path_style=true&region=${REGION}`,
      env: { AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, AWS_REGION: REGION },
      async keys(prefix = "") {
        const out: string[] = [];
        let token: string | undefined;
        do {
          const xml = await s3(creds, "GET", `/${bucket}`, {
            "list-type": "2",
            prefix,
            ...(token ? { "continuation-token": token } : {}),
          });
          out.push(...xmlValues(xml, "Key"));
          token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
            ? xmlValues(xml, "NextContinuationToken")[0]
            : undefined;
        } while (token);
        return out.sort();
      },
      get: (key) => s3(creds, "GET", `/${bucket}/${key}`),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
