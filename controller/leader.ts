// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics:
// holderIdentity + renewTime (MicroTime) + leaseDurationSeconds; a candidate takes over
// only after the lease went unrenewed for a full duration as observed on ITS clock
// (no clock-skew assumptions); the leader renews every third of the duration and gives
// up leadership when it could not renew for two thirds of it. Replaces are optimistic
// (resourceVersion), so two candidates can never both win. On a graceful stop the
// leader releases the lease so a successor takes over at once.
import {
  ApiException,
  CoordinationV1Api,
  KubeConfig,
  V1MicroTime,
  type V1Lease,
} from "@kubernetes/client-node";
import { errorMessage, silentLogger, type Logger } from "./log.js";
import { withHolders, type HolderRecord } from "./holders.js";

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  log?: Logger;
  /** Labels of the Lease when this elector creates it (shard and member Leases carry their group). */
  labels?: Record<string, string>;
  /**
   * Asked before taking a Lease another holder let go or let expire (not before renewing our
   * own): the shard manager says no once this replica holds its share of the shards.
   */
  mayAcquire?: () => boolean;
  onStartedLeading: () => void | Promise<void>;
  onStoppedLeading: () => void | Promise<void>;
}

const code = (err: unknown): number | undefined => (err instanceof ApiException ? err.code : undefined);

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly log: Logger;
  private readonly durationMs: number;
  private leader = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private observed: { holder: string; renew: string } | undefined;
  private observedAt = 0;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private term = 0;
  /** The Lease as our last successful write returned it (renewals replace it directly). */
  private last: V1Lease | undefined;
  /** Bumped by release(): a round that started before it must not make us leader again. */
  private epoch = 0;
  /**
   * Who operates which stack under this Lease in this term (controller/holders.ts): written
   * into the Lease's annotations with every write of ours, so a replica that finds a stack
   * locked can tell whether its holder still holds the Lease. Emptied on each new term.
   */
  private holders = new Map<string, HolderRecord>();

  constructor(
    kc: KubeConfig,
    private readonly opts: LeaderOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.log = (opts.log ?? silentLogger).with({
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
    this.durationMs = opts.leaseDurationMs ?? 15_000;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** The Lease's leaseTransitions when we last took it: with the identity, names our term. */
  get transitions(): number {
    return this.term;
  }

  start(): void {
    this.stopped = false;
    this.loop ??= this.run();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // The renewTime we write is taken before the call: count the deadline from there too.
      const attemptStart = Date.now();
      const epoch = this.epoch;
      let ok = false;
      try {
        // A leader's attempt is bounded by its renew deadline: an API call that hangs (a
        // partition, a stuck API server) must not keep it leading past the point where a
        // candidate may take over. A candidate's by one lease duration.
        const budget = this.leader
          ? Math.max(1, this.lastRenew + this.renewDeadlineMs - Date.now())
          : this.durationMs;
        ok = await this.bounded(this.tryAcquireOrRenew(), budget);
      } catch (err) {
        this.log.warn("lease update failed", { error: errorMessage(err) });
      }
      const now = Date.now();
      if (epoch !== this.epoch) ok = false;
      if (ok) {
        this.lastRenew = attemptStart;
        if (!this.leader) {
          this.leader = true;
          this.holders = new Map(); // a new term: no operation of ours runs under it yet
          this.log.info("became leader");
          // Not awaited: starting work (e.g. clearing stale stack locks, one Pulumi call per
          // stack) may take longer than the renew deadline, and renewing must go on meanwhile.
          void (async () => {
            try {
              await this.opts.onStartedLeading();
            } catch (err) {
              this.log.error("onStartedLeading failed", { error: errorMessage(err) });
            }
          })();
        }
      } else if (this.leader && now - this.lastRenew >= this.renewDeadlineMs) {
        await this.lose("could not renew the lease in time");
      }
      if (this.stopped) break;
      await this.sleep(this.leader ? this.durationMs / 3 : this.durationMs / 5);
    }
  }

  /** Leading ends when the lease could not be renewed for two thirds of its duration. */
  private get renewDeadlineMs(): number {
    return (this.durationMs * 2) / 3;
  }

  /** `p`, or a rejection after `ms` (the call itself is left to finish or fail on its own). */
  private bounded<T>(p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lease update timed out after ${Math.round(ms)} ms`)), ms);
    });
    p.catch(() => {}); // a late failure of an abandoned call is not unhandled
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * Stops campaigning without waiting for the loop (callable from onStoppedLeading): a
   * replica whose work was shut down must not win the lease again and then do nothing.
   */
  stopCampaigning(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }

  private async lose(why: string): Promise<void> {
    this.leader = false;
    this.log.warn("lost leadership", { why });
    try {
      await this.opts.onStoppedLeading();
    } catch (err) {
      this.log.error("onStoppedLeading failed", { error: errorMessage(err) });
    }
  }

  private spec(now: Date, acquire: boolean, prev?: V1Lease): V1Lease["spec"] {
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.max(1, Math.round(this.durationMs / 1000)),
      renewTime: new V1MicroTime(now.getTime()),
      acquireTime: acquire ? new V1MicroTime(now.getTime()) : prev?.spec?.acquireTime,
      leaseTransitions: (prev?.spec?.leaseTransitions ?? 0) + (acquire && prev ? 1 : 0),
    };
  }

  /** The Lease's metadata with our holder records in place of whatever was there. */
  private meta(lease: V1Lease): V1Lease["metadata"] {
    return {
      ...lease.metadata,
      annotations: withHolders(lease.metadata?.annotations, this.holders),
    };
  }

  /**
   * Records, before an operation on `stack` starts, that this replica runs it under this
   * Lease in this term: one write (conditional on the Lease's resourceVersion, so a replica
   * that lost the Lease cannot record itself). Throws when we do not hold the Lease.
   */
  async recordHolder(stack: string, record: HolderRecord): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const notHolding = () =>
      new Error(`not holding Lease ${namespace}/${name} in term ${record.transitions}`);
    for (let attempt = 0; ; attempt++) {
      if (!this.leader || record.transitions !== this.term) throw notHolding();
      let mine = this.last;
      if (!mine) {
        mine = await this.api.readNamespacedLease({ name, namespace });
        if (mine.spec?.holderIdentity !== identity) throw notHolding();
      }
      if ((mine.spec?.leaseTransitions ?? 0) !== this.term) throw notHolding();
      this.holders.set(stack, record);
      try {
        this.last = await this.api.replaceNamespacedLease({
          name,
          namespace,
          body: { ...mine, metadata: this.meta(mine) },
        });
        return;
      } catch (err) {
        this.holders.delete(stack);
        // A renewal of ours may have landed first: read and try again (a Lease someone else
        // took fails the holder check above).
        if (code(err) !== 409 || attempt >= 2) throw err;
        this.last = undefined;
      }
    }
  }

  /** The operation ended: its record leaves the Lease with our next write (a renewal: no extra call). */
  dropHolder(stack: string): void {
    this.holders.delete(stack);
  }

  /**
   * The Lease as someone else read it (a list of many): counts as our observation of its
   * holder and renewal, so the full unrenewed duration before a takeover may start from here.
   */
  observe(lease: V1Lease): void {
    if (this.leader) return;
    const holder = lease.spec?.holderIdentity ?? "";
    const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : "";
    if (!this.observed || this.observed.holder !== holder || this.observed.renew !== renew) {
      this.observed = { holder, renew };
      this.observedAt = Date.now();
    }
  }

  /** One round: true when we hold the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    const now = new Date();
    // A leader renews with one write on the Lease it wrote last (its resourceVersion makes the
    // write fail if anyone else wrote since); only a conflict costs a read. Half the calls:
    // a replica renews one Lease per shard it holds.
    // A candidate that may not take the Lease anyway reads nothing: the shard manager's one
    // list of all its Leases keeps what it observed current (observe()).
    if (!this.leader && this.opts.mayAcquire && !this.opts.mayAcquire()) return false;
    const mine = this.leader ? this.last : undefined;
    if (mine) {
      try {
        const updated = await this.api.replaceNamespacedLease({
          name,
          namespace,
          body: { ...mine, metadata: this.meta(mine), spec: this.spec(now, false, mine) },
        });
        this.last = updated;
        this.observed = { holder: identity, renew: now.toISOString() };
        this.observedAt = Date.now();
        return true;
      } catch (err) {
        if (code(err) !== 409) throw err;
        this.last = undefined;
      }
    }
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (code(err) !== 404) throw err;
      try {
        this.last = await this.api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace, ...(this.opts.labels ? { labels: this.opts.labels } : {}) },
            spec: this.spec(now, true),
          },
        });
        this.term = 0;
        return true;
      } catch (e) {
        if (code(e) === 409) return false;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const renew = lease.spec?.renewTime ? new Date(lease.spec.renewTime).toISOString() : "";
    if (!this.observed || this.observed.holder !== holder || this.observed.renew !== renew) {
      this.observed = { holder, renew };
      this.observedAt = Date.now();
    }
    const durationMs = (lease.spec?.leaseDurationSeconds ?? this.durationMs / 1000) * 1000;
    const held = holder !== "" && holder !== identity && Date.now() - this.observedAt < durationMs;
    if (held) return false;
    if (holder !== identity && this.opts.mayAcquire && !this.opts.mayAcquire()) return false;
    try {
      // Taking it over: the previous holder's records go (its operations were fenced).
      if (holder !== identity) this.holders = new Map();
      const body: V1Lease = {
        ...lease,
        metadata: this.meta(lease),
        spec: this.spec(now, holder !== identity, lease),
      };
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.last = updated;
      this.observed = {
        holder: identity,
        renew: updated.spec?.renewTime ? new Date(updated.spec.renewTime).toISOString() : "",
      };
      this.observedAt = Date.now();
      if (holder !== identity) {
        this.term = updated.spec?.leaseTransitions ?? 0;
        this.log.info("acquired lease", { previous: holder || undefined, transitions: this.term });
      }
      return true;
    } catch (err) {
      if (code(err) === 409) return false;
      throw err;
    }
  }

  /** Stops campaigning; a leader releases the lease (holder cleared) so a successor need not wait. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    this.loop = undefined;
    if (!this.leader) return;
    this.leader = false;
    try {
      await this.bounded(this.clearHolder(), this.durationMs);
    } catch (err) {
      this.log.warn("could not release the lease", { error: errorMessage(err) });
    }
  }

  private async clearHolder(): Promise<void> {
    const lease = await this.api.readNamespacedLease({
      name: this.opts.name,
      namespace: this.opts.namespace,
    });
    if (lease.spec?.holderIdentity !== this.opts.identity) return;
    await this.api.replaceNamespacedLease({
      name: this.opts.name,
      namespace: this.opts.namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 } },
    });
    this.log.info("released lease");
  }

  /**
   * Gives the Lease up while campaigning goes on (a shard handed to another replica): the
   * caller stopped the work first. Not leading afterwards; mayAcquire decides whether we
   * take it again.
   */
  async release(): Promise<void> {
    if (!this.leader) return;
    this.leader = false;
    this.epoch++; // a round in flight must not make us leader again
    await this.bounded(this.clearHolder(), this.durationMs);
  }
}
