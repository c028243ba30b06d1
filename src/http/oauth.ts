// The OAuth2 token endpoint (client credentials, RFC 6749 §4.4) at /oauth2/token and at /connect/token (where
// Thredd's and IdentityServer-style clients look), and the access-token keys at /.well-known/jwks.json.
// An encapsulated plugin: only here is application/x-www-form-urlencoded parsed (RFC 6749 §4.4.2 requires it;
// JSON is accepted too), and every refusal is RFC 6749 §5.2 JSON `{error, error_description}`, not problem+json,
// with Cache-Control: no-store (§5.1). Thin: the access-token service holds every rule.
import formbody from "@fastify/formbody";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { OAuthError, type OAuthErrorCode } from "../domain/oauth.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { AccessTokenService } from "../services/access-tokens.js";
import { toAppError } from "./problems.js";

/** The token endpoint is served at `<prefix>/token` under each: /oauth2 (ours), /connect (where Thredd clients look). */
const TOKEN_PREFIXES = ["/oauth2", "/connect"] as const;

const TokenRequestBody = Type.Object(
  {
    grant_type: Type.Literal("client_credentials"),
    scope: Type.Optional(Type.String({ description: "Space-separated; a subset of the client's scopes." })),
    client_id: Type.Optional(Type.String({ description: "With client_secret, instead of HTTP Basic." })),
    client_secret: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
const TokenAnswer = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal("Bearer"),
  expires_in: Type.Integer(),
  scope: Type.String(),
});
const OAuthErrorBody = Type.Object({
  error: Type.String({
    enum: [
      "invalid_request",
      "invalid_client",
      "unauthorized_client",
      "unsupported_grant_type",
      "invalid_scope",
      "slow_down",
      "server_error",
      "temporarily_unavailable",
    ],
  }),
  error_description: Type.String(),
});
const Jwks = Type.Object({
  keys: Type.Array(
    Type.Object({
      kty: Type.Literal("OKP"),
      crv: Type.Literal("Ed25519"),
      x: Type.String(),
      kid: Type.String(),
      use: Type.Literal("sig"),
      alg: Type.Literal("EdDSA"),
    }),
  ),
});

/** How long verifiers may cache the key set; a token naming a kid they lack makes jose fetch again anyway. */
const JWKS_MAX_AGE_SECONDS = 300;

/** §5.1/§5.2: the answer and every refusal are never cached. */
function noStore(reply: FastifyReply) {
  return reply.header("cache-control", "no-store").header("pragma", "no-cache");
}

function sendRefusal(reply: FastifyReply, refusal: OAuthError, status = refusal.status) {
  noStore(reply).status(status);
  // §5.2: a client that tried HTTP Basic is answered with a Basic challenge; one that sent its credentials in
  // the body (or none) gets the 401 without one (the header is required only for the former).
  if (refusal.status === 401 && refusal.basic)
    reply.header("www-authenticate", 'Basic realm="cardvault", charset="UTF-8"');
  if (refusal.retryAfterSeconds !== undefined) reply.header("retry-after", String(refusal.retryAfterSeconds));
  return reply.send({ error: refusal.code, error_description: refusal.message });
}

/** What went wrong before the route ran (a body that does not parse, a media type we do not read), as §5.2. */
function oauthCodeOf(status: number): OAuthErrorCode {
  if (status === 503) return "temporarily_unavailable";
  if (status >= 500) return "server_error";
  if (status === 429) return "slow_down";
  return "invalid_request";
}

export async function registerOAuthRoutes(
  root: FastifyInstance,
  deps: { accessTokens: AccessTokenService; keys: Pick<KeyProvider, "accessTokenPublicKeys"> },
): Promise<void> {
  // One scope per prefix, so that each can answer its own unknown paths and methods in the RFC's shape.
  for (const prefix of TOKEN_PREFIXES) await root.register((scope) => tokenScope(scope, deps), { prefix });
  await root.register(async (scope) => {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      "/.well-known/jwks.json",
      {
        // A well-known resource (RFC 8414 §3's jwks_uri) that JOSE libraries fetch, not an API operation: left out of
        // the OpenAPI document like /healthz; docs/api.md describes it.
        schema: { hide: true, response: { 200: Jwks } },
      },
      async (_request, reply) => {
        reply.header("cache-control", `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
        return { keys: deps.keys.accessTokenPublicKeys().map((k) => k.jwk) };
      },
    );
  });
}

async function tokenScope(scope: FastifyInstance, deps: { accessTokens: AccessTokenService }): Promise<void> {
  await scope.register(formbody);
  const app = scope.withTypeProvider<TypeBoxTypeProvider>();
  app.addHook("onRoute", (route) => {
    route.config = { ...route.config, errorMediaType: "application/json" };
  });
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { appError, unexpected } = toAppError(error);
    if (unexpected) request.log.error({ err: error }, "request failed");
    // Keep the status (413, 415, 503…); the body is the RFC's. Nothing before the route authenticates.
    const status = appError.status === 401 ? 400 : appError.status;
    const message =
      appError.code === "unsupported_media_type"
        ? "Send the parameters as application/x-www-form-urlencoded (or application/json)."
        : appError.message;
    return sendRefusal(reply, new OAuthError(oauthCodeOf(status), message), status);
  });

  const tags = ["oauth"];
  app.post(
    "/token",
    {
      schema: {
        tags,
        summary: "OAuth2 client credentials: an access token for an API client (RFC 6749 §4.4).",
        description:
          "Form (application/x-www-form-urlencoded) or JSON. Client authentication by HTTP Basic or by client_id and client_secret in the body. Refusals are RFC 6749 §5.2 JSON.",
        body: TokenRequestBody,
        response: { 200: TokenAnswer, 400: OAuthErrorBody, 401: OAuthErrorBody, 429: OAuthErrorBody },
      },
      // Validation is the service's, so that every refusal has the RFC's shape; the schema documents.
      attachValidation: true,
    },
    async (request, reply) => {
      try {
        const answer = await deps.accessTokens.issue({
          body: request.body,
          authorization: request.headers.authorization,
          source: request.ip,
          requestId: request.id,
        });
        return noStore(reply).send(answer);
      } catch (error) {
        if (error instanceof OAuthError) return sendRefusal(reply, error);
        throw error;
      }
    },
  );

  // A method the token path lacks (405 with Allow, RFC 9110 §15.5.6) or an unknown path under the prefix, as
  // the RFC's JSON like every other answer here.
  app.setNotFoundHandler((request, reply) => {
    const allow = request.server.allowedMethods?.of(request.url) ?? [];
    if (allow.length === 0)
      return sendRefusal(
        reply,
        new OAuthError("invalid_request", "No such endpoint: the token endpoint is POST …/token."),
        404,
      );
    reply.header("allow", allow.join(", "));
    return sendRefusal(
      reply,
      new OAuthError("invalid_request", `${request.method} is not allowed here; use ${allow.join(", ")}.`),
      405,
    );
  });
}
