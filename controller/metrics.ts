// The controller's Prometheus metrics, on prom-client: our series beside its default
// process and Node.js runtime metrics (RSS, CPU, heap, event-loop lag, GC). One registry
// per Metrics, so that each controller (tests run several in one process) has its own.
import * as prom from "prom-client";
import type { BackendHealthStatus } from "../health/state.js";

type Labels = Record<string, string>;

interface Read {
  values: { labels: Partial<Record<string, string | number>>; value: number; metricName?: string }[];
}

/** The value of the series `name` whose labels are exactly `labels`; 0 when it has none yet. */
function valueOf(data: Read, name: string, labels: Labels): number {
  const want = Object.entries(labels);
  const found = data.values.find(
    (v) =>
      (v.metricName ?? name) === name &&
      Object.keys(v.labels).length === want.length &&
      want.every(([k, val]) => v.labels[k] === val),
  );
  return found?.value ?? 0;
}

// The three classes below only adapt prom-client's metrics to the calls the controller
// makes (value first, labels optional and last) and add a read-back of one series for
// tests and benchmarks; storage and exposition are prom-client's.

export class Counter {
  readonly metric: prom.Counter;
  constructor(
    registry: prom.Registry,
    readonly name: string,
    help: string,
    labelNames: readonly string[] = [],
  ) {
    this.metric = new prom.Counter({ name, help, labelNames, registers: [registry] });
  }
  inc(labels: Labels = {}, by = 1): void {
    this.metric.inc(labels, by);
  }
  async get(labels: Labels = {}): Promise<number> {
    return valueOf(await this.metric.get(), this.name, labels);
  }
}

export class Gauge {
  readonly metric: prom.Gauge;
  constructor(
    registry: prom.Registry,
    readonly name: string,
    help: string,
    labelNames: readonly string[] = [],
  ) {
    this.metric = new prom.Gauge({ name, help, labelNames, registers: [registry] });
  }
  set(value: number, labels: Labels = {}): void {
    this.metric.set(labels, value);
  }
  async get(labels: Labels = {}): Promise<number> {
    return valueOf(await this.metric.get(), this.name, labels);
  }
  remove(labels: Labels): void {
    this.metric.remove(labels);
  }
}

export class Histogram {
  readonly metric: prom.Histogram;
  constructor(
    registry: prom.Registry,
    readonly name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ) {
    this.metric = new prom.Histogram({
      name,
      help,
      buckets: [...buckets],
      labelNames,
      registers: [registry],
    });
  }
  observe(value: number, labels: Labels = {}): void {
    this.metric.observe(labels, value);
  }
  async count(labels: Labels = {}): Promise<number> {
    return valueOf(await this.metric.get(), `${this.name}_count`, labels);
  }
  async sum(labels: Labels = {}): Promise<number> {
    return valueOf(await this.metric.get(), `${this.name}_sum`, labels);
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The controller's metrics. One instance per controller (tests make their own). */
const BACKEND_STATUSES: readonly BackendHealthStatus[] = [
  "ready",
  "degraded",
  "unavailable",
  "unauthenticated",
  "unknown",
];

export class Metrics {
  readonly registry = new prom.Registry();
  readonly reconcileDuration = new Histogram(
    this.registry,
    "vmcp_reconcile_duration_seconds",
    "Time of one reconcile of a VirtualMCPServer, by result",
    SECONDS,
    ["result"],
  );
  readonly reconcileErrors = new Counter(
    this.registry,
    "vmcp_reconcile_errors_total",
    "Reconciles that failed and will be retried",
  );
  readonly reconciles = new Counter(this.registry, "vmcp_reconciles_total", "Reconciles, by result", [
    "result",
  ]);
  readonly queueDepth = new Gauge(this.registry, "vmcp_workqueue_depth", "Keys waiting in the work queue");
  readonly queueLatency = new Histogram(
    this.registry,
    "vmcp_workqueue_queue_duration_seconds",
    "Time a key waited in the work queue before a worker took it",
    SECONDS,
  );
  readonly pulumiDuration = new Histogram(
    this.registry,
    "vmcp_pulumi_operation_duration_seconds",
    "Duration of Pulumi operations, by op (preview, up, repair, destroy, unlock)",
    SECONDS,
    ["op"],
  );
  readonly phaseDuration = new Histogram(
    this.registry,
    "vmcp_reconcile_phase_duration_seconds",
    "Time of the non-Pulumi phases of a reconcile, by phase (build: validate, gather inputs from the cache, build the desired state; status: compute and write the status)",
    SECONDS,
    ["phase"],
  );
  readonly pulumiFailures = new Counter(
    this.registry,
    "vmcp_pulumi_operation_failures_total",
    "Failed Pulumi operations, by op",
    ["op"],
  );
  readonly pulumiSkipped = new Counter(
    this.registry,
    "vmcp_pulumi_skipped_total",
    "Reconciles that needed no Pulumi operation (desired hash unchanged, objects intact)",
  );
  readonly statusWrites = new Counter(this.registry, "vmcp_status_writes_total", "Status subresource writes");
  readonly backends = new Gauge(
    this.registry,
    "vmcp_backends",
    "Discovered backends per VirtualMCPServer (namespace/name), by status",
    ["vmcp", "status"],
  );
  readonly watchRestarts = new Counter(
    this.registry,
    "vmcp_informer_restarts_total",
    "Informer restarts after watch errors, by kind",
    ["kind"],
  );
  readonly isLeader = new Gauge(this.registry, "vmcp_leader", "1 when this replica holds the leader lease");
  readonly shardHeld = new Gauge(
    this.registry,
    "vmcp_shard_held",
    "1 while this replica holds the shard's Lease and reconciles its keys (--shards > 1)",
    ["shard"],
  );
  readonly shardReconciles = new Counter(
    this.registry,
    "vmcp_shard_reconciles_total",
    "Reconciles, by shard and result (--shards > 1)",
    ["shard", "result"],
  );
  readonly shardTransitions = new Counter(
    this.registry,
    "vmcp_shard_transitions_total",
    "Shards taken (acquired) and given up (lost: Lease not renewed in time; handover: to balance; stop: shutdown)",
    ["shard", "event"],
  );
  readonly shardFenced = new Counter(
    this.registry,
    "vmcp_shard_fenced_processes_total",
    "Pulumi processes killed because their shard's Lease was lost or handed over",
    ["shard"],
  );
  readonly liveReplicas = new Gauge(
    this.registry,
    "vmcp_shard_live_replicas",
    "Replicas with a live member Lease, as this replica counts them (--shards > 1)",
  );

  constructor() {
    prom.collectDefaultMetrics({ register: this.registry });
  }

  /** vmcp_backends of one VirtualMCPServer: every status, 0 included, so a drop shows. */
  countBackends(key: string, statuses: readonly string[]): void {
    for (const status of BACKEND_STATUSES)
      this.backends.set(statuses.filter((s) => s === status).length, { vmcp: key, status });
  }

  /** Its series go when the VirtualMCPServer does, or another replica took it over. */
  forgetBackends(key: string): void {
    for (const status of BACKEND_STATUSES) this.backends.remove({ vmcp: key, status });
  }

  /** The text exposition format (0.0.4) of everything registered. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
