// buildApp(deps): the HTTP application without listen(), so tests drive it with inject() or a real port.
// Cross-cutting rules live here once: request ids, security headers, authentication and idempotency as each
// route's declared contract says (route-contract.ts, checked here at registration; its rate-limit class and
// card parameter reach the services through actorOf), one error handler, the audit of refused requests (counted
// per caller and minute, written every few seconds and on close), 405 with Allow for a method a path lacks
// (allowed-methods.ts, answered in each scope's error shape by problems.ts), and the OpenAPI document
// (openapi.ts).
import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
  type RouteOptions,
} from "fastify";
import { AppError, type ErrorCode } from "../domain/errors.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { Services } from "../runtime.js";
import type { Refusal } from "../services/audit.js";
import type { Store } from "../store/db.js";
import type { IdempotencyRepo } from "../store/idempotency-repo.js";
import type { Telemetry } from "../telemetry/instrument.js";
import { createAllowedMethods } from "./allowed-methods.js";
import { type Principal, requireScope, type TokenVerifier } from "./auth.js";
import { registerDialects } from "./dialects/index.js";
import { registerHealthRoutes } from "./health.js";
import { idempotencyHooks } from "./idempotency.js";
import { registerOAuthRoutes } from "./oauth.js";
import { openapiOptions } from "./openapi.js";
import { problemShape, setErrorShape } from "./problems.js";
import { type RouteContract, routeContract } from "./route-contract.js";
import { registerTelemetryHooks } from "./telemetry.js";
import { registerV1Routes } from "./v1/index.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Every authenticated route's declared contract, in registration order (HEAD twins of GETs included). */
    routeContracts: readonly RouteContract[];
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface AppDeps {
  services: Services;
  /** The idempotency keys' store: plumbing of the HTTP layer, not a service. */
  idempotency: IdempotencyRepo;
  verifier: TokenVerifier;
  store: Pick<Store, "ping" | "db">;
  /** Readiness asks the key provider for its active keys (health.ts); the JWKS route for its token keys. */
  keys: Pick<KeyProvider, "activeKeyId" | "accessTokenPublicKeys">;
  clock: Clock;
  bodyLimitBytes: number;
  idempotencyTtlHours: number;
  /** Serve the Swagger UI page at /docs (config.apiDocs: off in production unless enabled). */
  apiDocs: boolean;
  /** Where clients reach the API (config.publicUrl): the OpenAPI document's server. */
  publicUrl: string;
  logger?: FastifyServerOptions["loggerInstance"] | boolean;
  /** Request metrics and spans (http/telemetry.ts), when on. */
  telemetry?: Telemetry;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const BEARER = /^Bearer ([A-Za-z0-9_.+/=-]+)$/;

const SECURITY_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "cross-origin-resource-policy": "same-origin",
};
/** Everything but the API documentation page (which runs Swagger UI's scripts) may not be framed or run any. */
const API_SECURITY_HEADERS = {
  ...SECURITY_HEADERS,
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
};
/**
 * The API documentation page: Swagger UI's own files only (its index page loads every script from /docs/static,
 * none inline), the document it fetches from /docs/json, its data: icons; inline styles, which its React views
 * and rendered Markdown set. Never framed, no forms posted, no plugins.
 */
const DOCS_SECURITY_HEADERS = {
  ...SECURITY_HEADERS,
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
};

/** One log line per request, written when it is answered, instead of Fastify's two (the first at debug). */
class OneLineLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, "incoming request");
  }
  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, "request errored");
    else reply.log.info(line, "request completed");
  }
}

const BODILESS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);

/** The refusals of authentication and authorisation, which the audit counts (services/audit.ts). */
const AUDITED_REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "unauthorized",
  "forbidden",
  "unknown_tenant",
  "reveal_session_invalid",
]);
/** How often the counts of minutes that are over are written. */
const REFUSAL_FLUSH_MS = 10_000;
/** A tenant named by an unregistered token is kept to this length in the operator's record. */
const CLAIMED_TENANT_MAX = 64;

/**
 * Who was refused and how, for the audit: the verified token's subject, or the client's address when no token
 * verified (never the token). Only a wrong scope is refused in a tenant known to be registered: that row is the
 * tenant's; every other one is the operator's.
 */
function refusalOf(request: FastifyRequest, code: ErrorCode): Refusal {
  const principal = request.principal;
  const details: Refusal["details"] = {};
  if (code === "forbidden") details.scope = request.routeOptions.config.scope ?? "";
  if (code === "unknown_tenant" && principal)
    details.tenant = principal.tenantId.slice(0, CLAIMED_TENANT_MAX);
  if (code === "unauthorized") {
    details.reason = BEARER.test(request.headers.authorization ?? "") ? "token_refused" : "no_token";
  }
  return {
    tenantId: code === "forbidden" && principal ? principal.tenantId : null,
    caller: principal ? principal.subject : `client:${request.ip}`,
    outcome: code,
    details,
    requestId: request.id,
  };
}

/** /docs and what lies under it, not a path that merely starts with the same letters (/docsfoo). */
function isDocsUrl(url: string): boolean {
  return url === "/docs" || url.startsWith("/docs/") || url.startsWith("/docs?");
}

