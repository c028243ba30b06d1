// Native v1: the tenant's audit trail, oldest first, with cursor pagination.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { AuditEventView, AuditService } from "../../services/audit.js";
import { auditRecordSchema } from "../../services/audit-catalog.js";
import { actorOf, errorResponses, ListQuery } from "./schemas.js";

/** One variant per audit action, its details as the audit catalog declares them (services/audit-catalog.ts). */
const AuditEvent = Type.Unsafe<AuditEventView>(auditRecordSchema());

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
