// Progress output for humans: one line per step, elapsed time first, key=value after.
export type Fields = Record<string, string | number | boolean | undefined>;
export type Logger = (message: string, fields?: Fields) => void;

export const silentLogger: Logger = () => {};

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

/** A logger writing `[cluster +1.2s] message k=v` lines to stderr. */
export function consoleLogger(prefix = "cluster", stream: NodeJS.WritableStream = process.stderr): Logger {
  const t0 = performance.now();
  return (message, fields = {}) => {
    const elapsed = ((performance.now() - t0) / 1000).toFixed(1);
    const kv = Object.entries(fields)
      .filter((entry): entry is [string, string | number | boolean] => entry[1] !== undefined)
      .map(([k, v]) => `${k}=${formatValue(v)}`);
    stream.write(`[${prefix} +${elapsed}s] ${[message, ...kv].join(" ")}\n`);
  };
}
