// The Prometheus metrics of one process (prom-client, text exposition format), in a registry of its own: created
// by the composition root when metrics are on (CARDVAULT_METRICS_LISTEN) and handed to the layers that record
// them, like the clock and the logger; nothing here is a global. What each layer records:
// - http/telemetry.ts: every answered request by route template, method and status, with its duration;
// - the audit trail, once its transaction has committed (telemetry/instrument.ts): verify outcomes, counters
//   blocked and unblocked, compromised secrets, rate-limit refusals by class, CVV rotations;
// - the store: transaction duration, commit duration and (SQLite) how many units shared a group commit;
// - the key provider wrapper: each operation's duration; the webhook repository: each attempt's outcome;
// - at scrape time, from the store: the rotation scheduler's lag and the webhook queue's depth;
// - process metrics (prom-client's collectDefaultMetrics: CPU, memory, event-loop lag, GC, handles).
// Invariant: no label ever holds a card token, a PAN, a secret, a key id or a URL. Every label value is from a
// fixed set (outcomes, secrets, classes, operation names, route templates as declared, never the URL a client
// sent), except the tenant id, which is capped: the first MAX_TENANT_LABELS tenants seen get their own label
// value, any later one is counted as "other". Tenants only reach a counter after their token verified in a
// registered tenant, so the values are tenants the operator added.
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { memo } from "../lib/memo.js";
import type { AuditEntry } from "../services/audit.js";
import { SeriesHistogram } from "./histogram.js";

/** Distinct tenant label values per process; past it, "other" (bounded series whatever the tenant count). */
export const MAX_TENANT_LABELS = 100;
export const OTHER_TENANT = "other";

/** Seconds: sub-millisecond key operations up to multi-second stalls. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const GROUP_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

const SECRETS = new Set(["cvv", "pin"]);
const VERIFY_OUTCOMES = new Set(["match", "mismatch", "blocked"]);
const RATE_LIMIT_CLASSES = new Set(["verify", "reveal", "secure-data", "manage"]);
/** Methods counted by name; any other is "other" (the last). */
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];

/** What the scrape asks the store for (runtime.ts wires them once the store is open). */
export interface BacklogSources {
  /** Seconds since the oldest automatic rotation fell due, 0 when none is waiting. */
  rotationLagSeconds(): Promise<number>;
  /** Webhook deliveries waiting for an attempt (pending). */
  webhookQueueDepth(): Promise<number>;
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const httpDuration = new SeriesHistogram(
    "cardvault_http_request_duration_seconds",
    "HTTP requests answered, by route template (never the URL sent), method and status code",
    ["route", "method", "status_code"],
    LATENCY_BUCKETS,
    registry,
  );
  const verifies = new Counter({
    name: "cardvault_verify_total",
    help: "CVV and PIN verifications committed, by secret, outcome (match, mismatch, blocked) and tenant",
    labelNames: ["secret", "outcome", "tenant"],
    registers,
  });
  const blocked = new Counter({
    name: "cardvault_counter_blocked_total",
    help: "Try counters blocked: by the wrong try that used up the last one (wrong_tries) or by a request",
    labelNames: ["secret", "reason", "tenant"],
    registers,
  });
  const unblocked = new Counter({
    name: "cardvault_counter_unblocked_total",
    help: "Try counters unblocked by a request",
    labelNames: ["secret", "tenant"],
    registers,
  });
  const compromised = new Counter({
    name: "cardvault_secret_compromised_total",
    help: "Secrets compromised: the wrong-try budget spent (unblock refused until the secret changes)",
    labelNames: ["secret", "tenant"],
    registers,
  });
  const rateLimited = new Counter({
    name: "cardvault_rate_limited_total",
    help: "Attempts refused by a rate limit (429), by the route's rate-limit class and the limit passed",
    labelNames: ["class", "scope", "tenant"],
    registers,
  });
  const rotations = new Counter({
    name: "cardvault_cvv_rotations_total",
    help: "CVV rotations committed, by type (automatic: the scheduler; manual: on request)",
    labelNames: ["type"],
    registers,
  });
  const webhookAttempts = new Counter({
    name: "cardvault_webhook_deliveries_total",
    help: "Webhook delivery attempts recorded, by outcome (succeeded, retrying, failed: no attempt left)",
    labelNames: ["outcome"],
    registers,
  });
  const transactions = new SeriesHistogram(
    "cardvault_store_transaction_duration_seconds",
    "Store transactions, from start to committed or rolled back (group commit included)",
    ["outcome"],
    LATENCY_BUCKETS,
    registry,
  );
  const commits = new SeriesHistogram(
    "cardvault_store_commit_duration_seconds",
    "COMMIT statements (on SQLite one per group of transactions)",
    [],
    LATENCY_BUCKETS,
    registry,
  ).observer({});
  const groupSize = new SeriesHistogram(
    "cardvault_store_commit_group_size",
    "Units of work (transactions, lone writes) sharing one COMMIT (SQLite group commit; 1 on PostgreSQL)",
    [],
    GROUP_BUCKETS,
    registry,
  ).observer({});
  const keyOperations = new SeriesHistogram(
    "cardvault_key_operation_duration_seconds",
    "Key provider operations, by operation",
    ["operation", "outcome"],
    LATENCY_BUCKETS,
    registry,
  );

