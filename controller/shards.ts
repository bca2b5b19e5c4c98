// Sharded active controllers: a fixed number of shards, each a Lease (`<lease>-shard-<i>`);
// every VirtualMCPServer key belongs to exactly one shard (a stable hash of namespace/name),
// and a replica reconciles only the keys of the shards it holds. Each shard is elected like
// the single leader (leader.ts: renew every third of the duration, give up after two
// thirds, take over only after a full unrenewed duration on our own clock), so two
// replicas never hold one shard at once.
//
// Balance: every replica also renews a member Lease of its own (`<lease>-member-<identity>`),
// and takes a free shard only while it holds fewer than ceil(shards / live members). When a
// replica joins, the others hand over their surplus (work of the shard stopped first, then
// the Lease released), so the newcomer gets its share within a lease duration or so. The
// member count compares renewTime with our clock: a skewed clock makes the balance uneven
// for a while, never the ownership unsafe (that rests on the shard Leases alone).
import { CoordinationV1Api, type KubeConfig } from "@kubernetes/client-node";
import { LeaderElector } from "./leader.js";
import { errorMessage, silentLogger, type Logger } from "./log.js";

export const SHARD_GROUP_LABEL = "vmcp.stacklok.dev/shard-group";
export const SHARD_ROLE_LABEL = "vmcp.stacklok.dev/shard-role";
export const SHARD_LABEL = "vmcp.stacklok.dev/shard";

/** The shard of a key ("namespace/name"): FNV-1a (32 bit) of its UTF-8 bytes, modulo the count. */
export function shardOf(key: string, shards: number): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(key, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}

/** How many shards one replica may hold while `live` replicas are alive. */
export function shardShare(shards: number, live: number): number {
  return Math.ceil(shards / Math.max(1, live));
}

/** The shards to hand over so that at most `share` remain: the highest-numbered ones. */
export function surplusShards(held: readonly number[], share: number): number[] {
  return [...held].sort((a, b) => a - b).slice(Math.max(0, share));
}

export const shardLeaseName = (lease: string, shard: number): string => `${lease}-shard-${shard}`;

/** A Lease name (DNS subdomain) for a replica identity such as "host-1234". */
export function memberLeaseName(lease: string, identity: string): string {
  const safe = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  return `${lease}-member-${safe || "replica"}`.slice(0, 253).replace(/[-.]+$/, "");
}

export interface ShardOptions {
  namespace: string;
  /** Prefix of the Lease names. */
  lease: string;
  identity: string;
  shards: number;
  leaseDurationMs?: number;
  log?: Logger;
  /** This replica now holds the shard (work may start). */
  onAcquired: (shard: number) => void | Promise<void>;
  /**
   * This replica no longer holds the shard, or is about to hand it over: stop its work. For a
   * hand-over the Lease is released only after this resolves; for a lost Lease, it is gone already.
   */
  onLost: (shard: number, why: "lost" | "handover" | "stop") => void | Promise<void>;
}

export class ShardManager {
  private readonly electors: LeaderElector[];
  private readonly member: LeaderElector;
  private readonly api: CoordinationV1Api;
  private readonly log: Logger;
  private readonly durationMs: number;
  private live = 1;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private handingOver = false;

  constructor(
    kc: KubeConfig,
    private readonly opts: ShardOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.durationMs = opts.leaseDurationMs ?? 15_000;
    this.log = (opts.log ?? silentLogger).with({ identity: opts.identity });
    const group = { [SHARD_GROUP_LABEL]: opts.lease };
    const common = {
      namespace: opts.namespace,
      identity: opts.identity,
      leaseDurationMs: this.durationMs,
      log: opts.log ?? silentLogger,
    };
    this.member = new LeaderElector(kc, {
      ...common,
      name: memberLeaseName(opts.lease, opts.identity),
      labels: { ...group, [SHARD_ROLE_LABEL]: "member" },
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    });
    this.electors = Array.from(
      { length: opts.shards },
      (_, shard) =>
        new LeaderElector(kc, {
          ...common,
          name: shardLeaseName(opts.lease, shard),
          labels: { ...group, [SHARD_ROLE_LABEL]: "shard", [SHARD_LABEL]: String(shard) },
          mayAcquire: () => !this.stopped && this.held().length < this.share,
          onStartedLeading: () => opts.onAcquired(shard),
          onStoppedLeading: () => opts.onLost(shard, "lost"),
        }),
    );
  }

