// Native v1: the tenant's events (what webhooks deliver), oldest first, with cursor pagination.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { EVENT_TYPES, eventEnvelopeSchema } from "../../events/catalog.js";
import type { EventService } from "../../services/events.js";
import { actorOf, errorResponses, ListQuery } from "./schemas.js";

/** One variant per event type, its data as the event catalog declares it (events/catalog.ts). */
const EventView = eventEnvelopeSchema();

export function registerEventRoutes(root: FastifyInstance, events: EventService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    "/v1/events",
    {
      config: { scope: "events:read", rateLimit: false, cardParam: false },
      schema: {
        tags: ["events"],
        summary: "The tenant's events, oldest first, optionally of one type (follow nextCursor).",
        querystring: Type.Object(
          {
            ...ListQuery.properties,
            type: Type.Optional(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)))),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(EventView),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) =>
      events.list(actorOf(request), {
        cursor: request.query.cursor,
        type: request.query.type,
        limit: Number(request.query.limit ?? 50),
      }),
  );
}
