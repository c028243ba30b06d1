// The audit actions cardvault records, each with the schema of its `details`: the one place they are defined.
// Invariant: the recorder's types (audit.ts AuditEntry) and the OpenAPI document's audit event schema (one
// variant per action, discriminated by `action`) are both read from this table, so a service cannot record a
// detail the document does not declare. Details are reasons, states, counts and key ids: never a PAN, CVV,
// PIN, PIN block, key or token.
import { type Static, type TObject, Type } from "typebox";

const str = (description?: string) => Type.String(description ? { description } : {});
const optional = (description?: string) => Type.Optional(str(description));
const cardStatus = Type.Union([
  Type.Literal("active"),
  Type.Literal("inactive"),
  Type.Literal("suspended"),
  Type.Literal("closed"),
]);

const statusChange = {
  description: optional("The caller's own note."),
  updatedBy: optional("Who the caller says made the change."),
};
const verify = Type.Object({
  remainingTries: Type.Integer(),
  method: optional("How the value was presented (pin, pin_block_format_N); absent for a CVV."),
  pinBlock: Type.Optional(Type.Literal("did_not_decode")),
});
const compromised = Type.Object({
  reason: Type.Literal("wrong_try_budget_spent"),
  wrongTries: Type.Integer(),
  windowHours: Type.Integer(),
});
const counterChange = Type.Object({ previousRemainingTries: Type.Integer(), ...statusChange });
const rotation = Type.Object({
  operationType: Type.Union([
    Type.Literal("ROTATE_CVV"),
    Type.Literal("CHANGE_CVV_ROTATION"),
    Type.Literal("DELETE_CVV_ROTATION"),
  ]),
  rotationType: Type.Union([Type.Literal("MANUAL"), Type.Literal("AUTOMATIC")]),
  nextRotationAt: Type.Union([str("ISO 8601."), Type.Null()]),
  intervalHours: Type.Union([Type.Integer(), Type.Null()]),
});
const none = Type.Object({});

