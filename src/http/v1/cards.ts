// Native v1: issue, read and change cards.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { EXPIRY_PATTERN } from "../../domain/card.js";
import type { CardService } from "../../services/cards.js";
import {
  actorOf,
  CardholderNameSchema,
  CardStatusSchema,
  CardTypeSchema,
  CardView,
  errorResponses,
  PublicTokenParams,
} from "./schemas.js";

const NewCardBody = Type.Object(
  {
    type: CardTypeSchema,
    expiry: Type.Optional(
      Type.String({
        pattern: EXPIRY_PATTERN,
        description:
          "YYMM, month 01–12: this month or later in UTC (an earlier month is refused, 400); defaults to three years out.",
      }),
    ),
    cardholderName: Type.Optional(CardholderNameSchema),
    customerReference: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    status: Type.Optional(Type.Union([Type.Literal("active"), Type.Literal("inactive")])),
    cvvRotationIntervalHours: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 8784,
        description: "Dynamic CVV: rotate every N hours (virtual cards).",
      }),
    ),
    testClockId: Type.Optional(
      Type.String({ maxLength: 64, description: "Sandbox: follow this test clock." }),
    ),
  },
  { additionalProperties: false },
);

const CardPatchBody = Type.Object(
  {
    status: Type.Optional(CardStatusSchema),
    cardholderName: Type.Optional(CardholderNameSchema),
    description: Type.Optional(Type.String({ maxLength: 800 })),
    updatedBy: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export function registerCardRoutes(root: FastifyInstance, cards: CardService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/v1/cards",
    {
      config: { scope: "cards:write", rateLimit: false, cardParam: false, idempotent: true },
      schema: {
        tags: ["cards"],
        summary: "Issue a card: a PAN, a CVV and a random PIN are allocated.",
        body: NewCardBody,
        response: { 201: CardView, ...errorResponses },
      },
    },
    async (request, reply) => reply.status(201).send(await cards.create(actorOf(request), request.body)),
  );

  app.get(
    "/v1/cards/:publicToken",
    {
      config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags: ["cards"],
        summary: "Read a card: status, masked PAN, expiry, cardholder name (never the PAN, CVV or PIN).",
        params: PublicTokenParams,
        response: { 200: CardView, ...errorResponses },
      },
    },
    async (request) => cards.get(actorOf(request), request.params.publicToken),
  );

  app.patch(
    "/v1/cards/:publicToken",
    {
      config: { scope: "cards:write", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags: ["cards"],
        summary: "Change a card's status (active, inactive, suspended, closed) or cardholder name.",
        params: PublicTokenParams,
        body: CardPatchBody,
        response: { 200: CardView, ...errorResponses },
      },
    },
    async (request) => cards.update(actorOf(request), request.params.publicToken, request.body),
  );
}
