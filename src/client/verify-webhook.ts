// Standard Webhooks signatures, for the sender and for receivers: `v1,` + base64 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>" under the bytes of a `whsec_<base64>` secret. Receivers call
// verifyWebhook, which checks the signature in constant time and refuses stale or future timestamps
// (replays). Credential-free: it needs only node:crypto and the endpoint's secret.
import { createHmac, timingSafeEqual } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
const DEFAULT_TOLERANCE_SECONDS = 300;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

export interface VerifyOptions {
  /** How far webhook-timestamp may be from now, either way; 300 s by default. */
  toleranceSeconds?: number;
  /** The current time; the system clock by default. */
  now?: () => Date;
}

function secretBytes(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = Buffer.from(encoded, "base64");
  if (bytes.length === 0) throw new WebhookVerificationError("The webhook secret is empty or not base64.");
  return bytes;
}

/** The webhook-signature header value for one message. */
export function signWebhook(
  message: { id: string; timestamp: number; payload: string },
  secret: string,
): string {
  const mac = createHmac("sha256", secretBytes(secret))
    .update(`${message.id}.${message.timestamp}.${message.payload}`)
    .digest("base64");
  return `v1,${mac}`;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) {
      const text = Array.isArray(value) ? value[0] : value;
      if (text) return text;
    }
  }
  throw new WebhookVerificationError(`The ${name} header is missing.`);
}

/**
 * Verifies a delivery and returns the parsed event. Pass the raw body exactly as received (before any JSON
 * parsing): the signature covers its bytes. Throws WebhookVerificationError when anything does not hold.
 */
export function verifyWebhook<T = unknown>(
  payload: string,
  headers: Record<string, string | string[] | undefined>,
  secret: string,
  options: VerifyOptions = {},
): T {
  const id = header(headers, "webhook-id");
  const timestampText = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!/^[0-9]{1,12}$/.test(timestampText))
    throw new WebhookVerificationError("webhook-timestamp is not a number.");
  const timestamp = Number(timestampText);
  const now = Math.floor((options.now?.() ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookVerificationError(
      "webhook-timestamp is outside the tolerance (a stale or replayed message).",
    );
  }
  const expected = Buffer.from(signWebhook({ id, timestamp, payload }, secret));
  // Several signatures may be sent (space-separated) while a secret is being rotated: one match suffices.
  const matched = signatures.split(" ").some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched) throw new WebhookVerificationError("No webhook-signature matches the payload and secret.");
  try {
    return JSON.parse(payload) as T;
  } catch {
    throw new WebhookVerificationError("The payload is not JSON.");
  }
}
