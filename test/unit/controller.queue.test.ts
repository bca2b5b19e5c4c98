// The work queue: dedup, one run per key at a time, workers, backoff, resync, shutdown.
import assert from "node:assert/strict";
import { WorkQueue, DONE, type HandlerResult, type Timers } from "../../controller/queue.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("controller work queue", () => {
  it("deduplicates a key added many times while it waits", async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => (seen.push(k), DONE), { workers: 1 });
    for (let i = 0; i < 5; i++) q.add("ns/a");
    q.add("ns/b");
    assert.equal(q.depth, 2);
    q.start();
    await q.idle();
    assert.deepEqual(seen, ["ns/a", "ns/b"]);
  });

  it("never runs one key twice at once; a key re-added while running runs again after", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const gate = deferred();
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs++;
        if (runs === 1) await gate.promise;
        running--;
        return DONE;
      },
      { workers: 4 },
    );
    q.start();
    q.add("ns/a");
    await sleep(5);
    q.add("ns/a");
    q.add("ns/a");
    assert.equal(q.processingCount, 1);
    assert.equal(q.depth, 0, "held back while processing");
    gate.resolve();
    await q.idle();
    assert.equal(runs, 2, "ran once more, once only");
    assert.equal(maxRunning, 1);
  });

  it("runs different keys in parallel up to the number of workers", async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(20);
        running--;
        return DONE;
      },
      { workers: 3 },
    );
    for (let i = 0; i < 10; i++) q.add(`ns/k${i}`);
    q.start();
    await q.idle();
    assert.equal(maxRunning, 3);
  });

  it("backs off exponentially with jitter and a cap, and resets on success", () => {
    const q = new WorkQueue(async () => DONE, {
      baseDelayMs: 100,
      maxDelayMs: 1000,
      jitter: 0.5,
      timers: { ...fakeTimers(), random: () => 1 },
    });
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => q.backoff("k")),
      [50, 100, 200, 400, 500, 500],
    );
    q.forget("k");
    assert.equal(q.backoff("k"), 50);
    const noJitter = new WorkQueue(async () => DONE, {
      baseDelayMs: 10,
      jitter: 0.2,
      timers: { ...fakeTimers(), random: () => 0 },
    });
    assert.deepEqual([noJitter.backoff("x"), noJitter.backoff("x")], [10, 20]);
  });

  it("retries a failing key with backoff until it succeeds, then forgets its failures", async () => {
    let attempts = 0;
    const q = new WorkQueue(
      async () => {
        attempts++;
        if (attempts < 3) throw new Error("boom");
        return DONE;
      },
      { baseDelayMs: 5, jitter: 0 },
    );
    q.start();
    q.add("ns/a");
    const t0 = Date.now();
    while (attempts < 3 && Date.now() - t0 < 2000) await sleep(2);
    await q.idle();
    assert.equal(attempts, 3);
    assert.equal(q.failuresOf("ns/a"), 0);
  });

  it("treats {kind: retry} like a failure and {kind: after} as a fixed delay", async () => {
    const results: HandlerResult[] = [{ kind: "retry" }, { kind: "after", ms: 10 }, DONE];
    const times: number[] = [];
    const q = new WorkQueue(async () => (times.push(Date.now()), results.shift() ?? DONE), {
      baseDelayMs: 5,
      jitter: 0,
    });
    q.start();
    q.add("ns/a");
    const t0 = Date.now();
    while (times.length < 3 && Date.now() - t0 < 2000) await sleep(2);
    assert.equal(times.length, 3);
    assert.ok((times[2] ?? 0) - (times[1] ?? 0) >= 9, "after: waited about 10 ms");
  });

  it("does not retry a {kind: terminal} result, after failures too (backoff reset)", async () => {
    const results: HandlerResult[] = [{ kind: "retry" }, { kind: "terminal", reason: "ValidationFailed" }];
    let calls = 0;
    const q = new WorkQueue(async () => (calls++, results.shift() ?? DONE), { baseDelayMs: 5, jitter: 0 });
    q.start();
    q.add("ns/a");
    const t0 = Date.now();
    while (calls < 2 && Date.now() - t0 < 2000) await sleep(2);
    await sleep(50);
    await q.idle();
    assert.equal(calls, 2, "the retry ran once more, the terminal result not again");
    assert.equal(q.failuresOf("ns/a"), 0);
  });

  it("addAfter keeps the earliest of several delays for a key", async () => {
    const seen: number[] = [];
    const q = new WorkQueue(async () => (seen.push(Date.now()), DONE));
    q.start();
    const t0 = Date.now();
    q.addAfter("ns/a", 200);
    q.addAfter("ns/a", 10);
    q.addAfter("ns/a", 100);
    await sleep(60);
    assert.equal(seen.length, 1);
    assert.ok((seen[0] ?? 0) - t0 < 60);
    await sleep(200);
    assert.equal(seen.length, 1, "the later timers were dropped");
  });

  it("resync enqueues every listed key periodically", async () => {
    const seen = new Map<string, number>();
    const q = new WorkQueue(async (k) => (seen.set(k, (seen.get(k) ?? 0) + 1), DONE), {
      resyncMs: 20,
      listKeys: () => ["ns/a", "ns/b"],
    });
    q.start();
    await sleep(75);
    await q.shutdown({ deadlineMs: 100 });
    assert.ok((seen.get("ns/a") ?? 0) >= 2, `a ran ${seen.get("ns/a")} times`);
    assert.ok((seen.get("ns/b") ?? 0) >= 2);
  });

  it("shutdown without drain abandons waiting keys and waits for the run in flight", async () => {
    const done: string[] = [];
    const q = new WorkQueue(async (k) => (await sleep(30), done.push(k), DONE), { workers: 1 });
    q.add("ns/a");
    q.add("ns/b");
    q.start();
    await sleep(5);
    assert.equal(await q.shutdown({ drain: false, deadlineMs: 1000 }), true);
    assert.deepEqual(done, ["ns/a"]);
    q.add("ns/c");
    assert.equal(q.depth, 0, "no new work after shutdown");
  });

  it("shutdown with drain processes what was waiting", async () => {
    const done: string[] = [];
    const q = new WorkQueue(async (k) => (await sleep(5), done.push(k), DONE), { workers: 1 });
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/c");
    q.start();
    assert.equal(await q.shutdown({ drain: true, deadlineMs: 1000 }), true);
    assert.deepEqual(done, ["ns/a", "ns/b", "ns/c"]);
  });

  it("shutdown gives up at the deadline and aborts the handler's signal", async () => {
    let aborted = false;
    const q = new WorkQueue(async (_k, signal) => {
      await new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => ((aborted = true), resolve())),
      );
      return DONE;
    });
    q.add("ns/a");
    q.start();
    await sleep(5);
    assert.equal(await q.shutdown({ deadlineMs: 20 }), false);
    assert.equal(aborted, true);
  });

  it("reports depth and queue latency through hooks", async () => {
    const depths: number[] = [];
    const waits: number[] = [];
    const q = new WorkQueue(async () => DONE, {
      hooks: { onDepth: (d) => depths.push(d), onDequeue: (_k, ms) => waits.push(ms) },
    });
    q.add("ns/a");
    q.add("ns/b");
    await sleep(10);
    q.start();
    await q.idle();
    assert.equal(Math.max(...depths), 2);
    assert.equal(depths.at(-1), 0);
    assert.equal(waits.length, 2);
    assert.ok((waits[0] ?? 0) >= 9);
  });
});

function fakeTimers(): Timers {
  return { now: () => 0, setTimeout: () => 0, clearTimeout: () => {}, random: () => 0 };
}
