// A Prometheus histogram for the request path, exposed through a prom-client registry like its own metrics.
// Why not prom-client's Histogram: it validates and hashes the label set on every observe, even on a child
// from labels(), at 0.6–0.9 µs and two objects a call, and the verify path observes five times a request
// (BENCHMARKS.md, "Telemetry on the verify path"). Here a label set is resolved once, by whoever
// observes it, to an observer whose call is a bucket search and three additions, allocating nothing.
// Invariant: the exposition is what prom-client's Histogram writes for the same observations (cumulative
// `_bucket` series with `le`, then `+Inf`, `_sum`, `_count`); a series appears once it has an observation.
import type { Histogram, LabelValues, Registry } from "prom-client";

interface Series<T extends string> {
  labels: LabelValues<T>;
  /** Observations per bucket (not cumulative): counts[i] holds those ≤ buckets[i] and > buckets[i - 1]. */
  counts: Float64Array;
  sum: number;
  count: number;
}

export class SeriesHistogram<T extends string> {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #series = new Map<string, Series<T>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly T[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    // prom-client's Registry reads a registered metric through its name and get() (the MetricObjectWithValues
    // its own Histogram.get() answers); this class keeps that contract, not the rest of Histogram's API.
    registry.registerMetric(this as unknown as Histogram<T>);
  }

  /** The observer of one label set (keep it: resolving costs a lookup, observing costs nothing more). */
  observer(labels: LabelValues<T>): (value: number) => void {
    const { buckets } = this;
    let series: Series<T> | undefined;
    return (value) => {
      series ??= this.#seriesOf(labels);
      let i = 0;
      while (i < buckets.length && value > buckets[i]!) i++;
      if (i < buckets.length) series.counts[i]!++;
      series.sum += value;
      series.count++;
    };
  }

  #seriesOf(labels: LabelValues<T>): Series<T> {
    const key = JSON.stringify(this.labelNames.map((name) => labels[name]));
    let series = this.#series.get(key);
    if (!series) {
      series = { labels: { ...labels }, counts: new Float64Array(this.buckets.length), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    return series;
  }

  async get() {
    const bucket = `${this.name}_bucket`;
    const values: { labels: LabelValues<string>; value: number; metricName: string }[] = [];
    for (const { labels, counts, sum, count } of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: bucket });
      });
      values.push(
        { labels: { le: "+Inf", ...labels }, value: count, metricName: bucket },
        { labels, value: sum, metricName: `${this.name}_sum` },
        { labels, value: count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** What the registry's resetMetrics() calls: every series back to zero (observers stay valid). */
  reset() {
    for (const series of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }
}
