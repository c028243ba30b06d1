// Traces with an in-memory exporter: a CVV verify is one trace, its request span the parent of the service
// call's span, which is the parent of the store transaction's and the key operation's; the names and attributes
// are templates and operation names, never the card's token, PAN or CVV. Without an exporter configured no
// tracer exists: nothing is wrapped.
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createTelemetry } from "../src/runtime.js";
import { startTracing, type Tracing } from "../src/telemetry/tracing.js";
import { expectedCvv, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let h: Harness;

beforeAll(async () => {
  tracing = startTracing({ processor: new SimpleSpanProcessor(exporter) });
  h = await createHarness({ telemetry: { tracer: tracing.tracer } });
});
afterAll(async () => {
  await h?.close();
  await tracing?.shutdown();
});

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe("traces", () => {
  it("nest a verify's request, service call, store transaction and key operation, and hold no secret", async () => {
    const card = await h.createCard();
    const cvv = await expectedCvv(h, card.publicToken);
    exporter.reset();
    const response = await h.call("POST", `/v1/cards/${card.publicToken}/cvv/verify`, { cvv });
    expect(response.json().result).toBe("match");

    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.find((s) => s.name === name);
    const request = byName("POST /v1/cards/:publicToken/cvv/verify")!;
    const service = byName("cvv.verify")!;
    const transaction = byName("store.transaction")!;
    const key = byName("keys.verifyCvv")!;
    expect([request, service, transaction, key].every(Boolean)).toBe(true);
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(parentOf(request)).toBeUndefined();
    expect(parentOf(service)).toBe(request.spanContext().spanId);
    expect(parentOf(transaction)).toBe(service.spanContext().spanId);
    expect(parentOf(key)).toBe(transaction.spanContext().spanId);
    expect(request.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/v1/cards/:publicToken/cvv/verify",
      "http.response.status_code": 200,
    });

    const text = JSON.stringify(
      spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })),
    );
    for (const secret of [card.publicToken, await panOf(h, card.publicToken)])
      expect(text).not.toContain(secret);
    expect(text).not.toMatch(new RegExp(`(?<![0-9])${cvv}(?![0-9])`));
  });

  it("is off unless an OTLP endpoint is configured", () => {
    const base = { CARDVAULT_JWT_SECRET: "x".repeat(40) };
    expect(loadConfig(base).tracing).toBe(false);
    expect(createTelemetry(loadConfig(base))).toMatchObject({ metrics: undefined, tracer: undefined });
    expect(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }).tracing).toBe(true);
    expect(
      loadConfig({ ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" }).tracing,
    ).toBe(true);
    expect(
      loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" })
        .tracing,
    ).toBe(false);
    expect(
      loadConfig({
        ...base,
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
        OTEL_TRACES_EXPORTER: "none",
      }).tracing,
    ).toBe(false);
    expect(() => loadConfig({ ...base, OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(/OTEL_TRACES_EXPORTER/);
  });
});

describe("configuration of the metrics listener", () => {
  it("is a host:port of its own", () => {
    const base = { CARDVAULT_JWT_SECRET: "x".repeat(40) };
    expect(loadConfig({ ...base, CARDVAULT_METRICS_LISTEN: "0.0.0.0:9464" }).metricsListen).toEqual({
      host: "0.0.0.0",
      port: 9464,
    });
    expect(loadConfig({ ...base, CARDVAULT_METRICS_LISTEN: "[::1]:9464" }).metricsListen).toEqual({
      host: "::1",
      port: 9464,
    });
    for (const bad of ["9464", "localhost", "host:99999", "http://127.0.0.1:9464"]) {
      expect(() => loadConfig({ ...base, CARDVAULT_METRICS_LISTEN: bad }), bad).toThrow(
        /CARDVAULT_METRICS_LISTEN/,
      );
    }
    expect(() =>
      loadConfig({ ...base, CARDVAULT_PORT: "8080", CARDVAULT_METRICS_LISTEN: "127.0.0.1:8080" }),
    ).toThrow(/not be the API's own address/);
  });
});
