// Card reveal: the native route that mints a reveal session, the embeddable page (GET /reveal) with its
// compiled script, and the two calls the page makes with `Authorization: RevealSession <token>`. The token
// travels in the URL fragment (never sent to a server, so never in an access log) and in that header (which
// the logger censors). The page gets its own strict CSP: same-origin script, style and fetch only, framed
// only by the session's target origin.
import { existsSync, readFileSync } from "node:fs";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { AppError } from "../../domain/errors.js";
import {
  REVEAL_TTL_MAX_SECONDS,
  REVEAL_TTL_MIN_SECONDS,
  revealFields,
  TARGET_ORIGIN_PATTERN,
} from "../../domain/reveal.js";
import type { RevealService } from "../../services/reveal.js";
import { actorOf, errorResponses, PublicTokenParams } from "./schemas.js";
import { WrappedKeySchema } from "./secure-data.js";

const REVEAL_AUTH = /^RevealSession (\S{1,200})$/;
const SESSION_ID = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

const RevealSessionBody = Type.Object(
  {
    fields: Type.Array(Type.Union(revealFields.map((f) => Type.Literal(f))), {
      minItems: 1,
      maxItems: revealFields.length,
      uniqueItems: true,
      description: "What the page shows; pin only where the card program enables PIN delivery.",
    }),
    targetOrigin: Type.String({
      minLength: 1,
      maxLength: 256,
      pattern: TARGET_ORIGIN_PATTERN,
      description:
        "The origin that embeds the page and alone receives its postMessage events: scheme://host[:port] in lower " +
        "case, no path, no default port; https, or http on a loopback host outside production.",
    }),
    ttlSeconds: Type.Optional(
      Type.Integer({ minimum: REVEAL_TTL_MIN_SECONDS, maximum: REVEAL_TTL_MAX_SECONDS, default: 300 }),
    ),
  },
  { additionalProperties: false },
);

const RevealSessionView = Type.Object({
  id: Type.String(),
  token: Type.String({ description: "Single-use; hand it to the frontend only (it is also in url)." }),
  url: Type.String({
    description:
      "The page to embed, on the configured CARDVAULT_PUBLIC_URL: <publicUrl>/reveal?session=<id>#<token>.",
  }),
  expiresAt: Type.String(),
  fields: Type.Array(Type.String()),
  targetOrigin: Type.String(),
});

const PageKeyView = Type.Object({
  kid: Type.String(),
  use: Type.Union([Type.Literal("wrap"), Type.Literal("sign")]),
  active: Type.Boolean(),
  jwk: Type.Object({ kty: Type.String(), n: Type.String(), e: Type.String() }),
});

const SessionStateView = Type.Object({
  id: Type.String(),
  fields: Type.Array(Type.String()),
  expiresAt: Type.String(),
  keys: Type.Array(PageKeyView),
});

const PageSecureDataView = Type.Object({
  fields: Type.Array(Type.String()),
  iv: Type.String(),
  encryptedPayload: Type.String(),
  signatureOfPayloadAndIv: Type.String(),
  wrapKeyId: Type.String(),
  signingKeyId: Type.String(),
});

/** The page's assets: built by `npm run build:web` into dist/web (found from src/ under tsx and from dist/). */
function assetDir(): string | undefined {
  for (const candidate of ["../../web/", "../../../dist/web/"]) {
    const dir = new URL(candidate, import.meta.url);
    if (existsSync(new URL("reveal/reveal.js", dir))) return dir.pathname;
  }
  return undefined;
}

const assets = new Map<string, string>();
function asset(path: string): string {
  const cached = assets.get(path);
  if (cached !== undefined) return cached;
  const dir = assetDir();
  if (!dir) {
    throw new AppError("service_unavailable", "The reveal page is not built: run `npm run build:web`.");
  }
  const text = readFileSync(`${dir}${path}`, "utf8");
  assets.set(path, text);
  return text;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function pageCsp(frameAncestor: string | undefined): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestor ?? "'none'"}`,
  ].join("; ");
}

function revealToken(request: FastifyRequest): string {
  const match = REVEAL_AUTH.exec(request.headers.authorization ?? "");
  if (!match) {
    throw new AppError(
      "reveal_session_invalid",
      "Send the session token: Authorization: RevealSession <token>.",
    );
  }
  return match[1]!;
}

// The page and its two calls are the page's own protocol, not the integrator's API: they are left out of the
// OpenAPI document (whose every route takes a bearer token) and tested in test/reveal.test.ts.
export function registerRevealRoutes(root: FastifyInstance, reveal: RevealService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ["reveal"];

  app.post(
    "/v1/cards/:publicToken/reveal-sessions",
    {
      config: { scope: "cards:reveal", rateLimit: "reveal", cardParam: "publicToken" },
      schema: {
        tags,
        summary: "Mint a single-use, short-lived session for the embeddable card reveal page; audited.",
        params: PublicTokenParams,
        body: RevealSessionBody,
        response: { 201: RevealSessionView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const session = await reveal.create(actorOf(request), request.params.publicToken, request.body);
      reply.status(201);
      return session;
    },
  );

  app.get(
    "/reveal",
    {
      schema: {
        hide: true,
        summary: "The embeddable card reveal page (HTML); the token follows in the URL fragment.",
        querystring: Type.Object({ session: Type.String({ pattern: SESSION_ID }) }),
      },
    },
    async (request, reply) => {
      const origin = await reveal.frameOrigin(request.query.session);
      const html = asset("reveal/index.html").replace("%TARGET_ORIGIN%", escapeHtml(origin ?? ""));
      reply.header("content-security-policy", pageCsp(origin)).removeHeader("x-frame-options");
      return reply.type("text/html; charset=utf-8").send(html);
    },
  );

  for (const [path, type] of [
    ["reveal/reveal.js", "text/javascript; charset=utf-8"],
    ["reveal/reveal.css", "text/css; charset=utf-8"],
  ] as const) {
    app.get(`/${path}`, { schema: { hide: true } }, async (_request, reply) => {
      return reply.type(type).send(asset(path));
    });
  }

  app.get(
    "/reveal/api/session",
    {
      schema: {
        hide: true,
        summary: "The page's first call: the session's fields, expiry and the keys to use; spends nothing.",
        response: { 200: SessionStateView, ...errorResponses },
      },
    },
    async (request) => {
      const view = await reveal.describe(revealToken(request));
      const { targetOrigin: _origin, ...rest } = view;
      return rest;
    },
  );

  app.post(
    "/reveal/api/secure-data",
    {
      schema: {
        hide: true,
        summary: "Spends the session: the card data encrypted to the page's AES-256 session key, signed.",
        body: Type.Object(
          {
            key: WrappedKeySchema,
            keyId: Type.Optional(Type.String({ pattern: "^[a-z0-9-]{1,64}$" })),
          },
          { additionalProperties: false },
        ),
        response: { 200: PageSecureDataView, ...errorResponses },
      },
    },
    async (request) => {
      const { fields, answer } = await reveal.reveal(
        revealToken(request),
        { wrappedKey: Buffer.from(request.body.key, "base64"), keyId: request.body.keyId },
        { requestId: request.id, route: `${request.method} ${request.routeOptions.url}` },
      );
      if (answer.kind !== "rsa") throw new AppError("internal_error", "Unexpected answer form.");
      const { kind: _kind, ...view } = answer;
      return { fields, ...view };
    },
  );
}
