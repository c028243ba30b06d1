// The wrappers that instrument the layers from the outside, applied once by the composition root (runtime.ts)
// when metrics or traces are on; with both off nothing is wrapped and the hot path is the plain one.
// - the store: each transaction timed and traced, and what the layers noted during it (audit records, webhook
//   attempts) counted only once it has committed: a rolled-back transaction (a card that moved, a 429 after
//   the work) counts nothing, so the counters say what happened, not what was tried;
// - the key provider: each operation timed and traced by its name (never its arguments: cards, PINs, keys);
// - the services: each call a span named service.method.
// Invariant: labels and span attributes are names from the code, never a value a caller sent.
import { context, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import type { DeviceSession, KeyProvider } from "../keys/key-provider.js";
import type { Db, Store } from "../store/db.js";
import type { Metrics } from "./metrics.js";

export interface Telemetry {
  /** Prometheus metrics (metrics.ts); undefined when off. */
  metrics?: Metrics;
  /** OpenTelemetry tracer (tracing.ts); undefined when off. */
  tracer?: Tracer;
}

/** Runs `count` once the transaction `tx` belongs to has committed (at once outside a transaction). */
export type AfterCommit = (tx: Db, count: () => void) => void;

export interface InstrumentedStore extends Store {
  afterCommit: AfterCommit;
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Runs fn in a span that ends when its promise settles, marked as an error when it rejects. */
function inSpan<T>(tracer: Tracer, name: string, attributes: Record<string, string>, fn: () => Promise<T>) {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : "error" });
      throw error;
    } finally {
      span.end();
    }
  });
}

export function instrumentStore(store: Store, telemetry: Telemetry): InstrumentedStore {
  const { metrics, tracer } = telemetry;
  const pending = new WeakMap<object, (() => void)[]>();
  const system = store.kind === "sqlite" ? "sqlite" : "postgresql";
  const run = async <T>(fn: (tx: Db) => Promise<T>): Promise<T> => {
    const started = performance.now();
    const counts: (() => void)[] = [];
    let result: T;
    try {
      result = await store.transaction((tx) => {
        pending.set(tx, counts);
        return fn(tx);
      });
    } catch (error) {
      metrics?.transaction("rollback", seconds(started));
      throw error;
    }
    metrics?.transaction("commit", seconds(started));
    for (const count of counts) count();
    return result;
  };
  return {
    ...store,
    transaction: tracer
      ? (fn) => inSpan(tracer, "store.transaction", { "db.system.name": system }, () => run(fn))
      : run,
    afterCommit(tx, count) {
      const counts = pending.get(tx);
      if (counts) counts.push(count);
      else count();
    },
  };
}

/** The provider's operations that do work (the others only read its key list). */
const KEY_OPERATIONS: ReadonlySet<string> = new Set<string>([
  "issuePan",
  "sealPan",
  "panFingerprint",
  "deriveCvv",
  "deriveCvvBatch",
  "verifyCvv",
  "sealPin",
  "sealRandomPin",
  "openPin",
  "verifyPin",
  "verifyPinBlock",
  "reseal",
  "sealWebhookSecret",
  "openWebhookSecret",
] satisfies (keyof KeyProvider)[]);
const SESSION_OPERATIONS = new Set<string>(["open", "seal", "sign"] satisfies (keyof DeviceSession)[]);

/** An operation timed (metrics) and traced (a span `keys.<operation>`), by its name only. */
function timed<A extends unknown[], R>(
  telemetry: Telemetry,
  operation: string,
  call: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  const { metrics, tracer } = telemetry;
  // The operation's two series resolved once: the call itself allocates nothing for the metrics.
  const ok = metrics?.keyOperation(operation, "ok");
  const failed = metrics?.keyOperation(operation, "error");
  const measured = async (...args: A): Promise<R> => {
    const started = performance.now();
    try {
      const result = await call(...args);
      ok?.(seconds(started));
      return result;
    } catch (error) {
      failed?.(seconds(started));
      throw error;
    }
  };
  if (!tracer) return measured;
  const name = `keys.${operation}`;
  return (...args) => inSpan(tracer, name, { "cardvault.key_operation": operation }, () => measured(...args));
}

/**
 * `inner` seen through an object of its own whose `operations` are timed: everything else (the key list, a
 * session's replayId getter) is read from `inner` itself, its prototype. Built once, so a call costs one
 * wrapper and no lookup (the providers and sessions are closures: no method depends on `this`).
 */
function withTimedOperations<T extends object>(
  inner: T,
  operations: ReadonlySet<string>,
  prefix: string,
  telemetry: Telemetry,
): T {
  const outer = Object.create(inner) as T;
  for (const operation of operations) {
    const call = Reflect.get(inner, operation) as unknown;
    if (typeof call !== "function") continue;
    Object.defineProperty(outer, operation, {
      value: timed(telemetry, `${prefix}${operation}`, call as (...args: unknown[]) => Promise<unknown>),
    });
  }
  return outer;
}

/** The key provider with every operation timed and traced in one place; the same interface, the same keys. */
export function instrumentKeys(keys: KeyProvider, telemetry: Telemetry): KeyProvider {
  const outer = withTimedOperations(keys, KEY_OPERATIONS, "", telemetry);
  Object.defineProperty(outer, "deviceSession", {
    value: (request: Parameters<KeyProvider["deviceSession"]>[0]) =>
      withTimedOperations(keys.deviceSession(request), SESSION_OPERATIONS, "deviceSession.", telemetry),
  });
  return outer;
}

/**
 * Each service's calls in a span `<service>.<method>`, a child of the request's span and the parent of the
 * store transaction's and the key operations'. Only the names: a call's arguments are never recorded.
 */
export function traceServices<S extends Record<string, object>>(services: S, tracer: Tracer): S {
  const traced = {} as Record<string, object>;
  for (const [service, calls] of Object.entries(services)) {
    const methods = new Map<PropertyKey, unknown>();
    traced[service] = new Proxy(calls, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== "function" || typeof property !== "string") return value;
        if (!methods.has(property)) {
          const name = `${service}.${property}`;
          methods.set(property, (...args: unknown[]) => {
            const span = tracer.startSpan(name, { attributes: { "cardvault.service": service } });
            const finish = (error?: unknown) => {
              if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
              span.end();
            };
            try {
              const result = context.with(trace.setSpan(context.active(), span), () =>
                Reflect.apply(value, target, args),
              );
              if (result instanceof Promise) {
                return result.then(
                  (v) => {
                    finish();
                    return v;
                  },
                  (error: unknown) => {
                    finish(error ?? "error");
                    throw error;
                  },
                );
              }
              finish();
              return result;
            } catch (error) {
              finish(error ?? "error");
              throw error;
            }
          });
        }
        return methods.get(property);
      },
    });
  }
  return traced as S;
}
