// Native v1: the tenant's audit trail, oldest first, with cursor pagination.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AuditService } from "../../services/audit.js";
import { actorOf, errorResponses, ListQuery } from "./schemas.js";

const AuditEvent = Type.Object({
  id: Type.String(),
  action: Type.String(),
  outcome: Type.String(),
  actor: Type.String(),
  publicToken: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  createdAt: Type.String(),
});

export function registerAuditRoutes(root: FastifyInstance, audit: AuditService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    "/v1/audit-events",
    {
      config: { scope: "audit:read", rateLimit: false, cardParam: false },
      schema: {
        tags: ["audit"],
        summary: "The tenant's audit trail, oldest first, a page at a time (follow nextCursor).",
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(AuditEvent),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) =>
      audit.list(actorOf(request).tenantId, {
        cursor: request.query.cursor,
        limit: Number(request.query.limit ?? 50),
      }),
  );
}