  // Route template → method and status → observer: a request's observer is found without building a key.
  const httpRoute = memo((route: string) =>
    memo((methodAndStatus: number) =>
      httpDuration.observer({
        route,
        method: HTTP_METHODS[methodAndStatus % HTTP_METHODS.length]!,
        status_code: String(Math.floor(methodAndStatus / HTTP_METHODS.length)),
      }),
    ),
  );
  // An operation's two observers, resolved once: a device session's timed operations are wrapped per session.
  const keyObservers = memo((operation: string) => ({
    ok: keyOperations.observer({ operation, outcome: "ok" }),
    error: keyOperations.observer({ operation, outcome: "error" }),
  }));
  const transactionObserved = {
    commit: transactions.observer({ outcome: "commit" }),
    rollback: transactions.observer({ outcome: "rollback" }),
  };

  let backlog: BacklogSources | undefined;
  new Gauge({
    name: "cardvault_rotation_lag_seconds",
    help: "Age of the oldest automatic CVV rotation that is due and not done (0: the scheduler is keeping up)",
    registers,
    async collect() {
      if (backlog) this.set(await backlog.rotationLagSeconds());
    },
  });
  new Gauge({
    name: "cardvault_webhook_queue_depth",
    help: "Webhook deliveries waiting for an attempt (pending, due now or later)",
    registers,
    async collect() {
      if (backlog) this.set(await backlog.webhookQueueDepth());
    },
  });

  const tenants = new Set<string>();
  const tenantLabel = (id: string) => {
    if (tenants.has(id)) return id;
    if (tenants.size >= MAX_TENANT_LABELS) return OTHER_TENANT;
    tenants.add(id);
    return id;
  };

  return {
    registry,
    contentType: registry.contentType,
    /** The exposition text: what GET /metrics answers. */
    scrape: () => registry.metrics(),
    setBacklogSources(sources: BacklogSources) {
      backlog = sources;
    },

    httpRequest(route: string | undefined, method: string, statusCode: number, seconds: number) {
      const methodIndex = HTTP_METHODS.indexOf(method);
      const byMethodAndStatus = httpRoute(route ?? "unmatched");
      byMethodAndStatus(
        statusCode * HTTP_METHODS.length + (methodIndex === -1 ? HTTP_METHODS.length - 1 : methodIndex),
      )(seconds);
    },

    /** One committed audit record (see the header): only fixed words of it become label values. */
    audited(tenantId: string, entry: AuditEntry) {
      const [subject, verb] = entry.action.split(".", 2) as [string, string | undefined];
      if (entry.action === "rate_limit.blocked") {
        const kind = String(entry.details?.kind);
        const scope = entry.details?.limitedBy === "card" ? "card" : "tenant";
        rateLimited.inc({
          class: RATE_LIMIT_CLASSES.has(kind) ? kind : "other",
          scope,
          tenant: tenantLabel(tenantId),
        });
        return;
      }
      if (entry.action === "cvv.rotate") {
        rotations.inc({ type: entry.details?.rotationType === "AUTOMATIC" ? "automatic" : "manual" });
        return;
      }
      if (!SECRETS.has(subject)) return;
      const secret = subject;
      switch (verb) {
        case "verify": {
          if (!VERIFY_OUTCOMES.has(entry.outcome)) return;
          const tenant = tenantLabel(tenantId);
          verifies.inc({ secret, outcome: entry.outcome, tenant });
          // The wrong try that used up the last one (or spent the budget) blocks the counter.
          const verify = entry.action === "cvv.verify" || entry.action === "pin.verify";
          if (verify && entry.outcome === "mismatch" && entry.details?.remainingTries === 0) {
            blocked.inc({ secret, reason: "wrong_tries", tenant });
          }
          return;
        }
        case "block":
          blocked.inc({ secret, reason: "request", tenant: tenantLabel(tenantId) });
          return;
        case "unblock":
          unblocked.inc({ secret, tenant: tenantLabel(tenantId) });
          return;
        case "compromised":
          compromised.inc({ secret, tenant: tenantLabel(tenantId) });
          return;
      }
    },

    /** An attempt recorded with the delivery's status after it: succeeded, pending (to retry) or failed. */
    webhookAttempt(status: string) {
      webhookAttempts.inc({
        outcome: status === "succeeded" ? "succeeded" : status === "pending" ? "retrying" : "failed",
      });
    },

    transaction(outcome: "commit" | "rollback", seconds: number) {
      transactionObserved[outcome](seconds);
    },

    commit(seconds: number, units: number) {
      commits(seconds);
      groupSize(units);
    },

    /** The observer of one key operation's durations (seconds) with that outcome: resolve once, call often. */
    keyOperation(operation: string, outcome: "ok" | "error"): (seconds: number) => void {
      return keyObservers(operation)[outcome];
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
