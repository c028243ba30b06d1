// One place where failures become responses. Every error is first normalised to an AppError (Fastify's
// validation and parser errors included), then rendered in the shape of the API that was called: RFC 9457
// problem+json for the native API, each dialect's vendor shape for its routes (dialectErrorHandler). Nothing
// a client sends produces a 500; a real 500 never echoes its internal message.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode, type FieldErrors, isTransient } from "../domain/errors.js";
import type { AllowedMethods } from "./allowed-methods.js";

const PROBLEM_BASE = "https://cardvault.dev/problems/";

declare module "fastify" {
  interface FastifyInstance {
    /** The methods each path has (app.ts fills it as routes register), for 405 answers. */
    allowedMethods?: AllowedMethods;
  }
  interface FastifyContextConfig {
    /** The media type of the route's error bodies, set by its scope's setErrorShape (for the OpenAPI document). */
    errorMediaType?: string;
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  traceId: string;
  errors?: FieldErrors;
}

const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

interface AjvIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/**
 * Maps anything thrown while handling a request to the AppError a client is shown; unexpected says it is
 * logged as an error, clientAborted that the client closed its connection before its request was read.
 */
export function toAppError(error: unknown): {
  appError: AppError;
  unexpected: boolean;
  clientAborted?: true;
} {
  if (error instanceof AppError) return { appError: error, unexpected: error.status >= 500 };
  // Checked before the store's failures: a client's reset carries the same socket codes as a database's.
  if (isClientAbort(error)) {
    return {
      appError: new AppError("validation_failed", "The connection closed before the request body was read."),
      unexpected: false,
      clientAborted: true,
    };
  }
  const fastifyError = error as Partial<FastifyError> & {
    validation?: AjvIssue[];
    validationContext?: string;
  };
  if (fastifyError.validation) {
    const fields = fieldErrors(fastifyError.validation, fastifyError.validationContext ?? "body");
    return {
      appError: new AppError("validation_failed", "The request is not valid; see errors for each field.", {
        fields,
      }),
      unexpected: false,
    };
  }
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return {
        appError: new AppError("payload_too_large", "The request body is too large."),
        unexpected: false,
      };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return {
        appError: new AppError("unsupported_media_type", "Send the body as application/json."),
        unexpected: false,
      };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return { appError: new AppError("invalid_json", "The JSON body is empty."), unexpected: false };
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { appError: new AppError("invalid_json", "The body is not valid JSON."), unexpected: false };
  }
  if (isStoreUnavailable(error)) {
    return {
      appError: new AppError(
        "service_unavailable",
        "The database is unavailable; retry shortly. Nothing was changed.",
      ),
      unexpected: true,
    };
  }
  const status = fastifyError.statusCode ?? 500;
  if (error instanceof SyntaxError && status === 400) {
    return { appError: new AppError("invalid_json", "The body is not valid JSON."), unexpected: false };
  }
  if (status >= 400 && status < 500) {
    return {
      appError: new AppError(codeForStatus(status), titles[status] ?? "The request was refused."),
      unexpected: false,
    };
  }
  return {
    appError: new AppError("internal_error", "Something went wrong on our side; it has been logged."),
    unexpected: true,
  };
}

/** Socket-level failures: of the database's connections, or of the client's own socket. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNABORTED"]);

// Connection-level failures of PostgreSQL (class 08, admin shutdown 57P0x, pool/socket errors) and the
// SQLite conditions an operator fixes without a code change (disk full, read-only, locked, I/O error).
const UNAVAILABLE_CODES = new Set([
  ...SOCKET_CODES,
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  // PostgreSQL: read-only transaction (a replica, or default_transaction_read_only), disk full, too many clients.
  "25006",
  "53100",
  "53300",
  "SQLITE_FULL",
  "SQLITE_READONLY",
  "SQLITE_BUSY",
  "SQLITE_IOERR",
  "SQLITE_CANTOPEN",
]);

function primaryCode(code: string): string {
  return /^SQLITE_[A-Z]+/.exec(code)?.[0] ?? code;
}

/**
 * The client's socket failed while its request was read: Node aborts the request stream with ECONNRESET
 * "aborted" when the connection closes mid-body, and Fastify's body reader passes any stream error on with a
 * 4xx statusCode. A store's errors never carry a statusCode (they do not come from the request stream).
 */
export function isClientAbort(error: unknown): boolean {
  const candidate = error as { code?: unknown; message?: unknown; statusCode?: unknown } | null;
  if (!candidate || typeof candidate !== "object") return false;
  if (typeof candidate.code !== "string" || !SOCKET_CODES.has(candidate.code)) return false;
  return candidate.message === "aborted" || typeof candidate.statusCode === "number";
}

