// Native v1: webhook endpoints and their deliveries. The signing secret appears in one response only, the
// creation's; every other answer goes through a whitelist schema that has no secret field.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { WEBHOOK_FORMATS } from "../../domain/webhooks.js";
import { EVENT_TYPES } from "../../events/outbox.js";
import type { WebhookService } from "../../services/webhooks.js";
import { actorOf, errorResponses, ListQuery } from "./schemas.js";

const UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

const EndpointParams = Type.Object(
  { id: Type.String({ pattern: UUID, description: "The endpoint id returned at creation." }) },
  { additionalProperties: false },
);

const Format = Type.Union([Type.Literal(WEBHOOK_FORMATS[0]), Type.Literal(WEBHOOK_FORMATS[1])], {
  description:
    "Whose event schema the endpoint receives: cardvault (default, every event type) or pismo (Pismo's Card CVV changed event for CVV changes; no other event). See docs/webhooks.md.",
});

const NewEndpointBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: "https:// (or http://) URL that receives POSTs.",
    }),
    eventTypes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        minItems: 1,
        maxItems: 32,
        description: `Event types to receive (omit for all): ${EVENT_TYPES.join(", ")}.`,
      }),
    ),
    description: Type.Optional(Type.String({ maxLength: 500 })),
    format: Type.Optional(Format),
  },
  { additionalProperties: false },
);

const EndpointView = Type.Object({
  id: Type.String(),
  url: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  eventTypes: Type.Union([Type.Array(Type.String()), Type.Null()], {
    description: "null: every event type.",
  }),
  format: Format,
  createdAt: Type.String(),
  consecutiveFailures: Type.Integer({ description: "Failed attempts in a row; a delivered one resets it." }),
  circuitOpenUntil: Type.Union([Type.String(), Type.Null()], {
    description:
      "Circuit breaker: until this time no delivery is attempted (due ones wait, none is lost); then one probes.",
  }),
});

const CreatedEndpoint = Type.Object({
  ...EndpointView.properties,
  secret: Type.String({ description: "The signing secret (whsec_…), shown this once: store it now." }),
});

const DeliveryView = Type.Object({
  id: Type.String(),
  eventId: Type.String(),
  eventType: Type.String(),
  status: Type.Union([
    Type.Literal("pending"),
    Type.Literal("succeeded"),
    Type.Literal("failed"),
    Type.Literal("canceled"),
  ]),
  attempts: Type.Integer(),
  lastAttemptAt: Type.Union([Type.String(), Type.Null()]),
  lastStatusCode: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  nextAttemptAt: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

const pageOf = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export function registerWebhookRoutes(root: FastifyInstance, webhooks: WebhookService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const config = { scope: "webhooks:manage", rateLimit: false, cardParam: false } as const;
  const tags = ["webhooks"];

  app.post(
    "/v1/webhook-endpoints",
    {
      config,
      schema: {
        tags,
        summary: "Register an endpoint; the answer carries its signing secret, shown only this once.",
        body: NewEndpointBody,
        response: { 201: CreatedEndpoint, ...errorResponses },
      },
    },
    async (request, reply) => reply.status(201).send(await webhooks.create(actorOf(request), request.body)),
  );

  app.get(
    "/v1/webhook-endpoints",
    {
      config,
      schema: {
        tags,
        summary: "The tenant's webhook endpoints (never their secrets), a page at a time.",
        querystring: ListQuery,
        response: { 200: pageOf(EndpointView), ...errorResponses },
      },
    },
    async (request) =>
      webhooks.list(actorOf(request), {
        cursor: request.query.cursor,
        limit: Number(request.query.limit ?? 50),
      }),
  );

  app.get(
    "/v1/webhook-endpoints/:id",
    {
      config,
      schema: {
        tags,
        summary: "Read one webhook endpoint (never its secret).",
        params: EndpointParams,
        response: { 200: EndpointView, ...errorResponses },
      },
    },
    async (request) => webhooks.get(actorOf(request), request.params.id),
  );

  app.delete(
    "/v1/webhook-endpoints/:id",
    {
      config,
      schema: {
        tags,
        summary: "Delete an endpoint; its pending deliveries are canceled.",
        params: EndpointParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await webhooks.delete(actorOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    "/v1/webhook-endpoints/:id/deliveries",
    {
      config,
      schema: {
        tags,
        summary: "The endpoint's deliveries, oldest first: status, attempts, last outcome, next attempt.",
        params: EndpointParams,
        querystring: ListQuery,
        response: { 200: pageOf(DeliveryView), ...errorResponses },
      },
    },
    async (request) =>
      webhooks.deliveries(actorOf(request), request.params.id, {
        cursor: request.query.cursor,
        limit: Number(request.query.limit ?? 50),
      }),
  );
}
