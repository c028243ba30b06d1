// Native v1: set, read, verify and unblock a card's PIN, and read its try counter.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { PIN_PATTERN } from "../../domain/card.js";
import type { PinService } from "../../services/pin.js";
import { registerCounterRoutes } from "./counter-routes.js";
import { actorOf, errorResponses, PublicTokenParams, VerifyView } from "./schemas.js";

const PinAttemptBody = Type.Union([
  Type.Object({ pin: Type.String({ pattern: PIN_PATTERN }) }, { additionalProperties: false }),
  Type.Object(
    {
      pinBlock: Type.String({
        pattern: "^([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$",
        description: "Enciphered PIN block, hex.",
      }),
      format: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(3), Type.Literal(4)]),
      keyId: Type.Optional(
        Type.String({ pattern: "^[a-z0-9-]{1,64}$", description: "PIN encryption key id." }),
      ),
    },
    { additionalProperties: false },
  ),
]);

export function registerPinRoutes(root: FastifyInstance, pin: PinService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["pin"];

  app.put(
    "/v1/cards/:publicToken/pin",
    {
      config: { scope: "pin:write", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Set or change the PIN (4–12 digits); the PIN try counter starts again at its maximum.",
        params: PublicTokenParams,
        body: Type.Object({ pin: Type.String({ pattern: PIN_PATTERN }) }, { additionalProperties: false }),
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await pin.set(actorOf(request), request.params.publicToken, request.body.pin);
      return reply.status(204).send(null);
    },
  );

  app.get(
    "/v1/cards/:publicToken/pin",
    {
      config: { scope: "pin:read", rateLimit: "reveal", cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Read the card's PIN (audited).",
        params: PublicTokenParams,
        response: { 200: Type.Object({ pin: Type.String() }), ...errorResponses },
      },
    },
    async (request) => pin.get(actorOf(request), request.params.publicToken),
  );

  app.post(
    "/v1/cards/:publicToken/pin/verify",
    {
      config: { scope: "pin:verify", rateLimit: "verify", cardParam: "publicToken", idempotent: true },
      schema: {
        tags,
        summary: "Verify a PIN, clear or as an enciphered ISO 9564 PIN block; checked against the PVV.",
        params: PublicTokenParams,
        body: PinAttemptBody,
        response: { 200: VerifyView, ...errorResponses },
      },
    },
    async (request) => {
      const { result, status, remainingTries } = await pin.verify(
        actorOf(request),
        request.params.publicToken,
        request.body,
      );
      return { result, status, remainingTries };
    },
  );

  registerCounterRoutes(root, "pin", pin);
}
