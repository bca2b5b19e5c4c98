// Scripted probe results and a poll, shared by the unit tests that drive a HealthMonitor.
import type { ProbeResult } from "../../health/probe.js";

/** A ready backend that listed these tools. */
export const listed = (tools: string[]): ProbeResult => ({
  status: "ready",
  latencyMs: 1,
  counts: { tools: tools.length, resources: 0, prompts: 0 },
  capabilitiesKnown: true,
  toolNames: tools,
  message: "ok",
});

export const down: ProbeResult = {
  status: "unavailable",
  latencyMs: 1,
  counts: { tools: 0, resources: 0, prompts: 0 },
  capabilitiesKnown: false,
  toolNames: [],
  message: "connection refused",
};

export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
