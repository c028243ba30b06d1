// The process logger (pino, which Fastify uses). Request bodies and headers are never logged (a request
// is logged as id, method and url); any field named like a card secret or a credential, at the top of a log
// object or one level down (e.g. `headers.authorization`), is censored as a second line of defence.
import pino, { type DestinationStream, type Logger } from "pino";

const CENSOR = "[redacted]";

/** Field names that may hold a card secret, a key or a credential. */
const SECRET_FIELDS = new Set([
  "pan",
  "cvv",
  "pin",
  "pinBlock",
  "cardPin",
  "key",
  "token",
  "masterKey",
  "secret",
  "authorization",
  "cookie",
  "idempotency-key",
  "idempotencykey",
]);

/**
 * Censors secret-named fields of a log object and of the objects it holds. A plain key lookup: pino's
 * wildcard redaction did the same at several times the cost a line (BENCHMARKS.md), paid by every request.
 */
export function censorSecrets(object: Record<string, unknown>): Record<string, unknown> {
  let out = object;
  for (const [name, value] of Object.entries(object)) {
    let censored: unknown = value;
    if (SECRET_FIELDS.has(name)) censored = CENSOR;
    else if (isPlainObject(value)) {
      const inner = value as Record<string, unknown>;
      if (Object.keys(inner).some((key) => SECRET_FIELDS.has(key))) {
        censored = Object.fromEntries(
          Object.entries(inner).map(([key, v]) => [key, SECRET_FIELDS.has(key) ? CENSOR : v]),
        );
      }
    }
    if (censored !== value) {
      if (out === object) out = { ...object };
      out[name] = censored;
    }
  }
  return out;
}

/** Only plain objects are copied: a class instance (a request, an error) keeps its prototype's getters. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // The log object before serialization; errors once serialized (an error's own fields, e.g. a library's
      // `key`, are censored like any other); and secret-named bindings of child loggers, which pino passes
      // through the serializers of their names but not through the formatter.
      formatters: { log: censorSecrets },
      serializers: {
        ...Object.fromEntries([...SECRET_FIELDS].map((name) => [name, () => CENSOR])),
        err: (error: Error) =>
          censorSecrets(pino.stdSerializers.err(error) as unknown as Record<string, unknown>),
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
        }),
      },
    },
    destination,
  );
}
