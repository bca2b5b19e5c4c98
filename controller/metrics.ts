// Prometheus metrics, written by hand in the text exposition format (0.0.4): counters,
// gauges and histograms with labels. Small on purpose: no registry library needed.
type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function fmt(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12)));
}

interface Metric {
  render(): string;
}

class Series<T> {
  protected readonly series = new Map<string, { labels: Labels; value: T }>();
  protected entry(labels: Labels, init: () => T): { labels: Labels; value: T } {
    const k = labelText(labels);
    let e = this.series.get(k);
    if (!e) this.series.set(k, (e = { labels, value: init() }));
    return e;
  }
}

export class Counter extends Series<number> implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    super();
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  get(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.series.values())
      lines.push(`${this.name}${labelText(labels)} ${fmt(value)}`);
    return lines.join("\n");
  }
}

export class Gauge extends Series<number> implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    super();
  }
  set(value: number, labels: Labels = {}): void {
    this.entry(labels, () => 0).value = value;
  }
  get(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.series.values())
      lines.push(`${this.name}${labelText(labels)} ${fmt(value)}`);
    return lines.join("\n");
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Series<HistogramValue> implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    super();
  }
  observe(value: number, labels: Labels = {}): void {
    const e = this.entry(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => {
      if (value <= b) e.value.counts[i] = (e.value.counts[i] ?? 0) + 1;
    });
    e.value.sum += value;
    e.value.count += 1;
  }
  count(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value.count ?? 0;
  }
  sum(labels: Labels = {}): number {
    return this.series.get(labelText(labels))?.value.sum ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: fmt(b) })} ${value.counts[i] ?? 0}`),
      );
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${value.count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${fmt(value.sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return lines.join("\n");
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** The controller's metrics. One instance per controller (tests make their own). */
export class Metrics {
  readonly reconcileDuration = new Histogram(
    "vmcp_reconcile_duration_seconds",
    "Time of one reconcile of a VirtualMCPServer, by result",
    SECONDS,
  );
  readonly reconcileErrors = new Counter(
    "vmcp_reconcile_errors_total",
    "Reconciles that failed and will be retried",
  );
  readonly reconciles = new Counter("vmcp_reconciles_total", "Reconciles, by result");
  readonly queueDepth = new Gauge("vmcp_workqueue_depth", "Keys waiting in the work queue");
  readonly queueLatency = new Histogram(
    "vmcp_workqueue_queue_duration_seconds",
    "Time a key waited in the work queue before a worker took it",
    SECONDS,
  );
  readonly pulumiDuration = new Histogram(
    "vmcp_pulumi_operation_duration_seconds",
    "Duration of Pulumi operations, by op (preview, up, repair, destroy, unlock)",
    SECONDS,
  );
  readonly phaseDuration = new Histogram(
    "vmcp_reconcile_phase_duration_seconds",
    "Time of the non-Pulumi phases of a reconcile, by phase (build: validate, gather inputs from the cache, build the desired state; status: compute and write the status)",
    SECONDS,
  );
  readonly pulumiFailures = new Counter(
    "vmcp_pulumi_operation_failures_total",
    "Failed Pulumi operations, by op",
  );
  readonly pulumiSkipped = new Counter(
    "vmcp_pulumi_skipped_total",
    "Reconciles that needed no Pulumi operation (desired hash unchanged, objects intact)",
  );
  readonly statusWrites = new Counter("vmcp_status_writes_total", "Status subresource writes");
  readonly backends = new Gauge("vmcp_backends", "Discovered backends per VirtualMCPServer, by status");
  readonly watchRestarts = new Counter(
    "vmcp_informer_restarts_total",
    "Informer restarts after watch errors, by kind",
  );
  readonly isLeader = new Gauge("vmcp_leader", "1 when this replica holds the leader lease");

  private all(): Metric[] {
    return [
      this.reconcileDuration,
      this.reconcileErrors,
      this.reconciles,
      this.queueDepth,
      this.queueLatency,
      this.pulumiDuration,
      this.phaseDuration,
      this.pulumiFailures,
      this.pulumiSkipped,
      this.statusWrites,
      this.backends,
      this.watchRestarts,
      this.isLeader,
    ];
  }

  render(): string {
    return (
      this.all()
        .map((m) => m.render())
        .join("\n") + "\n"
    );
  }
}
