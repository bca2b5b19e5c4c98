// A keyed work queue in the manner of client-go's workqueue: a key waiting to be
// processed is held once (dedup), a key is never handed to two workers at once (one
// re-added while it is being processed runs again right after), failures back off
// exponentially with jitter and a cap per key, and a periodic resync enqueues every key.
import type { Key } from "./keys.js";

/** What a handler asks the queue to do with its key afterwards. */
export type HandlerResult =
  /** Nothing to do until something the key depends on changes (its informer events re-add it). */
  | { kind: "done" }
  /** Terminal until the object's spec changes (e.g. an invalid spec): never retried. */
  | { kind: "terminal"; reason: string }
  /** Try again after the key's backoff (not an error: e.g. waiting for a group to be Ready). */
  | { kind: "retry"; reason?: string }
  /** Try again after a fixed delay, without touching the backoff. */
  | { kind: "after"; ms: number };

export const DONE: HandlerResult = { kind: "done" };

export type Handler = (key: Key, signal: AbortSignal) => Promise<HandlerResult>;

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: Math.random,
};

export interface QueueHooks {
  /** A key was taken by a worker after waiting `ms` since it was (first) added. */
  onDequeue?(key: Key, waitedMs: number): void;
  /** A handler finished (or threw: err set). */
  onProcessed?(key: Key, ms: number, result: HandlerResult | undefined, err: unknown): void;
  /** The number of keys waiting changed. */
  onDepth?(depth: number): void;
}

export interface QueueOptions {
  workers?: number;
  /** First retry delay (default 100 ms), doubled per consecutive failure of the key. */
  baseDelayMs?: number;
  /** Cap of the retry delay (default 5 min). */
  maxDelayMs?: number;
  /** Fraction of the delay randomised (default 0.2: the delay is 80–100 % of the nominal one). */
  jitter?: number;
  /** Period of the resync (0 = never). */
  resyncMs?: number;
  /** All keys, for the resync. */
  listKeys?: () => Iterable<Key>;
  timers?: Timers;
  hooks?: QueueHooks;
}