/** A transaction that failed for one of these rolled back: the request changed nothing. */
export function isStoreUnavailable(error: unknown): boolean {
  const candidate = error as { code?: unknown; message?: unknown } | null;
  if (!candidate || typeof candidate !== "object") return false;
  if (isClientAbort(error)) return false;
  // SQLite's extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_FSYNC…) count as their primary code.
  if (typeof candidate.code === "string" && UNAVAILABLE_CODES.has(primaryCode(candidate.code))) return true;
  return (
    typeof candidate.message === "string" &&
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      candidate.message,
    )
  );
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 405) return "method_not_allowed";
  if (status === 413) return "payload_too_large";
  if (status === 415) return "unsupported_media_type";
  if (status === 429) return "rate_limited";
  return "validation_failed";
}

function fieldErrors(issues: AjvIssue[], context: string): FieldErrors {
  // Field names come from the client ("constructor", "__proto__"…): a prototype-less map keeps them plain keys.
  const fields: FieldErrors = Object.create(null);
  for (const issue of issues) {
    const path = issue.instancePath.replace(/^\//, "").replaceAll("/", ".");
    const name =
      issue.keyword === "required"
        ? joinPath(path, String(issue.params.missingProperty))
        : issue.keyword === "additionalProperties"
          ? joinPath(path, String(issue.params.additionalProperty))
          : path || context;
    const message =
      issue.keyword === "additionalProperties"
        ? "is not a known field"
        : issue.keyword === "required"
          ? "is required"
          : issue.keyword === "not"
            ? "is not accepted here (the field's documentation says why)"
            : (issue.message ?? "is invalid");
    const list = fields[name] ?? [];
    if (!list.includes(message)) list.push(message);
    fields[name] = list;
  }
  return fields;
}

function joinPath(path: string, leaf: string): string {
  return path ? `${path}.${leaf}` : leaf;
}

export function renderProblem(error: AppError, traceId: string): Problem {
  return {
    type: `${PROBLEM_BASE}${error.code}`,
    title: titles[error.status] ?? "Error",
    status: error.status,
    detail: error.message,
    code: error.code,
    traceId,
    ...(error.fields ? { errors: error.fields } : {}),
  };
}

/** How one API shows an error to its clients; the rest of error handling is the same for every API. */
export interface ErrorShape {
  /** The body's media type; left unset, Fastify's JSON default applies. */
  contentType?: string;
  /** The body, from the normalised error (with per-field messages for validation failures) and the request id. */
  body(error: AppError, requestId: string): unknown;
  /** An unknown route's message, where the vendor documents one; otherwise it names the method and path. */
  notFoundMessage?: string;
}

/**
 * The error handler of one API: normalise (toAppError), log what was unexpected (without request bodies),
 * challenge a 401 with WWW-Authenticate, say when to retry (Retry-After: a 429, a full pool's 503), answer with the request id
 * and the API's own body.
 */
export function dialectErrorHandler(shape: ErrorShape) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { appError, unexpected, clientAborted } = toAppError(error);
    if (unexpected) request.log.error({ err: error }, "request failed");
    // Nobody is left to answer; a client that goes away is routine, not an incident.
    if (clientAborted) request.log.debug({ err: error }, "client closed the connection mid-request");
    if (appError.status === 401) reply.header("www-authenticate", 'Bearer realm="cardvault"');
    const retryAfter = retryAfterOf(appError);
    if (retryAfter !== undefined) reply.header("retry-after", String(retryAfter));
    request.transientFailure = isTransient(appError);
    reply.status(appError.status).header("x-request-id", request.id);
    if (shape.contentType) reply.type(shape.contentType);
    return reply.send(shape.body(appError, request.id));
  };
}

/** When a refused request may be sent again, for those that say (RateLimitedError, OverloadedError). */
function retryAfterOf(error: AppError): number | undefined {
  return "retryAfterSeconds" in error && typeof error.retryAfterSeconds === "number"
    ? error.retryAfterSeconds
    : undefined;
}

/**
 * Every failure in a scope (the app, or a dialect's encapsulated plugin), unknown routes included, in one shape;
 * each route of the scope records the shape's media type, so the OpenAPI document says what is really sent.
 */
export function setErrorShape(scope: FastifyInstance, shape: ErrorShape): void {
  const handle = dialectErrorHandler(shape);
  scope.setErrorHandler(handle);
  // Without a contentType, Fastify sends the object as JSON.
  const errorMediaType = shape.contentType ?? "application/json";
  scope.addHook("onRoute", (route) => {
    route.config = { ...route.config, errorMediaType };
  });
  scope.setNotFoundHandler((request, reply) => {
    // A path that exists under other methods answers 405 with what it allows (RFC 9110 §15.5.6), not 404.
    const allow = request.server.allowedMethods?.of(request.url) ?? [];
    if (allow.length > 0) {
      reply.header("allow", allow.join(", "));
      return handle(
        new AppError("method_not_allowed", `${request.method} is not allowed here; use ${allow.join(", ")}.`),
        request,
        reply,
      );
    }
    return handle(
      new AppError(
        "not_found",
        shape.notFoundMessage ?? `No route for ${request.method} ${request.url.split("?")[0]}.`,
      ),
      request,
      reply,
    );
  });
}

/** The native API's shape: RFC 9457 problem+json. */
export const problemShape: ErrorShape = { contentType: "application/problem+json", body: renderProblem };
