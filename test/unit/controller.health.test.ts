// The controller's health view: status.capabilities is a count a client would see, so it
// is withheld while some backend that is up has not been listed yet.
import assert from "node:assert/strict";
import { observeHealth } from "../../controller/health.js";
import { HealthMonitor } from "../../health/monitor.js";
import type { ProbeResult, ProbeTarget } from "../../health/probe.js";
import { down, listed, until } from "./probefakes.js";
import type { BackendStatus } from "../../controller/status.js";
import { buildFor, example, vmcpOf } from "./helpers.js";

describe("controller health view: capability counts", () => {
  const objects = example("basic");
  const vmcp = vmcpOf(objects, "engineering-tools");
  const built = buildFor(objects, "engineering-tools");
  const names = built.discovery.backends.map((b) => b.name);
  const noSecret = async () => undefined;

  it("counts nothing until every backend that is up has been listed", async function () {
    assert.ok(names.length >= 2, "the example has several backends");
    const [late = "", ...early] = names;
    let release: (r: ProbeResult) => void = () => {};
    const held = new Promise<ProbeResult>((r) => (release = r));
    const probed = new Set<string>();
    const monitor = new HealthMonitor({
      startSpreadMs: 0,
      probe: async (t: ProbeTarget) => {
        probed.add(t.name);
        return t.name === late ? held : listed([`${t.name}-tool`]);
      },
    });
    try {
      const view = () => observeHealth(monitor, noSecret, "k", vmcp, built, [], undefined);
      await view();
      await until(() => early.every((n) => probed.has(n)) && probed.has(late));
      await until(() => (monitor.snapshot("k") ?? []).filter((h) => h.toolNames).length === early.length);
      const partial = await view();
      assert.equal(partial.capabilities, undefined, "a partial count is not reported");
      release(listed([`${late}-tool`]));
      await until(() => (monitor.snapshot("k") ?? []).every((h) => h.toolNames));
      const full = await view();
      assert.equal(full.capabilities?.tools, names.length, "one tool per backend, prefixed apart");
    } finally {
      await monitor.stop();
    }
  });

  it("a backend that is down does not hold the count back", async function () {
    const [gone] = names;
    const monitor = new HealthMonitor({
      startSpreadMs: 0,
      probe: async (t: ProbeTarget) => (t.name === gone ? down : listed([`${t.name}-tool`])),
    });
    try {
      // carried over as unavailable from the last status, so one more failure keeps it down
      const previous = names.map((name): BackendStatus => ({
        name,
        url: built.discovery.backends.find((b) => b.name === name)!.url,
        status: name === gone ? "unavailable" : "unknown",
        consecutiveFailures: name === gone ? 3 : 0,
      }));
      const view = () => observeHealth(monitor, noSecret, "k", vmcp, built, [], previous);
      await view();
      await until(() => (monitor.snapshot("k") ?? []).every((h) => h.status !== "unknown"));
      const v = await view();
      assert.equal(v.capabilities?.tools, names.length - 1);
    } finally {
      await monitor.stop();
    }
  });
});
