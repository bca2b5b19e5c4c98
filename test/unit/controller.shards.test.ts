// The pure parts of sharding and fencing: which shard a key belongs to, a replica's share,
// what it hands over, Lease names, and when a recorded lock holder still holds its Lease.
import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import {
  HOLDERS_ANNOTATION,
  holdersOf,
  holderStillHolds,
  mayBreakLock,
  withHolders,
  type HolderRecord,
} from "../../controller/holders.js";
import { memberLeaseName, shardOf, shardShare, surplusShards } from "../../controller/shards.js";

describe("controller shards", () => {
  it("maps a key to one fixed shard, the same in every process (FNV-1a of namespace/name)", () => {
    // Fixed values: a change of the hash would move every VirtualMCPServer to another shard
    // while replicas of two versions run side by side.
    assert.equal(shardOf("default/gw", 4), shardOf("default/gw", 4));
    assert.deepEqual(
      ["default/gw", "team-a/search", "team-b/search", "x/y"].map((k) => shardOf(k, 16)),
      [1, 3, 8, 3], // FNV-1a as specified (checked against an independent implementation)
    );
    assert.equal(shardOf("anything/at-all", 1), 0);
  });

  it("spreads 1,000 keys over 8 shards within 25 % of the mean", () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 1000; i++) counts[shardOf(`team-${i % 37}/vmcp-${i}`, 8)]!++;
    for (const c of counts) assert.ok(c > 125 * 0.75 && c < 125 * 1.25, `counts ${counts.join(" ")}`);
  });

  it("a replica's share is ceil(shards / live replicas); the surplus is the highest shards", () => {
    assert.equal(shardShare(4, 3), 2);
    assert.equal(shardShare(3, 3), 1);
    assert.equal(shardShare(4, 0), 4);
    assert.deepEqual(surplusShards([3, 0, 2, 1], 2), [2, 3]);
    assert.deepEqual(surplusShards([1], 2), []);
  });

  it("member Lease names are DNS subdomains", () => {
    assert.equal(
      memberLeaseName("vmcp-operator", "Node_1.example-4711"),
      "vmcp-operator-member-node-1.example-4711",
    );
    assert.equal(memberLeaseName("vmcp-operator", "___"), "vmcp-operator-member-replica");
  });

  it("a lock holder still holds its Lease only with the same identity, the same term, and a live renewal", () => {
    const rec: HolderRecord = {
      identity: "a",
      lease: "ns/l",
      transitions: 3,
      pid: 1,
      started: "2026-01-01T00:00:00Z",
      op: "up",
      at: "2026-01-01T00:00:01Z",
    };
    const now = Date.parse("2026-01-01T00:01:00Z");
    const live = {
      holderIdentity: "a",
      leaseTransitions: 3,
      renewTime: new Date(now - 5_000),
      durationSeconds: 15,
    };
    assert.equal(holderStillHolds(rec, live, now), true);
    assert.equal(holderStillHolds(rec, { ...live, holderIdentity: "b" }, now), false, "another holder");
    assert.equal(holderStillHolds(rec, { ...live, leaseTransitions: 4 }, now), false, "a later term");
    assert.equal(
      holderStillHolds(rec, { ...live, renewTime: new Date(now - 20_000) }, now),
      false,
      "expired",
    );
    assert.equal(holderStillHolds(rec, undefined, now), false, "no Lease");
  });

  describe("holder records on the Leases (every state backend)", () => {
    const now = Date.parse("2026-01-01T00:01:00Z");
    const self = { identity: "b", pid: 20, started: "2026-01-01T00:00:30Z" };
    const record = (
      identity: string,
      transitions: number,
      extra: Partial<HolderRecord> = {},
    ): HolderRecord => ({
      identity,
      lease: "ns/vmcp-operator-shard-1",
      transitions,
      pid: 10,
      started: "2026-01-01T00:00:00Z",
      op: "up",
      at: "2026-01-01T00:00:50Z",
      ...extra,
    });
    const lease = (
      name: string,
      holder: string,
      transitions: number,
      records: Record<string, HolderRecord>,
      renewedMsAgo = 1_000,
    ): V1Lease => ({
      metadata: {
        name,
        annotations: withHolders({ other: "kept" }, new Map(Object.entries(records))),
      },
      spec: {
        holderIdentity: holder,
        leaseTransitions: transitions,
        leaseDurationSeconds: 15,
        renewTime: new Date(now - renewedMsAgo) as never,
      },
    });

    it("round-trips through one annotation beside the others, and disappears with the last record", () => {
      const recs = new Map([["ns.gw", record("a", 3)]]);
      const ann = withHolders({ other: "kept" }, recs);
      assert.equal(ann?.other, "kept");
      assert.deepEqual(holdersOf({ metadata: { annotations: ann } }), recs);
      assert.deepEqual(withHolders(ann, new Map()), { other: "kept" });
      assert.equal(withHolders({ [HOLDERS_ANNOTATION]: "{}" }, new Map()), undefined);
      assert.equal(holdersOf({ metadata: { annotations: { [HOLDERS_ANNOTATION]: "not json" } } }).size, 0);
    });

    it("a lock stays while a record names its stack on a Lease its writer still holds, in the same term", () => {
      const live = lease("vmcp-operator-shard-1", "a", 3, { "ns.gw": record("a", 3) });
      assert.equal(mayBreakLock("ns.gw", [live], self, now), false, "a live holder");
      assert.equal(mayBreakLock("ns.other", [live], self, now), true, "no record names that stack");
      assert.equal(mayBreakLock("ns.gw", [], self, now), true, "no Lease carries a record");
    });

    it("a lock is broken once the record's writer lost that Lease: taken over, a later term, or expired", () => {
      const rec = { "ns.gw": record("a", 3) };
      assert.equal(mayBreakLock("ns.gw", [lease("l", "b", 4, rec)], self, now), true, "another holder");
      assert.equal(mayBreakLock("ns.gw", [lease("l", "a", 4, rec)], self, now), true, "a later term");
      assert.equal(mayBreakLock("ns.gw", [lease("l", "a", 3, rec, 20_000)], self, now), true, "expired");
    });

    it("this very process's own record never keeps its lock (its operation was fenced)", () => {
      const own = record("b", 7, { pid: self.pid, started: self.started });
      assert.equal(mayBreakLock("ns.gw", [lease("l", "b", 7, { "ns.gw": own })], self, now), true);
      // The same identity with another pid is another process: its record counts.
      const other = record("b", 7, { pid: 99, started: self.started });
      assert.equal(mayBreakLock("ns.gw", [lease("l", "b", 7, { "ns.gw": other })], self, now), false);
    });

    it("a live record on any of the Leases keeps the lock (replicas of two shard counts during a rollout)", () => {
      const dead = lease("vmcp-operator-shard-1", "c", 5, { "ns.gw": record("a", 3) });
      const live = lease("vmcp-operator-shard-0", "a", 2, { "ns.gw": record("a", 2) });
      assert.equal(mayBreakLock("ns.gw", [dead, live], self, now), false);
      assert.equal(mayBreakLock("ns.gw", [dead], self, now), true);
    });
  });
});
