// Work-queue keys: "namespace/name" of a VirtualMCPServer.
export type Key = string;

export function vmcpKey(namespace: string | undefined, name: string): Key {
  return `${namespace ?? "default"}/${name}`;
}

export function parseKey(key: Key): { namespace: string; name: string } {
  const i = key.indexOf("/");
  if (i < 0) return { namespace: "default", name: key };
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
