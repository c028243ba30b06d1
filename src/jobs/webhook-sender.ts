// Delivers queued webhooks per Standard Webhooks: claims due deliveries under a lease (so several processes
// never send the same attempt at once), signs and POSTs each event with a connect timeout and a response
// timeout (an address that never completes a handshake fails fast), and records the outcome:
// 2xx ends it, anything else is retried on the back-off schedule until the last attempt fails it. The
// address is resolved and checked at every attempt, and the connection goes to that very address.
import { randomUUID } from "node:crypto";
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Logger } from "pino";
import { signWebhook } from "../client/verify-webhook.js";
import {
  blockedAddressReason,
  hostOf,
  nextAttemptAt,
  RETRY_DELAYS_MS,
  WEBHOOK_DEFAULTS,
} from "../domain/webhooks.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { AttemptOutcome, ClaimedDelivery, WebhookRepo } from "../store/webhook-repo.js";

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface WebhookSenderDeps {
  deliveries: Pick<WebhookRepo, "claimDue" | "finishAttempt">;
  keys: Pick<KeyProvider, "openWebhookSecret">;
  clock: Clock;
  /** Per attempt, from its start to the response headers; 10 s by default. */
  timeoutMs?: number;
  /** Per attempt, to have the connection ready (TCP, and TLS for https); 3 s by default, at most timeoutMs. */
  connectTimeoutMs?: number;
  /** Deliveries claimed (and sent concurrently) per batch; 20 by default. */
  batchSize?: number;
  retryDelaysMs?: readonly number[];
  /** Host name → addresses; the system resolver by default (tests map names to chosen addresses). */
  resolveHost?: (host: string) => Promise<ResolvedAddress[]>;
  logger?: Pick<Logger, "info" | "warn">;
}

/** What one attempt came to: a status code, or the class of error that stopped it. */
interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  /** A refusal by policy, not a failure of the receiver: retrying cannot help. */
  permanent?: boolean;
}

const USER_AGENT = "cardvault-webhooks/1";

const systemResolve = async (host: string): Promise<ResolvedAddress[]> =>
  lookup(host, { all: true, verbatim: true });

