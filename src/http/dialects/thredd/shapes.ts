// What the Thredd Cards API and Payblr (a Thredd wrapper) share: request and response schemas in Thredd's
// field names, the translation to and from cardvault's card model, and Thredd's error body. Translation only:
// every rule (status transitions, tries, expiry) stays in the services, so both dialects behave identically.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type Static, type TSchema, Type } from "typebox";
import { CARDHOLDER_NAME_PATTERN, type CardStatus } from "../../../domain/card.js";
import { AppError, validationFailed } from "../../../domain/errors.js";
import type { TryState } from "../../../domain/tries.js";
import type { CardView, NewCard } from "../../../services/cards.js";
import { type ErrorShape, renderProblem, setErrorShape } from "../../problems.js";
import { PublicTokenParams } from "../../v1/schemas.js";

export { PublicTokenParams };

// ---------------------------------------------------------------------------------------------------------
// Errors: {type, title, status, traceId, errors: {field: [messages]}} as Thredd documents them (Thredd Cards
// API, "Errors": https://cardsapidocs.thredd.com/reference/errors), served as
// application/problem+json, plus the RFC 9457 "detail" and cardvault's stable "code" as extension members
// (a Thredd client ignores them; they make one error vocabulary across the native API and every dialect).

export const ThreddProblem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  traceId: Type.String(),
  errors: Type.Record(Type.String(), Type.Array(Type.String())),
  detail: Type.String(),
  code: Type.String(),
});

export const threddErrors = {
  400: ThreddProblem,
  401: ThreddProblem,
  403: ThreddProblem,
  404: ThreddProblem,
  409: ThreddProblem,
  415: ThreddProblem,
  422: ThreddProblem,
} as const;

/** Thredd's error body ({@link ThreddProblem}), as application/problem+json. */
export const threddErrorShape: ErrorShape = {
  contentType: "application/problem+json",
  body(error, requestId) {
    const problem = renderProblem(error, requestId);
    return {
      type: problem.type,
      // ASP.NET's wording, which Thredd's own example carries (with its typo fixed).
      title: error.code === "validation_failed" ? "One or more validation errors occurred." : problem.title,
      status: problem.status,
      traceId: problem.traceId,
      errors: error.fields ?? { resource: [error.message] },
      detail: problem.detail,
      code: problem.code,
    };
  },
};

/**
 * Sets up an encapsulated dialect scope: Thredd's error body for every failure and unknown route, property
 * names read case-insensitively against each route's body schema ({@link withSchemaNames}), and a JSON
 * parser that reads an empty body as no body (.NET clients send Content-Type: application/json with an
 * empty body on body-less POSTs such as "unblock CVV").
 */
export function prepareThreddScope(scope: FastifyInstance): void {
  setErrorShape(scope, threddErrorShape);
  scope.addHook("preValidation", async (request) => {
    const schema = request.routeOptions.schema?.body as TSchema | undefined;
    if (schema) request.body = withSchemaNames(schema, request.body);
  });
  const parseJson = scope.getDefaultJsonParser("error", "error");
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "") return done(null, undefined);
    return parseJson(request, body as string, done);
  });
}

/**
 * Thredd's servers read property names case-insensitively (its create-card page shows "CardType"), so each
 * property is renamed to the schema's spelling before validation: one schema still validates and documents,
 * an unknown property (in any case) still fails it, and two spellings of one property are a 400 rather than
 * one silently winning.
 */
function withSchemaNames(schema: TSchema, value: unknown, path = ""): unknown {
  const { properties } = schema as { properties?: Record<string, TSchema> };
  if (!properties || typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const names = new Map(Object.keys(properties).map((name) => [name.toLowerCase(), name]));
  const renamed: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    const name = names.get(key.toLowerCase()) ?? key;
    if (Object.hasOwn(renamed, name)) {
      throw validationFailed(`${path}${name}`, `${path}${name} is given twice (names are case-insensitive).`);
    }
    const innerSchema = properties[name];
    renamed[name] = innerSchema ? withSchemaNames(innerSchema, inner, `${path}${name}.`) : inner;
  }
  return renamed;
}

/** Thredd's unblock-PIN answers 415 to a request without Content-Type: application/json, body or not. */
export async function requireJsonContentType(request: FastifyRequest): Promise<void> {
  const type = request.headers["content-type"];
  if (typeof type !== "string" || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new AppError(
      "unsupported_media_type",
      "Send Content-Type: application/json (the body may be empty).",
    );
  }
}

