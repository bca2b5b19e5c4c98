// The pure parts of sharding and fencing: which shard a key belongs to, a replica's share,
// what it hands over, Lease names, and when a recorded lock holder still holds its Lease.
import assert from "node:assert/strict";
import { holderStillHolds, type HolderRecord } from "../../engine/holder.js";
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
});
