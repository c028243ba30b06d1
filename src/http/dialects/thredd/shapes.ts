// What the Thredd Cards API and Payblr (a Thredd wrapper) share: request and response schemas in Thredd's
// field names, the translation to and from cardvault's card model, and Thredd's error body. Translation only:
// every rule (status transitions, tries, expiry) stays in the services, so both dialects behave identically.
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type Static, Type } from "typebox";
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
 * Sets up an encapsulated dialect scope: Thredd's error body for every failure and unknown route, and a JSON
 * parser that reads an empty body as no body (.NET clients send Content-Type: application/json with an
 * empty body on body-less POSTs such as "unblock CVV").
 */
export function prepareThreddScope(scope: FastifyInstance): void {
  setErrorShape(scope, threddErrorShape);
  const parseJson = scope.getDefaultJsonParser("error", "error");
  scope.removeContentTypeParser("application/json");
  scope.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "") return done(null, undefined);
    return parseJson(request, body as string, done);
  });
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
 * cardProduct, designId, cardHolder.{dateOfBirth, mobile, email}, address.{addressLine1, postCode, country},
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

/** Thredd card status codes cardvault supports, one per cardvault status, so a code reads back as written. */
const statusCodes: Record<CardStatus, { code: string; status: string }> = {
  active: { code: "00", status: "Active" },
  inactive: { code: "02", status: "Inactive" },
  suspended: { code: "62", status: "Restricted" },
  closed: { code: "46", status: "Closed" },
};
const supportedCodes = Object.values(statusCodes)
  .map((s) => `${s.code} (${s.status})`)
  .join(", ");

export const ThreddStatusBody = Type.Object(
  {
    cardStatusCode: Type.Optional(Type.String({ minLength: 2, maxLength: 2 })),
    status: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    updatedBy: Type.Optional(Type.String({ maxLength: 1000 })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    validityDate: Type.Optional(Type.String({ maxLength: 7 })),
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

/** cardStatusCode and/or status (as Thredd allows either) → one cardvault status; they must agree. */
export function cardStatusFromThredd(change: ThreddStatusChange): CardStatus {
  if (change.validityDate !== undefined) {
    throw validationFailed(
      "validityDate",
      "validityDate is not supported: a status applies until it is changed.",
    );
  }
  const entries = Object.entries(statusCodes) as [CardStatus, { code: string; status: string }][];
  const byCode =
    change.cardStatusCode === undefined
      ? undefined
      : entries.find(([, s]) => s.code === change.cardStatusCode);
  const byText =
    change.status === undefined
      ? undefined
      : entries.find(([, s]) => s.status.toLowerCase() === change.status?.trim().toLowerCase());
  if (change.cardStatusCode === undefined && change.status === undefined) {
    throw validationFailed("cardStatusCode", "cardStatusCode (or status) is required.");
  }
  if (change.cardStatusCode !== undefined && !byCode) {
    throw validationFailed("cardStatusCode", `cardStatusCode must be one of ${supportedCodes}.`);
  }
  if (change.status !== undefined && !byText) {
    throw validationFailed("status", `status must be one of ${supportedCodes}.`);
  }
  if (byCode && byText && byCode[0] !== byText[0]) {
    throw validationFailed("status", "status and cardStatusCode name different statuses.");
  }
  return (byCode ?? byText)![0];
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
 * Set PIN: Thredd's example shows `{"cardPin": 0000}`, a bare number, which would reach us as 0 — a number
 * loses its leading zeros, so only a string of 4–12 digits is accepted.
 */
export const SetPinBody = Type.Object(
  {
    cardPin: Type.String({
      pattern: "^[0-9]{4,12}$",
      description: "4–12 digits as a JSON string (a number would lose leading zeros).",
    }),
  },
  { additionalProperties: false },
);

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
