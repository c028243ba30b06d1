// OAuth2 client credentials (RFC 6749 §4.4) as pure rules: reading a token request (form or JSON body, client
// authentication by HTTP Basic, RFC 6749 §2.3.1, or by client_id/client_secret in the body, never both), the
// scopes a client is granted (all of its own, or the subset it asks for: §3.3), whether a secret is still
// accepted after a rotation, and the refusals of §5.2 with their HTTP statuses. Nothing here sees the store,
// a key or the clock; a refusal's description never repeats a secret.

/** RFC 6749 §5.2 error codes, plus slow_down (RFC 8628 §3.5, registered in the OAuth extensions error registry). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "slow_down"
  | "server_error"
  | "temporarily_unavailable";

/** A refusal of the token endpoint, answered as RFC 6749 §5.2 JSON `{error, error_description}`. */
export class OAuthError extends Error {
  readonly code: OAuthErrorCode;
  /** slow_down: seconds until the failure window ends (Retry-After). */
  readonly retryAfterSeconds?: number;
  /** The client authenticated with HTTP Basic: a 401 then names the Basic scheme (§5.2). */
  basic = false;
  constructor(code: OAuthErrorCode, description: string, retryAfterSeconds?: number) {
    super(description);
    this.name = "OAuthError";
    this.code = code;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
  /** §5.2: 400, except invalid_client (401); slow_down is a 429 with Retry-After. */
  get status(): number {
    if (this.code === "invalid_client") return 401;
    if (this.code === "slow_down") return 429;
    if (this.code === "server_error") return 500;
    if (this.code === "temporarily_unavailable") return 503;
    return 400;
  }
}

/** A token request that is well formed: who claims to ask, and the scopes asked for (undefined: all). */
export interface TokenRequest {
  clientId: string;
  clientSecret: string;
  /** The credentials came in an Authorization: Basic header. */
  basic: boolean;
  scope?: string[];
}

/** Client ids and secrets longer than this are not ours (ours are far shorter); refused before any hashing. */
const MAX_CREDENTIAL_LENGTH = 256;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** The client id of a request, where one is given (for the failure limits and the audit), even if refused later. */
export function claimedClientId(body: unknown, authorization: string | undefined): string | undefined {
  try {
    const basic = basicCredentials(authorization);
    if (basic) return basic.clientId;
  } catch {
    return undefined;
  }
  const id = isRecord(body) ? body.client_id : undefined;
  return typeof id === "string" && id !== "" && id.length <= MAX_CREDENTIAL_LENGTH ? id : undefined;
}

/**
 * Reads a token request: a form or JSON body (an object of parameters) and the Authorization header. Throws
 * OAuthError: invalid_request (a parameter repeated, of the wrong type, or credentials sent both ways),
 * unsupported_grant_type, invalid_client (no credentials, or a Basic header that does not decode).
 * Parameters the RFC does not name are ignored (§3.2).
 */
export function parseTokenRequest(body: unknown, authorization: string | undefined): TokenRequest {
  if (!isRecord(body))
    throw new OAuthError("invalid_request", "The body must hold the request's parameters.");
  const param = (name: string): string | undefined => {
    const value = body[name];
    if (value === undefined) return undefined;
    if (Array.isArray(value))
      throw new OAuthError("invalid_request", `The parameter ${name} is given more than once.`);
    if (typeof value !== "string")
      throw new OAuthError("invalid_request", `The parameter ${name} must be a string.`);
    return value;
  };
  const grantType = param("grant_type");
  if (grantType === undefined || grantType === "")
    throw new OAuthError("invalid_request", "The grant_type parameter is missing.");
  if (grantType !== "client_credentials")
    throw new OAuthError("unsupported_grant_type", "Only the client_credentials grant is supported.");
  const bodyId = param("client_id");
  const bodySecret = param("client_secret");
  const scopeParam = param("scope");

  let basic: { clientId: string; clientSecret: string } | undefined;
  try {
    basic = basicCredentials(authorization);
  } catch (error) {
    if (error instanceof OAuthError) error.basic = true;
    throw error;
  }
  let credentials: TokenRequest;
  if (basic) {
    if (bodySecret !== undefined) {
      throw new OAuthError(
        "invalid_request",
        "Authenticate the client one way: an Authorization: Basic header or client_id and client_secret in the body, not both.",
      );
    }
    if (bodyId !== undefined && bodyId !== basic.clientId) {
      throw new OAuthError(
        "invalid_request",
        "The client_id in the body differs from the one in the Authorization header.",
      );
    }
    credentials = { ...basic, basic: true };
  } else {
    if (authorization !== undefined && authorization !== "") {
      const refusal = new OAuthError("invalid_client", "The Authorization header must use the Basic scheme.");
      refusal.basic = true;
      throw refusal;
    }
    if (!bodyId || bodySecret === undefined || bodySecret === "") {
      throw new OAuthError(
        "invalid_client",
        "Authenticate the client: an Authorization: Basic header, or client_id and client_secret in the body.",
      );
    }
    if (bodyId.length > MAX_CREDENTIAL_LENGTH || bodySecret.length > MAX_CREDENTIAL_LENGTH)
      throw new OAuthError("invalid_client", "The client credentials are not valid.");
    credentials = { clientId: bodyId, clientSecret: bodySecret, basic: false };
  }
  if (scopeParam !== undefined) credentials.scope = scopeList(scopeParam);
  return credentials;
}

/**
 * RFC 6749 §2.3.1: `Basic base64(urlencoded(id) ":" urlencoded(secret))`. Undefined without a Basic header;
 * throws invalid_client for one that does not decode.
 */
function basicCredentials(
  authorization: string | undefined,
): { clientId: string; clientSecret: string } | undefined {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization ?? "");
  if (!match) {
    if (/^Basic\b/i.test(authorization ?? ""))
      throw new OAuthError("invalid_client", "The Basic credentials do not decode.");
    return undefined;
  }
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  let clientId: string;
  let clientSecret: string;
  try {
    clientId = formDecode(decoded.slice(0, colon));
    clientSecret = formDecode(decoded.slice(colon + 1));
  } catch {
    throw new OAuthError("invalid_client", "The Basic credentials do not decode.");
  }
  if (
    colon < 1 ||
    clientSecret === "" ||
    clientId.length > MAX_CREDENTIAL_LENGTH ||
    clientSecret.length > MAX_CREDENTIAL_LENGTH
  )
    throw new OAuthError("invalid_client", "The Basic credentials do not decode.");
  return { clientId, clientSecret };
}

