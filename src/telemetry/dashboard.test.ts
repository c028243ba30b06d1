// The dashboard (docs/grafana-dashboard.json) and the operating page (docs/operating.md) query only metrics
// this build exports, and the page's table lists every cardvault metric: a renamed metric fails here, not on an
// operator's empty panel.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMetrics } from "./metrics.js";

const root = join(import.meta.dirname, "..", "..");
const exported = new Set(
  createMetrics()
    .registry.getMetricsAsArray()
    .map((m) => m.name),
);
/** cardvault_… and process/nodejs names a text mentions, without the histogram series' suffixes. */
function metricNames(text: string): Set<string> {
  return new Set(
    [...text.matchAll(/\b((?:cardvault|nodejs|process)_[a-z0-9_]+)/g)].map((m) =>
      m[1]!.replace(/_(bucket|count|sum)$/, ""),
    ),
  );
}

describe("docs on the metrics", () => {
  it("the Grafana dashboard queries only exported metrics", () => {
    const dashboard = JSON.parse(readFileSync(join(root, "docs", "grafana-dashboard.json"), "utf8"));
    const exprs = JSON.stringify(dashboard.panels);
    const unknown = [...metricNames(exprs)].filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
    expect(metricNames(exprs).size).toBeGreaterThan(15);
  });

  it("docs/operating.md names every cardvault metric, and no other", () => {
    const page = readFileSync(join(root, "docs", "operating.md"), "utf8");
    const named = metricNames(page);
    expect([...named].filter((name) => !exported.has(name) && !/^(process|nodejs)_$/.test(name))).toEqual([]);
    expect([...exported].filter((name) => name.startsWith("cardvault_") && !named.has(name))).toEqual([]);
  });
});
