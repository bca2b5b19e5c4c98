// Where the controller's probes may send requests (and so credentials). The controller
// sits in a privileged network position: an MCPServerEntry's author picks its remoteUrl,
// and the probe would carry a referenced Secret there. Link-local and cloud-metadata
// addresses are never probed; loopback and the API server only when allowed (tests and the
// local demo probe servers on 127.0.0.1). Checked on the resolved addresses: a name that
// resolves to 169.254.169.254 is as bad as the literal.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

export interface EgressPolicy {
  /** Probe loopback addresses (127.0.0.0/8, ::1) — off in a cluster. */
  allowLoopback: boolean;
  /** The API server's URL (from the kubeconfig): never probed, by name or by address + port. */
  apiServer?: string;
}

/** The in-cluster names of the API server's Service. */
const API_SERVER_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];

export const STRICT_EGRESS: EgressPolicy = { allowLoopback: false };

export type AddressClass = "loopback" | "link-local" | "metadata" | "unspecified" | "other";

/** Cloud metadata endpoints outside the link-local range (AWS IPv6, Alibaba, Oracle). */
const METADATA = new Set(["fd00:ec2::254", "100.100.100.200", "192.0.0.192"]);

function v4(ip: string): number[] | undefined {
  const m = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(ip);
  return m ? m.slice(1).map(Number) : undefined;
}

export function addressClass(ip: string): AddressClass {
  const lower = ip.toLowerCase();
  if (METADATA.has(lower)) return "metadata";
  const a = v4(lower);
  if (a) {
    if (a[0] === 127) return "loopback";
    if (a[0] === 169 && a[1] === 254) return a[2] === 169 && a[3] === 254 ? "metadata" : "link-local";
    if (a.every((x) => x === 0)) return "unspecified";
    return "other";
  }
  if (lower === "::1") return "loopback";
  if (lower === "::") return "unspecified";
  if (/^fe[89ab][0-9a-f]:/.test(lower)) return "link-local";
  return "other";
}

function port(url: URL): string {
  return url.port || (url.protocol === "https:" ? "443" : "80");
}

/** Why a request to `url` (its host resolving to `addresses`) is refused, or undefined when allowed. */
export function egressRefusal(
  url: URL,
  addresses: readonly string[],
  policy: EgressPolicy,
): string | undefined {
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.$/, "");
  if (policy.apiServer !== undefined) {
    const api = new URL(policy.apiServer);
    const apiHost = api.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const sameName = API_SERVER_NAMES.some(
      (n) => host === n || (host.startsWith(`${n}.`) && host.endsWith(".cluster.local")),
    );
    const sameEndpoint = port(url) === port(api) && (host === apiHost || addresses.includes(apiHost));
    if (sameName || sameEndpoint) return `${host} is the Kubernetes API server: probes never go there`;
  }
  for (const ip of addresses) {
    const cls = addressClass(ip);
    if (cls === "metadata") return `${host} is a cloud metadata address (${ip}): never probed`;
    if (cls === "link-local") return `${host} is link-local (${ip}): never probed`;
    if ((cls === "loopback" || cls === "unspecified") && !policy.allowLoopback)
      return `${host} is a loopback address (${ip}): not probed unless the controller runs with --probe-allow-loopback`;
  }
  return undefined;
}

export type Resolver = (host: string) => Promise<string[]>;

export const resolveAll: Resolver = async (host) => {
  const bare = host.replace(/^\[|\]$/g, "");
  if (isIP(bare)) return [bare];
  return (await lookup(bare, { all: true })).map((a) => a.address);
};
