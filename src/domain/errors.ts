// The closed set of failures the service reports. Every error a client can cause is an AppError with a
// stable code; the HTTP layer maps codes to statuses and shapes (problem+json or a dialect's own shape).
// Messages are written for the client and must never carry a PAN, CVV, PIN, PIN block or key.
export const errorStatus = {
  validation_failed: 400,
  invalid_json: 400,
  unauthorized: 401,
  forbidden: 403,
  /** A validly signed token names a tenant that is not registered here (nothing it could do is meaningful). */
  unknown_tenant: 403,
  card_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  card_closed: 409,
  card_not_virtual: 409,
  concurrent_update: 409,
  /** A rotation to a chosen service code would bring back a CVV the card had in its last 10 rotations. */
  cvv_would_repeat: 409,
  /**
   * The CVV or PIN spent its budget of wrong tries (domain/tries.ts): it stays Blocked and cannot be unblocked
   * until the CVV is rotated or a new PIN is set.
   */
  secret_compromised: 409,
  /** The tenant already has as many webhook endpoints as it may (CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT). */
  webhook_endpoint_limit: 409,
  sandbox_only: 403,
  invalid_state_transition: 409,
  idempotency_in_progress: 409,
  idempotency_key_reused: 422,
  /** Get Card Data: the wrapped session key does not open (RSA-OAEP-SHA256) into a 256-bit AES key. */
  session_key_invalid: 400,
  /** Get Card Data: the device's ephemeral public key is not a usable P-256 key. */
  device_key_invalid: 400,
  /** Get Card Data: this session key (or device key) was already used; a key delivers secrets once. */
  session_key_replayed: 409,
  /** Card reveal: the session token is unknown (or malformed). */
  reveal_session_invalid: 401,
  /** Card reveal: the session already delivered (a session reveals once). */
  reveal_session_used: 409,
  /** Card reveal: the session's lifetime is over. */
  reveal_session_expired: 409,
  /** Card reveal: a PIN was asked for but the card program does not enable PIN delivery. */
  reveal_pin_not_allowed: 403,
  /** The card is suspended: its secrets are not verified, read, delivered or shown (domain/card.ts). */
  card_blocked: 409,
  /** The CVV's (PIN's) try counter is Blocked: it is not read or delivered until unblocked. */
  cvv_blocked: 409,
  pin_blocked: 409,
  /** The card's PIN was imported as a PVV only: verifiable, but there is no PIN to read or deliver. */
  pin_not_retrievable: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  key_unavailable: 500,
  service_unavailable: 503,
  /** The key provider's threads for Get Card Data and their queue are full: nothing was done; retry. */
  overloaded: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface FieldErrors {
  [field: string]: string[];
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fields?: FieldErrors;

  constructor(code: ErrorCode, message: string, options?: { fields?: FieldErrors; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.status = errorStatus[code];
    if (options?.fields) this.fields = options.fields;
  }
}

/**
 * Work of a kind the service is at capacity for (Get Card Data's private-key threads): refused before anything
 * was done, to be retried after `retryAfterSeconds` (the HTTP layer's Retry-After).
 */
export class OverloadedError extends AppError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super("overloaded", message);
    this.name = "OverloadedError";
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Failures a client should retry as they are: nothing was done, and the same request may go through later
 * (a store or key failure, a rate-limit refusal, a card that kept changing under the request). An answer
 * kept for an Idempotency-Key must never be one of these.
 */
export function isTransient(error: AppError): boolean {
  return error.status >= 500 || error.code === "rate_limited" || error.code === "concurrent_update";
}

export const cardNotFound = () => new AppError("card_not_found", "No card with this public token.");

export const validationFailed = (field: string, message: string) =>
  new AppError("validation_failed", message, { fields: { [field]: [message] } });
