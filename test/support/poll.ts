// Polls until `fn` returns a value (errors count as "not yet"), or fails naming what it
// waited for and the last error. Integration tests wait with this, never with a fixed sleep.
export async function poll<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 180_000,
  intervalMs = 150,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls until `read` fails with 404: a success or any other error is "not yet". */
export function gone(what: string, read: () => Promise<unknown>, timeoutMs?: number): Promise<true> {
  return poll(
    `${what} gone`,
    async () => {
      try {
        await read();
        return undefined;
      } catch (err) {
        if ((err as { code?: number }).code === 404) return true;
        throw err;
      }
    },
    timeoutMs,
  );
}