export const auditCatalog = {
  "card.create": Type.Object({ type: Type.Union([Type.Literal("virtual"), Type.Literal("physical")]) }),
  "card.import": Type.Object({
    line: Type.Integer({ description: "The card's line in the imported file or body." }),
    type: Type.Union([Type.Literal("virtual"), Type.Literal("physical")]),
    status: cardStatus,
  }),
  "card.update": Type.Object({
    fromStatus: cardStatus,
    toStatus: Type.Optional(cardStatus),
    ...statusChange,
  }),
  "cvv.read": none,
  "pin.read": none,
  "cvv.verify": verify,
  "pin.verify": verify,
  "cvv.compromised": compromised,
  "pin.compromised": compromised,
  "cvv.block": counterChange,
  "cvv.unblock": counterChange,
  "pin.block": counterChange,
  "pin.unblock": counterChange,
  "pin.set": Type.Object(statusChange),
  "cvv.rotate": rotation,
  "cvv.rotation.update": rotation,
  "keys.reencrypt": Type.Object({
    cards: Type.Integer({ description: "Cards of the tenant re-sealed under the active keys." }),
    panKeyId: str(),
    pinKeyId: str(),
  }),
  "rate_limit.blocked": Type.Object({
    kind: Type.Union([
      Type.Literal("verify"),
      Type.Literal("reveal"),
      Type.Literal("secure-data"),
      Type.Literal("manage"),
    ]),
    route: str("METHOD and route template."),
    limitedBy: Type.Union([Type.Literal("card"), Type.Literal("tenant")]),
    limit: Type.Integer(),
    windowSeconds: Type.Integer(),
    publicToken: optional(),
  }),
  "reveal_session.created": Type.Object({
    sessionId: str(),
    fields: str("Comma-separated."),
    targetOrigin: str(),
    expiresAt: str(),
  }),
  "reveal_session.used": Type.Object({ sessionId: str(), fields: optional("Comma-separated.") }),
  "secure_data.read": Type.Object({
    method: Type.Union([Type.Literal("rsa-oaep+aes-cbc"), Type.Literal("ecdh-es+a256gcm")]),
    wrapKeyId: Type.Optional(str()),
    signingKeyId: str(),
    includesPin: Type.Boolean(),
  }),
  "test_clock.create": Type.Object({ testClockId: str() }),
  "webhook_endpoint.create": Type.Object({
    endpointId: str(),
    host: str(),
    eventTypes: str("Comma-separated, or * for every type."),
    format: Type.Union([Type.Literal("cardvault"), Type.Literal("pismo")]),
  }),
  "webhook_endpoint.delete": Type.Object({ endpointId: str() }),
  "auth.refused": Type.Object({
    count: Type.Integer({ description: "Refused requests of this caller in this minute." }),
    minute: str(),
    reason: Type.Optional(Type.Union([Type.Literal("no_token"), Type.Literal("token_refused")])),
    scope: optional("The scope the token lacked."),
    tenant: optional("The unregistered tenant the token named."),
    endpoint: Type.Optional(
      Type.Literal("token", { description: "A refusal of the OAuth2 token endpoint." }),
    ),
    clientId: optional("The client id the caller claimed (token endpoint)."),
  }),
  "oauth.token_issued": Type.Object({ clientId: str(), scope: str("Space-separated.") }),
  "api_client.created": Type.Object({ clientId: str(), scope: str("Space-separated.") }),
  "api_client.revoked": Type.Object({ clientId: str() }),
  "api_client.secret_rotated": Type.Object({
    clientId: str(),
    previousValidUntil: Type.Union([str("ISO 8601: the old secret works until then."), Type.Null()]),
  }),
  "tenant.keys_changed": Type.Object({
    cvkId: Type.Union([str(), Type.Null()]),
    cvkKcv: optional(),
    previousCvkId: Type.Union([str(), Type.Null()]),
    pvkId: Type.Union([str(), Type.Null()]),
    pvkKcv: optional(),
    previousPvkId: Type.Union([str(), Type.Null()]),
  }),
  // An operator's key ceremony (tenant null): ids, check values and the TR-31 header's public fields only.
  "key.import": Type.Object({
    type: str(),
    origin: Type.Union([Type.Literal("components"), Type.Literal("tr31")]),
    components: Type.Optional(Type.Integer()),
    componentKcvs: optional("Each component's check value, comma-separated, in the order given."),
    expectedKcv: optional(),
    kbpkId: optional(),
    blockVersion: optional(),
    keyUsage: optional(),
    blockAlgorithm: optional(),
    modeOfUse: optional(),
    keyId: optional(),
    algorithm: optional(),
    kcv: optional(),
    reason: optional("Why a refused ceremony was refused."),
  }),
} satisfies Record<string, TObject>;

export type AuditAction = keyof typeof auditCatalog;
/** The details of an audit record of action A. */
export type AuditDetails<A extends AuditAction> = Static<(typeof auditCatalog)[A]>;

/** `cvv.rotation.update` → `CvvRotationUpdateAudit`: the variant's name in the OpenAPI document. */
function auditSchemaName(action: string): string {
  return `${action
    .split(/[._]/)
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join("")}Audit`;
}

/** The fields every audit record has, whatever its action. */
function recordFields() {
  return {
    id: Type.String(),
    outcome: Type.String({ description: "success, or what the action ended in (a refusal's code)." }),
    actor: Type.String({
      description: "The token's subject, or client:<address> for a refusal without one.",
    }),
    publicToken: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String(),
  };
}

/**
 * An audit record as listed: one variant per action (`action` tells them apart), its details as declared
 * above, and a last one for actions this version does not describe (recorded by another version).
 */
export function auditRecordSchema() {
  const actions = Object.keys(auditCatalog) as AuditAction[];
  const variants = actions.map((action) =>
    Type.Object(
      {
        ...recordFields(),
        action: Type.Literal(action),
        // An action without details records none (null).
        details:
          Object.keys(auditCatalog[action].properties).length === 0
            ? Type.Null()
            : Type.Union([auditCatalog[action], Type.Null()]),
      },
      { title: auditSchemaName(action) },
    ),
  );
  const other = Type.Object(
    {
      ...recordFields(),
      action: Type.String({ not: { enum: actions } }),
      details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    },
    { title: "OtherAudit", description: "An action this version does not describe." },
  );
  return Type.Union([...variants, other], { discriminator: { propertyName: "action" } });
}