/** A missing JSON body is an empty object, so validation names the missing fields, not "body must be object". */
async function emptyBodyAsObject(request: FastifyRequest) {
  if (request.body === undefined) request.body = {};
}

type RouteHookName = "onRequest" | "preValidation" | "preHandler" | "onSend";

/**
 * Adds the app's hooks to a route's own: before them (authentication, limits and idempotency come first,
 * whatever a route adds) or, for onSend, after them (idempotency keeps the answer as it finally goes out).
 */
function addRouteHooks(
  route: RouteOptions,
  name: RouteHookName,
  hooks: ((...args: never[]) => unknown)[],
  where: "first" | "last" = "first",
) {
  if (hooks.length === 0) return;
  const existing = route[name] as unknown;
  const own = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  (route as unknown as Record<RouteHookName, unknown[]>)[name] =
    where === "first" ? [...hooks, ...own] : [...own, ...hooks];
}

export async function buildApp(deps: AppDeps) {
  const app = Fastify({
    ...(typeof deps.logger === "object" ? { loggerInstance: deps.logger } : { logger: deps.logger ?? false }),
    bodyLimit: deps.bodyLimitBytes,
    logController: new OneLineLogController(),
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: false },
    },
    return503OnClosing: true,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
  }).withTypeProvider<TypeBoxTypeProvider>();

  if (deps.telemetry) registerTelemetryHooks(app, deps.telemetry);
  setErrorShape(app, problemShape);
  // A JSON API: plain text is not a body we accept (415).
  app.removeContentTypeParser("text/plain");
  // Card imports stream NDJSON (one card a line): kept as text for the import service to read line by line.
  app.addContentTypeParser("application/x-ndjson", { parseAs: "string" }, (_request, body, done) =>
    done(null, body),
  );

  // Security headers go on every answer, errors and refusals included, so they are set before anything can
  // fail. A route that sets its own policy (the card reveal page, framed by its session's origin) replaces it.
  app.addHook("onRequest", (request, reply, done) => {
    reply.headers(isDocsUrl(request.url) ? DOCS_SECURITY_HEADERS : API_SECURITY_HEADERS);
    reply.header("x-request-id", request.id);
    done();
  });

  const authenticate = async (request: FastifyRequest) => {
    const scope = request.routeOptions.config.scope;
    if (!scope) return;
    const match = BEARER.exec(request.headers.authorization ?? "");
    if (!match) throw new AppError("unauthorized", "Send a bearer token: Authorization: Bearer <JWT>.");
    request.principal = await deps.verifier.verify(match[1]!);
    // A good signature over a tenant this service does not hold is refused here, once, for every route.
    if (!(await deps.services.tenants.isKnown(request.principal.tenantId))) {
      throw new AppError("unknown_tenant", "The bearer token names a tenant that is not registered here.");
    }
    requireScope(request.principal, scope);
  };

  // Refused requests are counted, not written one by one (an unauthenticated flood must not become writes).
  const refusals = deps.services.refusals;
  app.addHook("onError", async (request, _reply, error) => {
    if (error instanceof AppError && AUDITED_REFUSALS.has(error.code)) {
      refusals.note(refusalOf(request, error.code));
    }
  });
  const auditFailed = (error: unknown) => app.log.error({ err: error }, "refused requests not audited");
  const flushing = setInterval(() => refusals.flushEnded().catch(auditFailed), REFUSAL_FLUSH_MS);
  flushing.unref();
  app.addHook("onClose", async () => {
    clearInterval(flushing);
    await refusals.flush().catch(auditFailed);
  });

  const idempotency = idempotencyHooks({
    idempotency: deps.idempotency,
    clock: deps.clock,
    ttlHours: deps.idempotencyTtlHours,
  });

  // Each route gets only the hooks its contract needs (a request pays for every hook it passes through).
  // A contract that cannot hold throws here, so the app does not start. The scope a route needs is published
  // in the OpenAPI document (3.1 allows role names in a bearer requirement).
  const routeContracts: RouteContract[] = [];
  app.decorate("routeContracts", routeContracts);
  const allowedMethods = createAllowedMethods();
  app.decorate("allowedMethods", allowedMethods);
  app.addHook("onRoute", (route) => {
    routeContracts.push(...routeContract(route));
    allowedMethods.add(route.method, route.url);
    const { scope, idempotent } = route.config ?? {};
    if (scope) {
      route.schema = { ...route.schema, security: [{ bearer: [scope] }] };
      addRouteHooks(route, "onRequest", [authenticate]);
    }
    if ([route.method].flat().some((method) => !BODILESS.has(method))) {
      addRouteHooks(route, "preValidation", [emptyBodyAsObject]);
    }
    addRouteHooks(route, "preHandler", idempotent ? [idempotency.preHandler] : []);
    if (idempotent) addRouteHooks(route, "onSend", [idempotency.onSend], "last");
  });

  await app.register(swagger, openapiOptions(deps.publicUrl));
  if (deps.apiDocs) await app.register(swaggerUi, { routePrefix: "/docs" });

  registerHealthRoutes(app, { store: deps.store, keys: deps.keys });
  registerV1Routes(app, deps.services);
  await registerDialects(app, deps.services);
  await registerOAuthRoutes(app, { accessTokens: deps.services.accessTokens, keys: deps.keys });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  return app;
}

export type CardvaultApp = Awaited<ReturnType<typeof buildApp>>;
