// Native v1: dynamic CVVs for virtual cards — forced rotation and the rotation interval.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { RotationService } from "../../services/rotation.js";
import { actorOf, errorResponses, PublicTokenParams } from "./schemas.js";

const RotationView = Type.Object({
  intervalHours: Type.Union([Type.Integer(), Type.Null()]),
  nextRotationAt: Type.Union([Type.String(), Type.Null()]),
  lastRotatedAt: Type.Union([Type.String(), Type.Null()]),
});

export function registerRotationRoutes(root: FastifyInstance, rotation: RotationService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["cvv rotation"];
  const url = "/v1/cards/:publicToken/cvv/rotation";

  app.post(
    "/v1/cards/:publicToken/cvv/rotate",
    {
      config: { scope: "cvv:manage", rateLimit: "manage", cardParam: "publicToken", idempotent: true },
      schema: {
        tags,
        summary:
          "Force a CVV rotation (virtual cards). Reschedules unless a scheduling happened in the last 2 minutes.",
        params: PublicTokenParams,
        body: Type.Object(
          {
            serviceCode: Type.Optional(
              Type.String({ pattern: "^[0-9]{3}$", description: "Used as is when given." }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            rotatedAt: Type.String(),
            rotationType: Type.Literal("MANUAL"),
            nextRotationAt: Type.Union([Type.String(), Type.Null()]),
          }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const result = await rotation.rotate(actorOf(request), request.params.publicToken, request.body);
      return { ...result, rotationType: "MANUAL" as const };
    },
  );

  app.get(
    url,
    {
      config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags,
        summary: "The card's CVV rotation: interval, last and next rotation.",
        params: PublicTokenParams,
        response: { 200: RotationView, ...errorResponses },
      },
    },
    async (request) => rotation.get(actorOf(request), request.params.publicToken),
  );

  app.put(
    url,
    {
      config: { scope: "cvv:manage", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Set the rotation interval; the next automatic rotation is then at now + interval.",
        params: PublicTokenParams,
        body: Type.Object(
          { intervalHours: Type.Integer({ minimum: 1, maximum: 8784 }) },
          { additionalProperties: false },
        ),
        response: { 200: RotationView, ...errorResponses },
      },
    },
    async (request) =>
      rotation.setInterval(actorOf(request), request.params.publicToken, request.body.intervalHours),
  );

  app.delete(
    url,
    {
      config: { scope: "cvv:manage", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Stop automatic rotation (forced rotations still work).",
        params: PublicTokenParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await rotation.deleteInterval(actorOf(request), request.params.publicToken);
      return reply.status(204).send(null);
    },
  );
}