/** Names a service's field errors the way the Thredd request named the field. */
export async function withFieldNames<T>(work: Promise<T>, names: Record<string, string>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (!(error instanceof AppError) || !error.fields) throw error;
    const fields = Object.fromEntries(
      Object.entries(error.fields).map(([field, list]) => [names[field] ?? field, list]),
    );
    throw new AppError(error.code, error.message, { fields, cause: error });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cards.

/**
 * Create Card. Used: cardType, cardHolder.{title, firstName, lastName}, activateNow, expiryDate,
 * customerReference. Accepted and ignored, because Thredd documents them and cardvault has no use for them:
 * cardProduct, designId, cardHolder.{dateOfBirth, mobile, email},
 * address.{addressLine1, addressLine2, city, postCode, country},
 * virtualCardImageDetails.{virtualCardImageId, imageSize}. Anything else is a 400.
 */
export const ThreddNewCardBody = Type.Object(
  {
    cardType: Type.Union([Type.Literal("Virtual"), Type.Literal("Physical")]),
    cardHolder: Type.Object(
      {
        // Embossed as "title firstName lastName": each in the embossing set (domain/card.ts).
        title: Type.Optional(Type.String({ maxLength: 10, pattern: CARDHOLDER_NAME_PATTERN })),
        firstName: Type.String({ minLength: 1, maxLength: 40, pattern: CARDHOLDER_NAME_PATTERN }),
        lastName: Type.String({ minLength: 1, maxLength: 40, pattern: CARDHOLDER_NAME_PATTERN }),
        dateOfBirth: Type.Optional(Type.String({ pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" })),
        mobile: Type.Optional(Type.String({ maxLength: 30 })),
        email: Type.Optional(Type.String({ maxLength: 254 })),
      },
      { additionalProperties: false },
    ),
    activateNow: Type.Optional(Type.Boolean()),
    expiryDate: Type.Optional(
      Type.String({
        pattern: "^20[0-9]{2}-(0[1-9]|1[0-2])(-[0-9]{2})?$",
        description: "YYYY-MM or YYYY-MM-DD; the card is valid to the end of that month.",
      }),
    ),
    customerReference: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    cardProduct: Type.Optional(Type.Integer()),
    designId: Type.Optional(Type.String({ maxLength: 100 })),
    address: Type.Optional(
      Type.Object(
        {
          addressLine1: Type.Optional(Type.String({ maxLength: 100 })),
          addressLine2: Type.Optional(Type.String({ maxLength: 100 })),
          city: Type.Optional(Type.String({ maxLength: 100 })),
          postCode: Type.Optional(Type.String({ maxLength: 20 })),
          country: Type.Optional(Type.String({ maxLength: 3 })),
        },
        { additionalProperties: false },
      ),
    ),
    virtualCardImageDetails: Type.Optional(
      Type.Object(
        {
          virtualCardImageId: Type.Optional(Type.String({ maxLength: 50 })),
          imageSize: Type.Optional(Type.Integer()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ThreddNewCard = Static<typeof ThreddNewCardBody>;

export const ThreddNewCardView = Type.Object({
  publicToken: Type.String(),
  customerReference: Type.Union([Type.String(), Type.Null()]),
  embossName: Type.String(),
  maskedPan: Type.String(),
  startDate: Type.String(),
  expiryDate: Type.String(),
});

export const ThreddCardView = Type.Object({
  publicToken: Type.String(),
  cardType: Type.String(),
  status: Type.String(),
  cardStatusCode: Type.String(),
  cardStatusDescription: Type.String(),
  cardDetails: Type.Object({
    customerReference: Type.Union([Type.String(), Type.Null()]),
    fullNameOnCard: Type.String(),
    maskedPan: Type.String(),
    startDate: Type.String(),
    expiryDate: Type.String(),
  }),
});

/** How cardvault reports each of its statuses as a Thredd code: the code a card reads back with. */
const statusCodes: Record<CardStatus, { code: string; status: string }> = {
  active: { code: "00", status: "Active" },
  inactive: { code: "02", status: "Inactive" },
  suspended: { code: "62", status: "Restricted" },
  closed: { code: "46", status: "Closed" },
};

/**
 * Every code of Thredd's card-status table ("Card Status Codes": https://cardsapidocs.thredd.com/docs/card-status-codes)
 * on cardvault's life cycle: Thredd's "Live" blocking codes can be changed back, so they suspend; its
 * "Archived" codes can never change again, so they close. A card reads back with the code of its status above.
 */
const threddCodes: Record<string, CardStatus> = {
  "00": "active", // The card is active.
  "02": "inactive", // The card is inactive.
  "04": "suspended", // Capture card.
  "05": "suspended", // Do not honour.
  "14": "suspended", // Invalid card.
  "41": "suspended", // Lost card (Live in Thredd's table: it can be found again).
  "43": "closed", // Stolen card (Archived).
  "46": "closed", // Closed account (Archived).
  "54": "closed", // Expired card (Archived).
  "57": "suspended", // Transaction not permitted to cardholder.
  "59": "suspended", // Suspected fraud.
  "62": "suspended", // Restricted card.
  "63": "suspended", // Security violation.
  "70": "suspended", // Cardholder to contact issuer.
  "75": "suspended", // Allowable number of PIN tries exceeded.
  "83": "closed", // Card destroyed (Archived).
  "98": "suspended", // Refund given to customer.
};

export const ThreddStatusBody = Type.Object(
  {
    cardStatusCode: Type.Optional(Type.String({ minLength: 2, maxLength: 2 })),
    status: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    updatedBy: Type.Optional(Type.String({ maxLength: 1000 })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    validityDate: Type.Optional(
      Type.String({
        pattern: "^[0-9]{4}-(0[1-9]|1[0-2])$",
        description: "YYYY-MM: must be the card's expiry month (docs/dialects.md).",
      }),
    ),
  },
  { additionalProperties: false },
);
export type ThreddStatusChange = Static<typeof ThreddStatusBody>;

export const ThreddStatusView = Type.Object({
  status: Type.String(),
  cardStatusCode: Type.String(),
  cardStatusDescription: Type.String(),
  updated: Type.String({ description: "DD-MM-YYYY" }),
  updatedBy: Type.Optional(Type.String()),
  description: Type.Optional(Type.String()),
});

function embossName(cardHolder: ThreddNewCard["cardHolder"]): string {
  return [cardHolder.title, cardHolder.firstName, cardHolder.lastName].filter(Boolean).join(" ");
}

/** Thredd's activation defaults: virtual cards start active unless activateNow is false, physical inactive. */
export function newCardFromThredd(body: ThreddNewCard): NewCard {
  const type = body.cardType === "Virtual" ? "virtual" : "physical";
  const active = body.activateNow ?? type === "virtual";
  const [year, month] = body.expiryDate?.split("-") ?? [];
  return {
    type,
    status: active ? "active" : "inactive",
    cardholderName: embossName(body.cardHolder),
    ...(body.customerReference !== undefined ? { customerReference: body.customerReference } : {}),
    ...(year && month ? { expiry: `${year.slice(2)}${month}` } : {}),
  };
}

export function threddNewCardView(card: CardView) {
  return {
    publicToken: card.publicToken,
    customerReference: card.customerReference,
    embossName: card.cardholderName ?? "",
    maskedPan: card.maskedPan,
    startDate: card.createdAt.slice(0, 10),
    expiryDate: card.expiryDate,
  };
}

export function threddCardView(card: CardView) {
  const { code, status } = statusCodes[card.status];
  return {
    publicToken: card.publicToken,
    cardType: card.type === "virtual" ? "Virtual" : "Physical",
    status,
    cardStatusCode: code,
    cardStatusDescription: `${code} (${status})`,
    cardDetails: {
      customerReference: card.customerReference,
      fullNameOnCard: card.cardholderName ?? "",
      maskedPan: card.maskedPan,
      startDate: card.createdAt.slice(0, 10),
      expiryDate: card.expiryDate,
    },
  };
}

export function threddStatusView(card: CardView, change: { updatedBy?: string; description?: string } = {}) {
  const { code, status } = statusCodes[card.status];
  const [year, month, day] = card.updatedAt.slice(0, 10).split("-");
  return {
    status,
    cardStatusCode: code,
    cardStatusDescription: `${code} (${status})`,
    updated: `${day}-${month}-${year}`,
    ...(change.updatedBy !== undefined ? { updatedBy: change.updatedBy } : {}),
    ...(change.description !== undefined ? { description: change.description } : {}),
  };
}

/** Thredd's validityDate (YYYY-MM, "the date when the card will be valid") as a card expiry, YYMM. */
export function expiryFromValidityDate(validityDate: string): string {
  return `${validityDate.slice(2, 4)}${validityDate.slice(5, 7)}`;
}

/** cardStatusCode and/or status (as Thredd allows either) → one cardvault status; they must agree. */
export function cardStatusFromThredd(change: ThreddStatusChange): CardStatus {
  if (change.cardStatusCode === undefined && change.status === undefined) {
    throw validationFailed("cardStatusCode", "cardStatusCode (or status) is required.");
  }
  const byCode = change.cardStatusCode === undefined ? undefined : threddCodes[change.cardStatusCode];
  const byText = (Object.entries(statusCodes) as [CardStatus, { status: string }][]).find(
    ([, s]) => s.status.toLowerCase() === change.status?.trim().toLowerCase(),
  )?.[0];
  if (change.cardStatusCode !== undefined && !byCode) {
    throw validationFailed(
      "cardStatusCode",
      `cardStatusCode must be one of Thredd's card status codes: ${Object.keys(threddCodes).join(", ")}.`,
    );
  }
  if (change.status !== undefined && !byText) {
    const names = Object.values(statusCodes).map((s) => s.status);
    throw validationFailed("status", `status must be one of ${names.join(", ")}.`);
  }
  if (byCode && byText && byCode !== byText) {
    throw validationFailed("status", "status and cardStatusCode name different statuses.");
  }
  return (byCode ?? byText)!;
}

// ---------------------------------------------------------------------------------------------------------
// CVV and PIN.

export const CvvView = Type.Object({ cvv: Type.String(), resultStatus: Type.Literal("Success") });
export const SecretStatusName = Type.Union([Type.Literal("Unblocked"), Type.Literal("Blocked")]);
export const CvvStatusView = Type.Object({ status: SecretStatusName });
export const CvvStatusWithTriesView = Type.Object({
  status: SecretStatusName,
  remainingTries: Type.String(),
});
export const PinView = Type.Object({ pin: Type.String() });
export const PinStatusView = Type.Object({
  status: SecretStatusName,
  remainingTries: Type.String(),
  remainingOfflineTries: Type.String(),
});

/** Thredd's Update CVV Status body; `status` is mandatory in Thredd's docs, optional (Unblocked) in Payblr's. */
export function cvvStatusBody(statusRequired: boolean) {
  const status = Type.Union([Type.Literal("Blocked"), Type.Literal("Unblocked")]);
  return Type.Object(
    {
      status: statusRequired ? status : Type.Optional(status),
      description: Type.Optional(Type.String({ maxLength: 800 })),
      updatedBy: Type.Optional(Type.String({ maxLength: 100 })),
    },
    { additionalProperties: false },
  );
}

export const StatusChangeBody = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 800 })),
    updatedBy: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

/**
 * Set PIN: Thredd's example shows `{"cardPin": 0000}`, a bare number, and its server takes numbers, so a
 * number is accepted for its digits; a number cannot carry leading zeros, so one of fewer than 4 digits is
 * refused (send it as a string) rather than padded into a PIN nobody chose.
 */
export const SetPinBody = Type.Object(
  {
    cardPin: Type.Union(
      [Type.String({ pattern: "^[0-9]{4,12}$" }), Type.Integer({ minimum: 0, maximum: 999_999_999_999 })],
      {
        description: "4–12 digits: a string, or a number (which cannot keep leading zeros).",
      },
    ),
  },
  { additionalProperties: false },
);

/** The PIN's digits: a string as sent, a number as written (at least 4 digits). */
export function pinDigits(cardPin: string | number): string {
  if (typeof cardPin === "string") return cardPin;
  const digits = String(cardPin);
  if (digits.length < 4) {
    throw validationFailed(
      "cardPin",
      "cardPin as a number needs 4–12 digits (a number cannot keep leading zeros: send them as a string).",
    );
  }
  return digits;
}

/** Tries as strings, as Thredd documents them ("remainingTries": "3"). */
export const triesView = (state: TryState) => String(state.remainingTries);

/**
 * cardvault keeps one PIN counter; there is no separate chip (offline) counter, so the offline count Thredd
 * reports mirrors it rather than inventing a number.
 */
export function pinStatusView(state: TryState) {
  return { status: state.status, remainingTries: triesView(state), remainingOfflineTries: triesView(state) };
}

// ---------------------------------------------------------------------------------------------------------
// Get Card Data.

export const CardDataBody = Type.Object(
  {
    key: Type.String({
      pattern: "^[A-Za-z0-9+/]+={0,2}$",
      minLength: 4,
      maxLength: 1024,
      description:
        "base64 of the AES-256 session key wrapped with RSA-OAEP (SHA-256) under the 4096-bit wrap key.",
    }),
    paddingMode: Type.Optional(Type.Literal("PKCS2_2", { description: "OAEP; the only mode offered." })),
    encryptionKeyLength: Type.Optional(Type.Literal("Rsa4096")),
    hashingAlgorithm: Type.Optional(Type.Literal("Sha256")),
  },
  { additionalProperties: false },
);

export const CardDataView = Type.Object({
  iv: Type.String(),
  encryptedPayload: Type.String(),
  signatureOfPayloadAndIv: Type.String(),
});
