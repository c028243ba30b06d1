// Request and response schemas shared by the native v1 routes. Response schemas are whitelists: fast-json-
// stringify drops any field not named here, so a new column can never leak into a response by accident.
import type { FastifyRequest } from "fastify";
import { Type } from "typebox";
import { CARDHOLDER_NAME_MAX, CARDHOLDER_NAME_PATTERN } from "../../domain/card.js";
import { PUBLIC_TOKEN_PATTERN } from "../../lib/ids.js";
import type { Actor } from "../../services/audit.js";
import { CURSOR_PATTERN } from "../../services/pagination.js";

export const PublicTokenParams = Type.Object(
  {
    publicToken: Type.String({
      pattern: PUBLIC_TOKEN_PATTERN,
      description: "The card's 9-digit public token.",
    }),
  },
  { additionalProperties: false },
);

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    traceId: Type.String(),
    errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
  },
  { $id: "Problem", title: "Problem", description: "RFC 9457 problem details." },
);

/** An embossed and printed name: the embossing set (domain/card.ts), 1–100 characters. */
export const CardholderNameSchema = Type.String({
  minLength: 1,
  maxLength: CARDHOLDER_NAME_MAX,
  pattern: CARDHOLDER_NAME_PATTERN,
  description: "Letters (Latin accented too), digits, space and . , ' - / &; not starting with a space.",
});

export const CardTypeSchema = Type.Union([Type.Literal("virtual"), Type.Literal("physical")]);
export const CardStatusSchema = Type.Union([
  Type.Literal("active"),
  Type.Literal("inactive"),
  Type.Literal("suspended"),
  Type.Literal("closed"),
]);

export const CardView = Type.Object(
  {
    publicToken: Type.String(),
    type: CardTypeSchema,
    status: CardStatusSchema,
    maskedPan: Type.String({ description: "First six and last four digits." }),
    last4: Type.String(),
    expiry: Type.String({ description: "YYMM" }),
    expiryDate: Type.String({ description: "Last valid day, YYYY-MM-DD." }),
    cardholderName: Type.Union([Type.String(), Type.Null()]),
    customerReference: Type.Union([Type.String(), Type.Null()]),
    cvvRotationIntervalHours: Type.Union([Type.Integer(), Type.Null()]),
    cvvNextRotationAt: Type.Union([Type.String(), Type.Null()]),
    testClockId: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { title: "Card" },
);

export const SecretStatus = Type.Union([Type.Literal("Unblocked"), Type.Literal("Blocked")]);

export const TryStateView = Type.Object(
  { status: SecretStatus, remainingTries: Type.Integer(), maxTries: Type.Integer() },
  { title: "TryState" },
);

export const VerifyView = Type.Object(
  {
    result: Type.Union([Type.Literal("match"), Type.Literal("mismatch"), Type.Literal("blocked")]),
    status: SecretStatus,
    remainingTries: Type.Integer(),
  },
  { title: "VerifyResult" },
);

export const StatusChangeBody = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 800 })),
    updatedBy: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

/** Cursor pagination parameters every list takes. */
export const ListQuery = Type.Object(
  {
    cursor: Type.Optional(
      Type.String({ pattern: CURSOR_PATTERN, description: "A nextCursor this list returned (a row id)." }),
    ),
    limit: Type.Optional(Type.String({ pattern: "^(100|[1-9][0-9]?)$", description: "1–100, default 50." })),
  },
  { additionalProperties: false },
);

/** The common error responses, so the OpenAPI document lists them on every route. */
export const errorResponses = {
  400: Problem,
  401: Problem,
  403: Problem,
  404: Problem,
  409: Problem,
  422: Problem,
} as const;

/**
 * The caller, and the limited attempt it makes when its route is rate limited (counted by the service): the
 * class and the card are the ones the route declares (rateLimit, cardParam; see route-contract.ts).
 */
export function actorOf(request: FastifyRequest): Actor {
  const principal = request.principal!;
  const actor: Actor = { tenantId: principal.tenantId, subject: principal.subject, requestId: request.id };
  const { rateLimit: kind, cardParam } = request.routeOptions.config;
  if (kind) {
    const card = cardParam ? (request.params as Record<string, unknown>)[cardParam] : undefined;
    actor.attempt = {
      kind,
      route: `${request.method} ${request.routeOptions.url}`,
      publicToken: typeof card === "string" ? card : undefined,
    };
  }
  return actor;
}
