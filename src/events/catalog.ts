// The events cardvault publishes, each type with the schema of its `data`: the one place they are defined.
// Invariant: the publisher's types (outbox.ts NewEvent), the webhook endpoints' list of types and the OpenAPI
// document's event schema (one variant per type, discriminated by `type`) are all read from this table, so a
// service cannot publish a field the document does not declare, nor the document promise one never sent.
// Payloads name the card by public token and last four digits at most: never a PAN, CVV or PIN.
import { type Static, type TObject, Type } from "typebox";

const publicToken = Type.String({ description: "The card's public token." });
const last4 = Type.String({ description: "The PAN's last four digits." });
const cardStatus = Type.Union([
  Type.Literal("active"),
  Type.Literal("inactive"),
  Type.Literal("suspended"),
  Type.Literal("closed"),
]);

/** A secret spent its budget of wrong tries (domain/tries.ts): the fixed words, never the values tried. */
const compromised = Type.Object(
  {
    publicToken,
    reason: Type.Literal("wrong_try_budget_spent"),
    wrongTries: Type.Integer({ description: "The budget: this many wrong tries…" }),
    windowHours: Type.Integer({ description: "…within this many hours." }),
  },
  { additionalProperties: false },
);
const blocked = Type.Object(
  {
    publicToken,
    reason: Type.Union([Type.Literal("too_many_wrong_tries"), Type.Literal("blocked_by_request")]),
  },
  { additionalProperties: false },
);
const unblocked = Type.Object(
  { publicToken, reason: Type.Literal("unblocked") },
  { additionalProperties: false },
);

export const eventCatalog = {
  "card.created": Type.Object(
    {
      publicToken,
      type: Type.Union([Type.Literal("virtual"), Type.Literal("physical")]),
      last4,
      status: cardStatus,
    },
    { additionalProperties: false, description: "A card was issued." },
  ),
  "card.cvv.changed": Type.Object(
    {
      publicToken,
      last4,
      rotationType: Type.Union([Type.Literal("MANUAL"), Type.Literal("AUTOMATIC")]),
      operationType: Type.Union([
        Type.Literal("ROTATE_CVV"),
        Type.Literal("CHANGE_CVV_ROTATION"),
        Type.Literal("DELETE_CVV_ROTATION"),
      ]),
      nextRotationAt: Type.Union([Type.String({ description: "ISO 8601." }), Type.Null()]),
      rotationIntervalHours: Type.Union([Type.Integer(), Type.Null()]),
    },
    { additionalProperties: false, description: "The CVV rotated, or its rotation schedule changed." },
  ),
  "card.cvv.compromised": compromised,
  "card.pin.compromised": compromised,
  "card.status.changed": Type.Object(
    { publicToken, status: cardStatus, previousStatus: cardStatus },
    { additionalProperties: false },
  ),
  "cvv.blocked": blocked,
  "cvv.unblocked": unblocked,
  "pin.changed": Type.Object({ publicToken }, { additionalProperties: false }),
  "pin.blocked": blocked,
  "pin.unblocked": unblocked,
} satisfies Record<string, TObject>;

export type EventType = keyof typeof eventCatalog;
/** The `data` of an event of type T. */
export type EventData<T extends EventType> = Static<(typeof eventCatalog)[T]>;

export const EVENT_TYPES = Object.keys(eventCatalog) as EventType[];

/** `card.cvv.changed` → `CardCvvChangedEvent`: the variant's name in the OpenAPI document's components. */
function eventSchemaName(type: EventType): string {
  return `${type
    .split(".")
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join("")}Event`;
}

/**
 * An event as listed and delivered (`{id, type, occurredAt, data}`), one variant per type; `type` tells them
 * apart (OpenAPI's discriminator), so a generated client narrows `data` by checking `type`.
 */
export function eventEnvelopeSchema() {
  const variants = EVENT_TYPES.map((type) =>
    Type.Object(
      {
        id: Type.String(),
        type: Type.Literal(type),
        occurredAt: Type.String({ description: "When it happened, on the card's clock (ISO 8601)." }),
        data: eventCatalog[type],
      },
      { title: eventSchemaName(type) },
    ),
  );
  // Typed by hand: TypeBox cannot infer a union built from a list (EventEnvelope is the same union, by type).
  return Type.Unsafe<EventEnvelope>(Type.Union(variants, { discriminator: { propertyName: "type" } }));
}

/** An event as listed and delivered: `data` typed by `type`. */
export type EventEnvelope = {
  [T in EventType]: { id: string; type: T; occurredAt: string; data: EventData<T> };
}[EventType];
