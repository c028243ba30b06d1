// OpenTelemetry traces, only when the operator asks for them. With an OTLP endpoint configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; config.ts decides, see
// docs/configuration.md), spans go through a batch processor to the OTLP/HTTP exporter, which reads the other
// standard OTEL_EXPORTER_OTLP_* variables itself (headers, timeout, compression), as the sampler reads
// OTEL_TRACES_SAMPLER and the resource OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Without one, no
// provider is registered and no code path is wrapped: nothing is exported and nothing is slowed.
// Invariant: span names and attributes are route templates, service and key-operation names, fixed outcomes —
// never a URL sent, a card token, a PAN, a secret or a key id (telemetry/instrument.ts, http/telemetry.ts).
import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-node";

export const TRACER_NAME = "cardvault";

export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered and stops the provider. */
  shutdown(): Promise<void>;
}

/**
 * A registered tracer provider (AsyncLocalStorage context, so a request's spans nest) exporting through
 * `processor`, by default a batch processor over the OTLP/HTTP exporter. Tests pass a SimpleSpanProcessor over
 * an InMemorySpanExporter.
 */
export function startTracing(options: { processor?: SpanProcessor; exporter?: SpanExporter } = {}): Tracing {
  const processor = options.processor ?? new BatchSpanProcessor(options.exporter ?? new OTLPTraceExporter());
  const provider = new NodeTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ "service.name": "cardvault" }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [processor],
  });
  provider.register();
  return {
    tracer: provider.getTracer(TRACER_NAME),
    shutdown: () => provider.shutdown(),
  };
}
