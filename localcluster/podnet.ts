// Pod networking of the process kubelet: one Linux bridge per kubelet in the root network
// namespace holding the gateway address x.y.z.1/24, and per pod a network namespace (held
// by the pod's pause process) with a veth whose pod end is eth0 = x.y.z.N/24. Pods get no
// default route: they reach their own loopback, the other pods and the gateway (where the
// host's test backends listen), nothing else. A pod's netns and veth vanish with its pause
// process, except when the kernel keeps the netns a while (orphaned sockets): so the veth is
// deleted with the pod, and the bridge and every veth of it by stop(), the exit hooks and
// the watchdog.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The /16 the process kubelets take their /24s from (kwok's fake pod IPs are in 10.244/16). */
export const PROCESS_POD_RANGE = "10.245.0.0/16";

export interface PodSubnet {
  /** e.g. 10.245.17 */
  prefix: string;
  /** e.g. 10.245.17.1: the bridge's address, where pods reach the host. */
  gateway: string;
  cidr: string;
}

/** The third octets of 10.245.x.0/24 already routed on this machine (another plane's bridge). */
export function usedOctets(routeTable: string): Set<number> {
  const used = new Set<number>();
  for (const m of routeTable.matchAll(/^10\.245\.(\d+)\.\d+\/(\d+)/gm)) used.add(Number(m[1]));
  return used;
}

/** A /24 of 10.245.0.0/16 that no route on this machine uses yet (2..254, random start). */
export function pickSubnet(routeTable: string, random = Math.random): PodSubnet {
  const used = usedOctets(routeTable);
  const start = 2 + Math.floor(random() * 253);
  for (let i = 0; i < 253; i++) {
    const octet = 2 + ((start - 2 + i) % 253);
    if (!used.has(octet)) {
      const prefix = `10.245.${octet}`;
      return { prefix, gateway: `${prefix}.1`, cidr: `${prefix}.0/24` };
    }
  }
  throw new Error(`no free /24 left in ${PROCESS_POD_RANGE}`);
}

export interface Bridge {
  /** vmcpb<id> */
  name: string;
  /** 6 hex digits; the pods' host-side veths are vmcpv<id><nn>. */
  id: string;
  subnet: PodSubnet;
}

/** Extended regex of every link of the bridge `id`: the bridge and its veths. */
export const linksPattern = (id: string): string => `vmcp[bv]${id}`;

/** Creates the kubelet's bridge (name vmcpb + 6 hex) with the gateway address; retries a subnet clash. */
export async function createBridge(): Promise<Bridge> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const { stdout } = await run("ip", ["-4", "route", "show"]);
    const subnet = pickSubnet(stdout);
    const id = randomBytes(3).toString("hex");
    const name = `vmcpb${id}`;
    try {
      await run("ip", ["link", "add", name, "type", "bridge"]);
    } catch {
      continue;
    }
    try {
      await run("ip", ["addr", "add", `${subnet.gateway}/24`, "dev", name]);
      await run("ip", ["link", "set", name, "up"]);
      return { name, id, subnet };
    } catch (err) {
      deleteLinkSync(name);
      if (attempt === 4) throw err;
    }
  }
  throw new Error("could not create the pod bridge");
}

export function deleteLinkSync(name: string): void {
  try {
    execFileSync("ip", ["link", "del", name], { stdio: "ignore" });
  } catch {
    // already gone
  }
}

/**
 * Moves one end of a new veth into the netns of `pid` as eth0 with `ip`/24; the other,
 * vmcpv<bridge id><last octet in hex>, joins the bridge. Returns the host end's name.
 */
export async function attachPod(bridge: Bridge, pid: number, ip: string): Promise<string> {
  const host = `vmcpv${bridge.id}${Number(ip.split(".")[3]).toString(16).padStart(2, "0")}`;
  deleteLinkSync(host); // a previous pod's, if its netns is still being torn down
  await run("ip", [
    "link",
    "add",
    host,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    `/proc/${pid}/ns/net`,
  ]);
  await run("ip", ["link", "set", host, "master", bridge.name, "up"]);
  const inPod = (...args: string[]) => run("nsenter", ["-t", String(pid), "--net", "--", "ip", ...args]);
  await inPod("link", "set", "lo", "up");
  await inPod("addr", "add", `${ip}/24`, "dev", "eth0");
  await inPod("link", "set", "eth0", "up");
  return host;
}
