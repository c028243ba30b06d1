// The process logger (pino, which Fastify uses). Request bodies are never logged; headers that carry
// credentials and any field named like a card secret are censored as a second line of defence.
import pino, { type DestinationStream, type Logger } from "pino";

export const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers.idempotencykey",
  "req.headers['idempotency-key']",
  "*.pan",
  "*.cvv",
  "*.pin",
  "*.pinBlock",
  "*.cardPin",
  "*.key",
  "*.token",
  "*.masterKey",
  "*.secret",
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      serializers: {
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
