// Prometheus metrics (prom-client) and the /metrics, /healthz, /readyz endpoints.
import assert from "node:assert/strict";
import { Metrics } from "../../controller/metrics.js";
import { parseAddr, startServer } from "../../controller/server.js";
import { jsonLogger } from "../../controller/log.js";

describe("controller metrics and health endpoints", () => {
  it("renders counters, gauges and histograms in the text format, beside the runtime's default metrics", async () => {
    const m = new Metrics();
    m.reconcileDuration.observe(0.02, { result: "done" });
    m.reconcileDuration.observe(3, { result: "done" });
    m.pulumiFailures.inc({ op: "up" });
    m.queueDepth.set(4);
    const text = await m.render();
    assert.match(text, /# TYPE vmcp_reconcile_duration_seconds histogram/);
    assert.match(text, /vmcp_reconcile_duration_seconds_bucket\{le="0.025",result="done"\} 1/);
    assert.match(text, /vmcp_reconcile_duration_seconds_bucket\{le="5",result="done"\} 2/);
    assert.match(text, /vmcp_reconcile_duration_seconds_bucket\{le="\+Inf",result="done"\} 2/);
    assert.match(text, /vmcp_reconcile_duration_seconds_count\{result="done"\} 2/);
    assert.match(text, /vmcp_pulumi_operation_failures_total\{op="up"\} 1/);
    assert.match(text, /vmcp_workqueue_depth 4/);
    // What dashboards and our benchmarks read about the process itself.
    for (const name of [
      "process_resident_memory_bytes",
      "process_cpu_seconds_total",
      "nodejs_eventloop_lag_seconds",
      "nodejs_heap_size_used_bytes",
      "nodejs_gc_duration_seconds",
    ])
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    assert.match(text, /^process_resident_memory_bytes [1-9][0-9]*$/m);
    // Each controller has its own registry: a second one starts from zero.
    assert.equal(await new Metrics().reconcileDuration.count({ result: "done" }), 0);
    assert.equal(await m.reconcileDuration.count({ result: "done" }), 2);
    assert.equal(await m.reconcileDuration.sum({ result: "done" }), 3.02);
    assert.equal(await m.pulumiFailures.get({ op: "up" }), 1);
    assert.equal(await m.pulumiFailures.get({ op: "preview" }), 0);
    assert.equal(await m.queueDepth.get(), 4);
  });

  it("serves /metrics (500 when collecting fails), /healthz and /readyz (503 until ready)", async () => {
    let ready = false;
    const s = await startServer({
      addr: "127.0.0.1:0",
      metrics: () => "x 1\n",
      ready: () => ({ ok: ready, detail: ready ? "ready" : "caches not synced" }),
    });
    try {
      const base = `http://127.0.0.1:${s.port}`;
      assert.equal(await (await fetch(`${base}/metrics`)).text(), "x 1\n");
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 503);
      ready = true;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
    } finally {
      await s.close();
    }
    const failing = await startServer({
      addr: "127.0.0.1:0",
      metrics: () => Promise.reject(new Error("collector broke")),
      ready: () => ({ ok: true, detail: "ready" }),
    });
    try {
      const res = await fetch(`http://127.0.0.1:${failing.port}/metrics`);
      assert.equal(res.status, 500);
      assert.match(await res.text(), /collector broke/);
    } finally {
      await failing.close();
    }
    assert.deepEqual(parseAddr(":8080"), { host: undefined, port: 8080 });
    assert.deepEqual(parseAddr("0.0.0.0:9"), { host: "0.0.0.0", port: 9 });
  });

  it("logs one JSON line per event with the key, and never a secret-named field's value", () => {
    const lines: string[] = [];
    const log = jsonLogger({ write: (l) => lines.push(l) }).with({ key: "ns/gw" });
    log.info("stack updated", { clientSecret: "s3cr3t", ms: 5 });
    log.debug("hidden at info level");
    assert.equal(lines.length, 1);
    const parsed = JSON.parse(lines[0] ?? "{}");
    assert.equal(parsed.key, "ns/gw");
    assert.equal(parsed.msg, "stack updated");
    assert.equal(parsed.clientSecret, "[redacted]");
    assert.ok(!(lines[0] ?? "").includes("s3cr3t"));
  });
});
