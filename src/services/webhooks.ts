// Webhook endpoints of a tenant and the record of their deliveries. The signing secret is drawn here, sealed
// by the key provider before it is stored, and shown once, in the answer to the creation; no list, audit
// record, event or log carries it. Creation and deletion are audited in their own transaction.
import { randomBytes } from "node:crypto";
import { SECRET_PREFIX } from "../client/verify-webhook.js";
import { AppError, validationFailed } from "../domain/errors.js";
import { type DeliveryStatus, hostOf, parseWebhookUrl, type WebhookFormat } from "../domain/webhooks.js";
import { EVENT_TYPES } from "../events/outbox.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { Store } from "../store/db.js";
import type { WebhookDeliveryRow, WebhookEndpointRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { WebhookRepo } from "../store/webhook-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { assertCursor, type Page, pageOf } from "./pagination.js";

export interface WebhookServiceDeps {
  store: Pick<Store, "transaction">;
  webhooks: Pick<
    WebhookRepo,
    "insertEndpoint" | "findEndpoint" | "listEndpoints" | "deleteEndpoint" | "listDeliveries"
  >;
  tenants: Pick<TenantRepo, "find">;
  keys: Pick<KeyProvider, "sealWebhookSecret">;
  record: AuditRecorder;
  clock: Clock;
  /** Live endpoints a tenant may have (CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT). */
  endpointsPerTenant: number;
}

export interface NewWebhookEndpoint {
  url: string;
  eventTypes?: string[];
  description?: string;
  /** cardvault (default) or pismo: whose event schema the endpoint receives. */
  format?: WebhookFormat;
}

export interface WebhookEndpointView {
  id: string;
  url: string;
  description: string | null;
  /** null: every event type. */
  eventTypes: string[] | null;
  format: WebhookFormat;
  createdAt: string;
  /** Failed attempts in a row; a delivered one sets it back to 0. */
  consecutiveFailures: number;
  /** While in the future the circuit is open: no attempt is made, deliveries wait; then one probes. */
  circuitOpenUntil: string | null;
}

export interface WebhookDeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;
}

const notFound = () => new AppError("not_found", "No webhook endpoint with this id.");

function checkedEventTypes(given: string[] | undefined): string[] | null {
  if (given === undefined) return null;
  const unknown = given.filter((t) => !(EVENT_TYPES as string[]).includes(t));
  if (unknown.length > 0) {
    throw validationFailed(
      "eventTypes",
      `Unknown event type ${unknown.join(", ")}; known types: ${EVENT_TYPES.join(", ")}.`,
    );
  }
  return [...new Set(given)];
}

function endpointView(row: WebhookEndpointRow): WebhookEndpointView {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types === null ? null : (JSON.parse(row.event_types) as string[]),
    format: row.format as WebhookFormat,
    createdAt: row.created_at,
    consecutiveFailures: row.consecutive_failures,
    circuitOpenUntil: row.circuit_open_until,
  };
}

function deliveryView(row: WebhookDeliveryRow): WebhookDeliveryView {
  return {
    id: row.id,
    eventId: row.event_id,
    eventType: row.event_type,
    status: row.status as DeliveryStatus,
    attempts: row.attempts,
    lastAttemptAt: row.last_attempt_at,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function createWebhookService(deps: WebhookServiceDeps) {
  async function findEndpoint(actor: Actor, id: string): Promise<WebhookEndpointRow> {
    const row = await deps.webhooks.findEndpoint(actor.tenantId, id);
    if (!row) throw notFound();
    return row;
  }

  return {
    async create(actor: Actor, input: NewWebhookEndpoint): Promise<WebhookEndpointView & { secret: string }> {
      const tenant = await deps.tenants.find(actor.tenantId);
      const url = parseWebhookUrl(input.url, tenant?.webhooks_allow_private === 1);
      const eventTypes = checkedEventTypes(input.eventTypes);
      const id = uuidv7(deps.clock);
      const secret = newWebhookSecret();
      const row: WebhookEndpointRow = {
        id,
        tenant_id: actor.tenantId,
        url: url.href,
        description: input.description ?? null,
        event_types: eventTypes === null ? null : JSON.stringify(eventTypes),
        format: input.format ?? "cardvault",
        secret_sealed: await deps.keys.sealWebhookSecret(secret, {
          tenantId: actor.tenantId,
          endpointId: id,
        }),
        created_at: deps.clock.now().toISOString(),
        deleted_at: null,
        consecutive_failures: 0,
        circuit_open_until: null,
      };
      await deps.store.transaction(async (tx) => {
        if (!(await deps.webhooks.insertEndpoint(row, deps.endpointsPerTenant, tx))) {
          throw new AppError(
            "webhook_endpoint_limit",
            `This tenant already has ${deps.endpointsPerTenant} webhook endpoints, the most it may have; delete one before adding another.`,
          );
        }
        // The host only: a receiver's URL may carry its own access token in the path or query.
        await deps.record(tx, actor, {
          action: "webhook_endpoint.create",
          outcome: "success",
          details: {
            endpointId: id,
            host: hostOf(url),
            eventTypes: eventTypes?.join(",") ?? "*",
            format: row.format as WebhookFormat,
          },
        });
      });
      return { ...endpointView(row), secret };
    },

    async list(
      actor: Actor,
      options: { cursor?: string; limit: number },
    ): Promise<Page<WebhookEndpointView>> {
      assertCursor(options.cursor);
      const rows = await deps.webhooks.listEndpoints(actor.tenantId, {
        after: options.cursor,
        limit: options.limit + 1,
      });
      return pageOf(rows, options.limit, endpointView);
    },

    async get(actor: Actor, id: string): Promise<WebhookEndpointView> {
      return endpointView(await findEndpoint(actor, id));
    },

    /** Deletes the endpoint (it is then not found) and cancels its pending deliveries. */
    async delete(actor: Actor, id: string): Promise<void> {
      await deps.store.transaction(async (tx) => {
        if (!(await deps.webhooks.deleteEndpoint(actor.tenantId, id, deps.clock.now().toISOString(), tx))) {
          throw notFound();
        }
        await deps.record(tx, actor, {
          action: "webhook_endpoint.delete",
          outcome: "success",
          details: { endpointId: id },
        });
      });
    },

    async deliveries(
      actor: Actor,
      endpointId: string,
      options: { cursor?: string; limit: number },
    ): Promise<Page<WebhookDeliveryView>> {
      assertCursor(options.cursor);
      await findEndpoint(actor, endpointId);
      const rows = await deps.webhooks.listDeliveries(actor.tenantId, endpointId, {
        after: options.cursor,
        limit: options.limit + 1,
      });
      return pageOf(rows, options.limit, deliveryView);
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
