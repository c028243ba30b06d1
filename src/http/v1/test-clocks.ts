// Native v1: test clocks for sandbox tenants — watch a rotation schedule run without waiting for it.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { TestClockService } from "../../services/test-clocks.js";
import { actorOf, errorResponses } from "./schemas.js";

const TestClockView = Type.Object({ id: Type.String(), frozenTime: Type.String(), createdAt: Type.String() });
const IdParams = Type.Object(
  { id: Type.String({ pattern: "^clock_[0-9a-f-]{36}$" }) },
  { additionalProperties: false },
);
const DateTime = Type.String({ maxLength: 40, description: "RFC 3339 date-time" });

export function registerTestClockRoutes(root: FastifyInstance, testClocks: TestClockService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["test clocks"];

  app.post(
    "/v1/test-clocks",
    {
      config: { scope: "cards:write", rateLimit: false, cardParam: false, idempotent: true },
      schema: {
        tags,
        summary: "Create a test clock (sandbox tenants only).",
        body: Type.Object({ frozenTime: DateTime }, { additionalProperties: false }),
        response: { 201: TestClockView, ...errorResponses },
      },
    },
    async (request, reply) => reply.status(201).send(await testClocks.create(actorOf(request), request.body)),
  );

  app.get(
    "/v1/test-clocks/:id",
    {
      config: { scope: "cards:read", rateLimit: false, cardParam: false },
      schema: {
        tags,
        summary: "Read a test clock: its current time.",
        params: IdParams,
        response: { 200: TestClockView, ...errorResponses },
      },
    },
    async (request) => testClocks.get(actorOf(request), request.params.id),
  );

  app.post(
    "/v1/test-clocks/:id/advance",
    {
      config: { scope: "cards:write", rateLimit: false, cardParam: false },
      schema: {
        tags,
        summary: "Move the clock forward and run every rotation that falls due for its cards.",
        params: IdParams,
        body: Type.Object({ to: DateTime }, { additionalProperties: false }),
        response: {
          200: Type.Object({ ...TestClockView.properties, rotations: Type.Integer() }),
          ...errorResponses,
        },
      },
    },
    async (request) => testClocks.advance(actorOf(request), request.params.id, request.body),
  );
}
