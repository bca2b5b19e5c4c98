// Rate limit for the Events that follow health and phase: a flapping backend must not
// flood `kubectl describe`. At most one Event per key (VirtualMCPServer, reason, subject)
// per window; the ones held back are counted into the next Event that gets through.

export class EventLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether an Event for `key` may go out now; when it may, how many were held back since
   * the last one (to say so in its message).
   */
  take(key: string): { allowed: true; suppressed: number } | { allowed: false } {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.windowMs) {
      entry.suppressed++;
      return { allowed: false };
    }
    this.last.set(key, { at: now, suppressed: 0 });
    return { allowed: true, suppressed: entry?.suppressed ?? 0 };
  }

  /** Forgets every key starting with `prefix` (a VirtualMCPServer that is gone). */
  forget(prefix: string): void {
    for (const key of this.last.keys()) if (key.startsWith(prefix)) this.last.delete(key);
  }
}
