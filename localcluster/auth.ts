// Credentials for a throwaway cluster, made without openssl: static bearer tokens
// (--token-auth-file) instead of client certificates, and an RSA key from Node's crypto
// for signing/verifying service-account tokens.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface LocalUser {
  name: string;
  token: string;
  groups: readonly string[];
}

export interface AuthFiles {
  /** Cluster admin (group system:masters). */
  admin: LocalUser;
  /** Group-less user the controller's RBAC manifests are tested with; can do nothing until bound. */
  controller: LocalUser;
  tokenFile: string;
  /** PEM PKCS#8 RSA private key; the apiserver accepts it for both SA key flags. */
  serviceAccountKeyFile: string;
}

export const ADMIN_USER = "admin";
export const CONTROLLER_USER = "vmcp-controller";

function newToken(): string {
  return randomBytes(24).toString("hex");
}

/** One tokens.csv line: token,user,uid[,"group1,group2"]. */
export function tokenLine(user: LocalUser): string {
  const base = `${user.token},${user.name},${user.name}`;
  return user.groups.length > 0 ? `${base},"${user.groups.join(",")}"` : base;
}

export function writeAuthFiles(dir: string): AuthFiles {
  const admin: LocalUser = { name: ADMIN_USER, token: newToken(), groups: ["system:masters"] };
  const controller: LocalUser = { name: CONTROLLER_USER, token: newToken(), groups: [] };
  const tokenFile = join(dir, "tokens.csv");
  writeFileSync(tokenFile, `${tokenLine(admin)}\n${tokenLine(controller)}\n`, { mode: 0o600 });
  const { privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const serviceAccountKeyFile = join(dir, "sa.key");
  writeFileSync(serviceAccountKeyFile, privateKey, { mode: 0o600 });
  return { admin, controller, tokenFile, serviceAccountKeyFile };
}