  get shards(): number {
    return this.opts.shards;
  }

  /** ceil(shards / live members), as of the last look at the member Leases. */
  get share(): number {
    return shardShare(this.opts.shards, this.live);
  }

  get liveReplicas(): number {
    return this.live;
  }

  holds(shard: number): boolean {
    return this.electors[shard]?.isLeader ?? false;
  }

  held(): number[] {
    return this.electors.flatMap((e, i) => (e.isLeader ? [i] : []));
  }

  /** The elector of a shard's Lease (it records the holders of the shard's stacks: holders.ts). */
  electorOf(shard: number): LeaderElector | undefined {
    return this.electors[shard];
  }

  start(): void {
    this.stopped = false;
    this.member.start();
    // The first look at the members before any shard is taken: a replica that starts
    // beside live ones takes its share, not every free shard it sees first.
    void this.balance().finally(() => {
      if (this.stopped) return;
      for (const e of this.electors) e.start();
      this.schedule();
    });
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.balance().finally(() => {
        if (!this.stopped) this.schedule();
      });
    }, this.durationMs / 5);
  }

  /** Counts the live members; hands over the surplus when others joined. */
  private async balance(): Promise<void> {
    try {
      // One list of the group's Leases: the members say how many replicas live, and each
      // shard elector takes it as its observation (a replica at its share reads no Lease).
      const list = await this.api.listNamespacedLease({
        namespace: this.opts.namespace,
        labelSelector: `${SHARD_GROUP_LABEL}=${this.opts.lease}`,
      });
      for (const l of list.items) {
        if (l.metadata?.labels?.[SHARD_ROLE_LABEL] !== "shard") continue;
        this.electors[Number(l.metadata.labels[SHARD_LABEL])]?.observe(l);
      }
      const now = Date.now();
      const self = memberLeaseName(this.opts.lease, this.opts.identity);
      const members = list.items.filter((l) => l.metadata?.labels?.[SHARD_ROLE_LABEL] === "member");
      const alive = members.filter((l) => {
        if (l.metadata?.name === self) return false;
        const renew = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
        const ms = (l.spec?.leaseDurationSeconds ?? 0) * 1000;
        return (l.spec?.holderIdentity ?? "") !== "" && renew + ms > now;
      });
      this.live = 1 + alive.length;
    } catch (err) {
      this.log.warn("could not list the member leases", { error: errorMessage(err) });
      return;
    }
    if (this.stopped || this.handingOver) return;
    const surplus = surplusShards(this.held(), this.share);
    if (surplus.length === 0) return;
    this.handingOver = true;
    try {
      for (const shard of surplus) {
        if (this.stopped) break;
        this.log.info("handing a shard over", { shard, live: this.live, share: this.share });
        await this.opts.onLost(shard, "handover");
        await this.electors[shard]!.release().catch((err: unknown) =>
          // Its work is stopped either way; the Lease then expires for the others to take.
          this.log.warn("could not release a shard's Lease", { shard, error: errorMessage(err) }),
        );
      }
    } finally {
      this.handingOver = false;
    }
  }

  /** Stops campaigning; every held shard's work is stopped (onLost "stop"), then its Lease released. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const held = this.held();
    for (const e of this.electors) e.stopCampaigning();
    await Promise.all(held.map((s) => this.opts.onLost(s, "stop")));
    await Promise.all(this.electors.map((e) => e.stop()));
    await this.member.stop();
  }
}
