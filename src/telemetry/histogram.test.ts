import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { SeriesHistogram } from "./histogram.js";

describe("SeriesHistogram", () => {
  it("writes what prom-client's Histogram writes for the same observations", async () => {
    const buckets = [0.001, 0.01, 0.1, 1];
    const values = [0, 0.0005, 0.001, 0.0011, 0.05, 0.1, 0.7, 1, 3, 250];
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({
      name: "h",
      help: "help text",
      labelNames: ["route", "outcome"],
      buckets,
      registers: [theirs],
    });
    const histogram = new SeriesHistogram("h", "help text", ["route", "outcome"], buckets, ours);
    const ok = histogram.observer({ route: "/v1/x", outcome: "ok" });
    const failed = histogram.observer({ route: "/v1/x", outcome: "error" });
    histogram.observer({ route: "/never", outcome: "ok" }); // resolved, never observed: no series
    for (const value of values) {
      reference.observe({ route: "/v1/x", outcome: "ok" }, value);
      ok(value);
    }
    reference.observe({ route: "/v1/x", outcome: "error" }, 0.02);
    failed(0.02);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_bucket{le="0.001",route="/v1/x",outcome="ok"} 3');

    ours.resetMetrics();
    ok(0.5);
    expect(await ours.metrics()).toContain('h_count{route="/v1/x",outcome="ok"} 1');
  });
});