export class WorkQueue {
  private readonly pending: Key[] = [];
  /** Keys waiting to be processed (in `pending`, or to be re-queued when their run ends). */
  private readonly dirty = new Set<Key>();
  private readonly processing = new Set<Key>();
  private readonly addedAt = new Map<Key, number>();
  private readonly failures = new Map<Key, number>();
  private readonly delayed = new Map<Key, { at: number; handle: unknown }>();
  private readonly inFlight = new Map<Key, Promise<void>>();
  private readonly opts: Required<Omit<QueueOptions, "listKeys" | "hooks">> &
    Pick<QueueOptions, "listKeys" | "hooks">;
  private readonly abort = new AbortController();
  private resyncHandle: unknown;
  private running = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly handler: Handler,
    opts: QueueOptions = {},
  ) {
    this.opts = {
      workers: Math.max(1, opts.workers ?? 2),
      baseDelayMs: opts.baseDelayMs ?? 100,
      maxDelayMs: opts.maxDelayMs ?? 300_000,
      jitter: opts.jitter ?? 0.2,
      resyncMs: opts.resyncMs ?? 0,
      timers: opts.timers ?? realTimers,
      listKeys: opts.listKeys,
      hooks: opts.hooks,
    };
  }

  /** Keys waiting (not counting the ones being processed). */
  get depth(): number {
    return this.pending.length;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  get isShuttingDown(): boolean {
    return this.closed;
  }

  /** Consecutive failures recorded for a key. */
  failuresOf(key: Key): number {
    return this.failures.get(key) ?? 0;
  }

  /** Whether a delayed add (a retry with backoff, a re-check) is pending for the key. */
  isScheduled(key: Key): boolean {
    return this.delayed.has(key);
  }

  add(key: Key): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, this.opts.timers.now());
    if (this.processing.has(key)) return; // re-queued when its current run ends
    this.pending.push(key);
    this.opts.hooks?.onDepth?.(this.pending.length);
    this.pump();
  }

  /** Adds the key after `ms`; of several pending delays for one key the earliest wins. */
  addAfter(key: Key, ms: number): void {
    if (this.closed) return;
    if (ms <= 0) return this.add(key);
    const t = this.opts.timers;
    const at = t.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) t.clearTimeout(existing.handle);
    const handle = t.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, handle });
  }

  /** The key's next backoff delay (and counts the failure). */
  backoff(key: Key): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const nominal = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.min(n, 40));
    return Math.round(nominal * (1 - this.opts.jitter * this.opts.timers.random()));
  }

  addRateLimited(key: Key): void {
    this.addAfter(key, this.backoff(key));
  }

  /** Resets the key's backoff. */
  forget(key: Key): void {
    this.failures.delete(key);
  }

  /** Enqueues every key listKeys() returns. */
  resync(): void {
    for (const key of this.opts.listKeys?.() ?? []) this.add(key);
  }

  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    if (this.opts.resyncMs > 0 && this.opts.listKeys) this.scheduleResync();
    this.pump();
  }

  private scheduleResync(): void {
    this.resyncHandle = this.opts.timers.setTimeout(() => {
      if (this.closed) return;
      this.resync();
      this.scheduleResync();
    }, this.opts.resyncMs);
  }

  private pump(): void {
    if (!this.running) return;
    while (this.inFlight.size < this.opts.workers && this.pending.length > 0) {
      const key = this.pending.shift() as Key;
      this.opts.hooks?.onDepth?.(this.pending.length);
      this.dirty.delete(key);
      this.processing.add(key);
      const waited = this.opts.timers.now() - (this.addedAt.get(key) ?? this.opts.timers.now());
      this.addedAt.delete(key);
      this.opts.hooks?.onDequeue?.(key, waited);
      const run = this.process(key).finally(() => {
        this.inFlight.delete(key);
        this.processing.delete(key);
        if (this.dirty.has(key)) {
          this.pending.push(key);
          this.opts.hooks?.onDepth?.(this.pending.length);
        }
        this.pump();
        this.notifyIdle();
      });
      this.inFlight.set(key, run);
    }
  }

  private async process(key: Key): Promise<void> {
    const t0 = this.opts.timers.now();
    let result: HandlerResult | undefined;
    let error: unknown;
    try {
      result = await this.handler(key, this.abort.signal);
    } catch (err) {
      error = err;
    }
    this.opts.hooks?.onProcessed?.(key, this.opts.timers.now() - t0, result, error);
    if (this.closed) return;
    if (error !== undefined || result?.kind === "retry") {
      this.addRateLimited(key);
    } else if (result?.kind === "after") {
      this.forget(key);
      this.addAfter(key, result.ms);
    } else {
      this.forget(key); // done, terminal
    }
  }

  private notifyIdle(): void {
    if (this.inFlight.size > 0 || (this.pending.length > 0 && this.running)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when nothing is waiting or running. */
  async idle(): Promise<void> {
    if (this.inFlight.size === 0 && (this.pending.length === 0 || !this.running)) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking new keys. `drain`: keys already waiting are still processed; otherwise
   * they are abandoned and only the runs in flight are awaited. After `deadlineMs` the
   * handlers' AbortSignal fires and shutdown returns without waiting any longer.
   * Returns true when everything finished before the deadline.
   */
  async shutdown(opts: { drain?: boolean; deadlineMs?: number } = {}): Promise<boolean> {
    const t = this.opts.timers;
    this.closed = true; // add() and retries are refused from now on
    if (this.resyncHandle !== undefined) t.clearTimeout(this.resyncHandle);
    for (const d of this.delayed.values()) t.clearTimeout(d.handle);
    this.delayed.clear();
    if (!opts.drain) {
      this.pending.length = 0;
      this.dirty.clear();
      this.opts.hooks?.onDepth?.(0);
    } else {
      this.running = true;
      this.pump();
    }
    const finished = (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
    })();
    let timer: unknown;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = t.setTimeout(() => resolve(false), opts.deadlineMs ?? 30_000);
    });
    const ok = await Promise.race([finished.then(() => true), timedOut]);
    t.clearTimeout(timer);
    this.running = false;
    if (!ok) this.abort.abort(new Error("work queue shut down"));
    return ok;
  }
}
