// Native v1: read, verify, and unblock a card's CVV, and read its try counter.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { CVV_PATTERN } from "../../domain/card.js";
import type { CvvService } from "../../services/cvv.js";
import { registerCounterRoutes } from "./counter-routes.js";
import { actorOf, errorResponses, PublicTokenParams, VerifyView } from "./schemas.js";

export function registerCvvRoutes(root: FastifyInstance, cvv: CvvService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["cvv"];

  app.get(
    "/v1/cards/:publicToken/cvv",
    {
      config: { scope: "cvv:read", rateLimit: "reveal", cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Read the card's current CVV (audited).",
        params: PublicTokenParams,
        response: { 200: Type.Object({ cvv: Type.String() }), ...errorResponses },
      },
    },
    async (request) => cvv.get(actorOf(request), request.params.publicToken),
  );

  app.post(
    "/v1/cards/:publicToken/cvv/verify",
    {
      config: { scope: "cvv:verify", rateLimit: "verify", cardParam: "publicToken", idempotent: true },
      schema: {
        tags,
        summary: "Verify a CVV: a wrong one uses up a try; at zero the CVV is Blocked until unblocked.",
        params: PublicTokenParams,
        body: Type.Object({ cvv: Type.String({ pattern: CVV_PATTERN }) }, { additionalProperties: false }),
        response: { 200: VerifyView, ...errorResponses },
      },
    },
    async (request) => {
      const { status, remainingTries, result } = await cvv.verify(
        actorOf(request),
        request.params.publicToken,
        request.body.cvv,
      );
      return { result, status, remainingTries };
    },
  );

  registerCounterRoutes(root, "cvv", cvv);
}