export function createWebhookSender(deps: WebhookSenderDeps) {
  const timeoutMs = deps.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs;
  const connectTimeoutMs = Math.min(deps.connectTimeoutMs ?? WEBHOOK_DEFAULTS.connectTimeoutMs, timeoutMs);
  const batchSize = deps.batchSize ?? 20;
  const delays = deps.retryDelaysMs ?? RETRY_DELAYS_MS;
  const resolveHost = deps.resolveHost ?? systemResolve;
  // A batch is sent concurrently, so one lease covers resolving plus the slowest attempt, with room to spare.
  const leaseMs = 2 * timeoutMs + 30_000;
  let stopping = false;
  let inFlight: Promise<unknown> = Promise.resolve();

  async function attempt(delivery: ClaimedDelivery): Promise<AttemptResult> {
    const url = new URL(delivery.url);
    const host = hostOf(url);
    let addresses: ResolvedAddress[];
    try {
      addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveHost(host);
    } catch (error) {
      return { statusCode: null, error: `dns_error: ${errorCode(error)}` };
    }
    if (addresses.length === 0) return { statusCode: null, error: "dns_error: no address" };
    if (delivery.webhooks_allow_private !== 1) {
      // Every address is checked, not only the one used: a name must not half-point inside.
      for (const { address } of addresses) {
        const reason = blockedAddressReason(address);
        if (reason) {
          return {
            statusCode: null,
            error: `blocked_address: ${host} resolves to a ${reason} address, which this tenant may not use`,
            permanent: true,
          };
        }
      }
    }
    const secret = await deps.keys.openWebhookSecret(delivery.secret_sealed, {
      tenantId: delivery.tenant_id,
      endpointId: delivery.endpoint_id,
    });
    const timestamp = Math.floor(deps.clock.now().getTime() / 1000);
    const headers = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(delivery.payload)),
      "user-agent": USER_AGENT,
      "webhook-id": delivery.event_id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(
        { id: delivery.event_id, timestamp, payload: delivery.payload },
        secret,
      ),
    };
    return post(url, addresses[0]!, headers, delivery.payload, { connectTimeoutMs, timeoutMs });
  }

  async function deliver(delivery: ClaimedDelivery, token: string): Promise<void> {
    const startedAt = deps.clock.now();
    let result: AttemptResult;
    try {
      result = await attempt(delivery);
    } catch (error) {
      // Our side failed (e.g. a key is missing): recorded and retried like a receiver failure.
      result = { statusCode: null, error: `internal_error: ${errorCode(error)}` };
    }
    const attempts = delivery.attempts + 1;
    const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    const next = ok || result.permanent ? null : nextAttemptAt(attempts, startedAt, delays);
    const outcome: AttemptOutcome = {
      status: ok ? "succeeded" : next ? "pending" : "failed",
      attempts,
      next_attempt_at: next?.toISOString() ?? null,
      last_attempt_at: startedAt.toISOString(),
      last_status_code: result.statusCode,
      last_error: ok ? null : result.error,
      updated_at: deps.clock.now().toISOString(),
    };
    await deps.deliveries.finishAttempt(delivery.id, token, outcome);
    // No URL (it may hold the receiver's own token), no payload, no secret.
    deps.logger?.info(
      {
        deliveryId: delivery.id,
        endpointId: delivery.endpoint_id,
        eventId: delivery.event_id,
        attempt: attempts,
        statusCode: result.statusCode,
        error: outcome.last_error,
        status: outcome.status,
      },
      "webhook attempt",
    );
  }

  async function sendBatch(): Promise<number> {
    const now = deps.clock.now();
    const token = randomUUID();
    const claimed = await deps.deliveries.claimDue({
      now: now.toISOString(),
      leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
      token,
      limit: batchSize,
    });
    await Promise.all(claimed.map((delivery) => deliver(delivery, token)));
    return claimed.length;
  }

  return {
    name: "webhook-sender",

    /** Sends every delivery due now, batch after batch, and returns how many attempts were made. */
    async runOnce(): Promise<number> {
      let total = 0;
      const pass = (async () => {
        while (!stopping) {
          const sent = await sendBatch();
          total += sent;
          if (sent < batchSize) break;
        }
      })();
      inFlight = pass;
      await pass;
      return total;
    },

    /** Takes no new batch and waits for the one in hand; unfinished claims expire with their lease. */
    async stop(): Promise<void> {
      stopping = true;
      await inFlight.catch(() => {});
    },
  };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  return error instanceof Error ? error.name : "unknown";
}

/** Status text as a receiver sent it, printable and short: it is a hint for people, never a body. */
function shortText(text: string | undefined): string {
  return (text ?? "").replace(/[^\x20-\x7e]/g, "").slice(0, 40);
}

/**
 * One POST to the address already checked (the lookup is pinned to it). The connection must be ready (TCP, and
 * TLS for https) within the connect timeout, so an address that never completes a handshake costs that much,
 * not the response timeout; the response headers must come within the response timeout of the start.
 */
function post(
  url: URL,
  pinned: ResolvedAddress,
  headers: Record<string, string>,
  body: string,
  limits: { connectTimeoutMs: number; timeoutMs: number },
): Promise<AttemptResult> {
  const pinnedLookup: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  return new Promise((resolve) => {
    let gaveUp: string | undefined;
    const request = (url.protocol === "https:" ? https : http).request(
      url,
      { method: "POST", headers, agent: false, lookup: pinnedLookup },
      (response) => {
        clearTimers();
        const statusCode = response.statusCode ?? 0;
        // The body is never read: it could echo what we sent, and we have no use for it.
        response.destroy();
        const ok = statusCode >= 200 && statusCode < 300;
        resolve({
          statusCode,
          error: ok ? null : `http_${statusCode} ${shortText(response.statusMessage)}`.trim(),
        });
      },
    );
    const giveUp = (reason: string) => () => {
      gaveUp = reason;
      request.destroy();
    };
    const connectTimer = setTimeout(
      giveUp(`connect_timeout: no connection within ${limits.connectTimeoutMs} ms`),
      limits.connectTimeoutMs,
    );
    const responseTimer = setTimeout(
      giveUp(`timeout: no response within ${limits.timeoutMs} ms`),
      limits.timeoutMs,
    );
    const clearTimers = () => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
    };
    request.once("socket", (socket) => {
      socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
    });
    request.on("error", (error) => {
      clearTimers();
      resolve({ statusCode: null, error: gaveUp ?? `network_error: ${errorCode(error)}` });
    });
    request.end(body);
  });
}