/** application/x-www-form-urlencoded decoding of one value ('+' is a space). */
function formDecode(value: string): string {
  return decodeURIComponent(value.replaceAll("+", " "));
}

/** A scope parameter (§3.3): space-delimited scope tokens; an empty one asks for nothing and is refused. */
export function scopeList(value: string): string[] {
  const list = value.split(" ").filter(Boolean);
  if (list.length === 0) throw new OAuthError("invalid_scope", "The scope parameter is empty.");
  if (!list.every((s) => SCOPE_TOKEN.test(s)))
    throw new OAuthError(
      "invalid_request",
      "The scope parameter holds characters a scope token cannot have.",
    );
  return [...new Set(list)];
}

/** The scopes granted: all of the client's when none are asked for, else exactly those asked (a subset). */
export function grantedScopes(
  clientScopes: readonly string[],
  requested: readonly string[] | undefined,
): string[] {
  if (requested === undefined) return [...clientScopes];
  const beyond = requested.filter((s) => !clientScopes.includes(s));
  if (beyond.length > 0) {
    throw new OAuthError(
      "invalid_scope",
      `The client may not be granted ${beyond.map((s) => JSON.stringify(s.slice(0, 40))).join(", ")}; its scopes: ${clientScopes.join(" ")}.`,
    );
  }
  return [...requested];
}

/** A client's stored secrets at a given instant: the current one always, the previous one until its window ends. */
export function acceptedSecretHashes(
  client: { secret_hash: string; previous_secret_hash: string | null; previous_valid_until: string | null },
  now: Date,
): string[] {
  const hashes = [client.secret_hash];
  if (
    client.previous_secret_hash &&
    client.previous_valid_until &&
    now.toISOString() < client.previous_valid_until
  )
    hashes.push(client.previous_secret_hash);
  return hashes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
