// Kubeconfig rendering: one cluster, one token user, one context — what client-node,
// kubectl and the Pulumi Kubernetes provider all read.
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import type { LocalUser } from "./auth.js";

export interface KubeconfigInput {
  server: string;
  user: LocalUser;
  /** PEM bundle that verifies the serving certificate; omitted ⇒ insecure-skip-tls-verify. */
  caPem?: string;
  clusterName?: string;
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const cluster = input.clusterName ?? "vmcp-local";
  const context = `${input.user.name}@${cluster}`;
  const tls =
    input.caPem !== undefined
      ? { "certificate-authority-data": Buffer.from(input.caPem).toString("base64") }
      : { "insecure-skip-tls-verify": true };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server: input.server, ...tls } }],
    users: [{ name: input.user.name, user: { token: input.user.token } }],
    contexts: [{ name: context, context: { cluster, user: input.user.name } }],
    "current-context": context,
    preferences: {},
  });
}

export function writeKubeconfig(path: string, input: KubeconfigInput): string {
  const text = renderKubeconfig(input);
  writeFileSync(path, text, { mode: 0o600 });
  return text;
}
