// The HTTP layer's share of the telemetry: each request in a span (the parent of its service call's, store
// transaction's and key operations' spans) and, when answered, counted and timed by route template, method
// and status code. Only what is on: with metrics and traces off no hook is added.
// Invariant: the route is the template the route was declared with (/v1/cards/:publicToken/cvv/verify), never
// the URL the client sent, which holds card tokens; an unknown URL is "unmatched". No header, query or body.
import { context, type Span, SpanStatusCode, trace } from "@opentelemetry/api";
import type { FastifyInstance } from "fastify";
import type { Telemetry } from "../telemetry/instrument.js";

declare module "fastify" {
  interface FastifyRequest {
    span?: Span;
  }
}

export function registerTelemetryHooks(app: FastifyInstance, telemetry: Telemetry): void {
  const { metrics, tracer } = telemetry;
  if (!metrics && !tracer) return;
  if (tracer) {
    // Registered before every other hook, so authentication, the handler and its service call run in its context.
    app.addHook("onRequest", (request, _reply, done) => {
      const route = request.routeOptions.url;
      const span = tracer.startSpan(`${request.method} ${route ?? "unmatched"}`, {
        kind: 1, // SpanKind.SERVER
        attributes: { "http.request.method": request.method, "http.route": route ?? "unmatched" },
      });
      request.span = span;
      context.with(trace.setSpan(context.active(), span), done);
    });
    app.addHook("onRequestAbort", (request, done) => {
      request.span?.setStatus({ code: SpanStatusCode.ERROR, message: "aborted" });
      request.span?.end();
      done();
    });
  }
  app.addHook("onResponse", (request, reply, done) => {
    metrics?.httpRequest(
      request.routeOptions.url,
      request.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    const span = request.span;
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}
