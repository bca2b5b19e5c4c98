// Backend discovery as a pure function: the group's members, with the URL and
// transport a vMCP uses to reach them. Members that cannot be reached yet are
// returned with the reason, never dropped silently.
import type { Member, VmcpInputs } from "./inputs.js";

export type Transport = "sse" | "streamable-http";

export interface Backend {
  name: string;
  kind: Member["kind"];
  url: string;
  transport: Transport;
  /** spec.externalAuthConfigRef.name of the member, if any. */
  authConfigRef: string | undefined;
}

export interface UnresolvedMember {
  name: string;
  kind: Member["kind"];
  reason: string;
}

export interface Discovery {
  backends: Backend[];
  unresolved: UnresolvedMember[];
}

export interface DiscoveryOptions {
  /**
   * Offline render has no status: predict an MCPServer's URL from ToolHive's naming
   * (`http://mcp-<name>-proxy.<ns>.svc.cluster.local:<proxyPort>/mcp`, or `/sse#<name>`) instead of
   * waiting for status.url.
   */
  predictUrls?: boolean;
}

function transportOf(member: Member): Transport | undefined {
  if (member.kind === "MCPServer") {
    const spec = member.object.spec;
    // ToolHive's EffectiveProxyMode: only a stdio server is reached through the proxy mode it
    // chose; a native sse or streamable-http server is reached as what it speaks.
    return spec.transport === "stdio" ? (spec.proxyMode ?? "streamable-http") : spec.transport;
  }
  const t = member.object.spec.transport;
  return t === "sse" || t === "streamable-http" ? t : undefined;
}

function urlOf(member: Member, namespace: string, opts: DiscoveryOptions): string | undefined {
  switch (member.kind) {
    case "MCPServerEntry":
      return member.object.spec.remoteUrl;
    case "MCPRemoteProxy":
      return member.object.status?.url || undefined;
    case "MCPServer": {
      const url = member.object.status?.url;
      if (url) return url;
      if (!opts.predictUrls) return undefined;
      // ToolHive's GenerateMCPServerURL: /sse#<name> for SSE, /mcp for streamable-http.
      const { name } = member.object.metadata;
      const base = `http://mcp-${name}-proxy.${namespace}.svc.cluster.local:${member.object.spec.proxyPort ?? 8080}`;
      return transportOf(member) === "sse" ? `${base}/sse#${encodeURIComponent(name)}` : `${base}/mcp`;
    }
  }
}

export function discoverBackends(inputs: VmcpInputs, opts: DiscoveryOptions = {}): Discovery {
  const namespace = inputs.vmcp.metadata.namespace ?? "default";
  const backends: Backend[] = [];
  const unresolved: UnresolvedMember[] = [];
  const seen = new Map<string, Member["kind"]>();
  const members = [...inputs.members].sort(
    (a, b) => a.object.metadata.name.localeCompare(b.object.metadata.name) || a.kind.localeCompare(b.kind),
  );
  for (const member of members) {
    const name = member.object.metadata.name;
    const kind = member.kind;
    const clash = seen.get(name);
    if (clash) {
      unresolved.push({
        name,
        kind,
        reason: `a ${clash} of the same name is already a backend of this group`,
      });
      continue;
    }
    const url = urlOf(member, namespace, opts);
    if (!url) {
      unresolved.push({ name, kind, reason: `${kind} has no URL yet (status.url is empty: not running)` });
      continue;
    }
    const transport = transportOf(member);
    if (!transport) {
      unresolved.push({
        name,
        kind,
        reason: `${kind} transport "${String(member.object.spec.transport)}" is not sse or streamable-http`,
      });
      continue;
    }
    seen.set(name, kind);
    backends.push({
      name,
      kind,
      url,
      transport,
      authConfigRef: member.object.spec.externalAuthConfigRef?.name,
    });
  }
  return { backends, unresolved };
}
