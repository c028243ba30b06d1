// Native v1: Get Card Data. The device's session key (RSA-wrapped) or its ephemeral P-256 key comes in; card
// data only that device can open goes out, with the ids of the keys used. Never idempotent: a replayed
// answer would be a second delivery of secrets, so Idempotency-Key is ignored here and a used key is a 409.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { SecureDataService } from "../../services/secure-data.js";
import { actorOf, errorResponses, PublicTokenParams } from "./schemas.js";

/** Standard base64; 4096-bit RSA gives 684 characters, the bound leaves room for nothing else. */
export const WrappedKeySchema = Type.String({
  pattern: "^[A-Za-z0-9+/]+={0,2}$",
  minLength: 4,
  maxLength: 1024,
  description: "base64 of the AES-256 session key wrapped with RSA-OAEP (SHA-256) under the wrap key.",
});

const DeviceKeySchema = Type.Object(
  {
    kty: Type.Literal("EC"),
    crv: Type.Literal("P-256"),
    x: Type.String({ pattern: "^[A-Za-z0-9_-]{43}$" }),
    y: Type.String({ pattern: "^[A-Za-z0-9_-]{43}$" }),
    // Harmless members a WebCrypto export carries; a private "d" is refused by omission.
    ext: Type.Optional(Type.Boolean()),
    key_ops: Type.Optional(Type.Array(Type.String(), { maxItems: 4 })),
    kid: Type.Optional(Type.String({ maxLength: 128 })),
    use: Type.Optional(Type.Literal("enc")),
    alg: Type.Optional(Type.Literal("ECDH-ES")),
  },
  { additionalProperties: false, description: "The device's ephemeral public P-256 key as a JWK." },
);

const SecureDataBody = Type.Union([
  Type.Object(
    {
      key: WrappedKeySchema,
      keyId: Type.Optional(Type.String({ pattern: "^[a-z0-9-]{1,64}$", description: "The wrap key used." })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ deviceKey: DeviceKeySchema }, { additionalProperties: false }),
]);

const SecureDataView = Type.Union([
  Type.Object({
    iv: Type.String(),
    encryptedPayload: Type.String(),
    signatureOfPayloadAndIv: Type.String(),
    wrapKeyId: Type.String(),
    signingKeyId: Type.String(),
  }),
  Type.Object({ jwe: Type.String(), signingKeyId: Type.String() }),
]);

const PublicKeyView = Type.Object({
  kid: Type.String(),
  use: Type.Union([Type.Literal("wrap"), Type.Literal("sign")]),
  alg: Type.String(),
  active: Type.Boolean(),
  createdAt: Type.String(),
  notAfter: Type.String(),
  jwk: Type.Object({
    kty: Type.String(),
    n: Type.String(),
    e: Type.String(),
    kid: Type.String(),
    use: Type.String(),
    alg: Type.String(),
  }),
  pem: Type.String(),
});

export function registerSecureDataRoutes(root: FastifyInstance, secureData: SecureDataService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["secure-data"];

  app.post(
    "/v1/cards/:publicToken/secure-data",
    {
      config: { scope: "cards:secure-data", rateLimit: "secure-data", cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Get Card Data: PAN, CVV, expiry (and PIN if enabled) encrypted for the device; audited.",
        params: PublicTokenParams,
        body: SecureDataBody,
        response: { 200: SecureDataView, ...errorResponses },
      },
    },
    async (request) => {
      const body = request.body;
      const answer = await secureData.deliver(
        actorOf(request),
        request.params.publicToken,
        "key" in body
          ? { wrappedKey: Buffer.from(body.key, "base64"), keyId: body.keyId }
          : { deviceKey: body.deviceKey },
      );
      const { kind: _kind, ...view } = answer;
      return view;
    },
  );

  app.get(
    "/v1/secure-data/keys",
    {
      // Public keys, no card secret: nothing to brute-force, so no attempt is counted.
      config: { scope: "cards:secure-data", rateLimit: false, cardParam: false },
      schema: {
        tags,
        summary: "The public wrap and signing keys (JWK and PEM, with kid and not-after).",
        response: { 200: Type.Object({ keys: Type.Array(PublicKeyView) }), ...errorResponses },
      },
    },
    async () => ({ keys: secureData.publicKeys() }),
  );
}
