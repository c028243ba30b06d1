// Bearer-token authentication: JWTs signed with HS256 (a shared secret) or RS/ES/EdDSA (a JWKS file or URL),
// with an algorithm allow-list, exp/nbf, and issuer/audience when configured; and the service's own access
// tokens (POST /oauth2/token): typ at+jwt, EdDSA, a kid naming one of the key provider's access-token keys,
// iss and aud the service's public URL. Scopes are read from `scope` (space-separated, RFC 8693 / 9068) and from
// `scp` (an array, as Okta sends it, or a space-separated string, as Entra ID does). A verified token is cached
// until it expires: the signature check is the costliest step on the authorisation path and its answer cannot
// change.
import { readFileSync } from "node:fs";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from "jose";
import type { AuthConfig } from "../config.js";
import { AppError } from "../domain/errors.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";

export interface Principal {
  subject: string;
  tenantId: string;
  scopes: ReadonlySet<string>;
}

export const scopes = [
  "cards:read",
  "cards:write",
  "cvv:read",
  "cvv:verify",
  "cvv:manage",
  "pin:read",
  "pin:write",
  "pin:verify",
  "pin:manage",
  "audit:read",
  "events:read",
  "webhooks:manage",
  "cards:secure-data",
  "cards:reveal",
  "cards:import",
] as const;
export type Scope = (typeof scopes)[number];

export interface TokenVerifier {
  verify(token: string): Promise<Principal>;
}

const CACHE_LIMIT = 10_000;
const CLOCK_TOLERANCE_SECONDS = 5;

/** The service's own access tokens: who issues them (iss and aud) and the keys that sign them. */
export interface OwnTokens {
  issuer: string;
  keys: Pick<KeyProvider, "accessTokenPublicKeys">;
}

export function createTokenVerifier(auth: AuthConfig, clock: Clock, own?: OwnTokens): TokenVerifier {
  const key = verificationKey(auth);
  const ownKey: JWTVerifyGetKey | undefined = own
    ? (header) => {
        const found = own.keys.accessTokenPublicKeys().find((k) => k.kid === header.kid);
        if (!found) throw new Error("unknown kid");
        return createLocalJWKSet({ keys: [found.jwk] })(header);
      }
    : undefined;
  /** Whether a token's header names one of the service's own signing keys (checked again when verifying). */
  const isOwn = (token: string) => {
    if (!own) return false;
    const kid = decodeProtectedHeader(token).kid;
    return kid !== undefined && own.keys.accessTokenPublicKeys().some((k) => k.kid === kid);
  };
  const cache = new Map<string, { principal: Principal; expiresAt: number; notBefore: number }>();

  return {
    async verify(token) {
      const now = clock.now().getTime();
      const hit = cache.get(token);
      if (hit && now < hit.expiresAt && now >= hit.notBefore) return hit.principal;
      if (hit) cache.delete(token);

      let payload: JWTPayload;
      try {
        const common = { clockTolerance: CLOCK_TOLERANCE_SECONDS, currentDate: new Date(now) };
        if (own && ownKey && isOwn(token)) {
          payload = (
            await jwtVerify(token, ownKey, {
              ...common,
              algorithms: ["EdDSA"],
              typ: "at+jwt",
              issuer: own.issuer,
              audience: own.issuer,
              requiredClaims: ["exp", "sub", "iat", "jti"],
            })
          ).payload;
        } else {
          const options = {
            ...common,
            algorithms: auth.algorithms,
            requiredClaims: ["exp", "sub"],
            ...(auth.issuer ? { issuer: auth.issuer } : {}),
            ...(auth.audience ? { audience: auth.audience } : {}),
          };
          payload = (await jwtVerify(token, key, options)).payload;
        }
      } catch {
        throw new AppError("unauthorized", "The bearer token is invalid or expired.");
      }
      const principal = toPrincipal(payload, auth.tenantClaim);
      if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
      cache.set(token, {
        principal,
        expiresAt: (payload.exp ?? 0) * 1000 + CLOCK_TOLERANCE_SECONDS * 1000,
        notBefore: ((payload.nbf ?? 0) - CLOCK_TOLERANCE_SECONDS) * 1000,
      });
      return principal;
    },
  };
}

function verificationKey(auth: AuthConfig): JWTVerifyGetKey {
  if (auth.jwksFile) return createLocalJWKSet(JSON.parse(readFileSync(auth.jwksFile, "utf8")));
  if (auth.jwksUrl) return createRemoteJWKSet(new URL(auth.jwksUrl));
  if (!auth.hs256Secret) throw new Error("No JWT verification key configured.");
  const secret = new TextEncoder().encode(auth.hs256Secret);
  return async () => secret;
}

function toPrincipal(payload: JWTPayload, tenantClaim: string): Principal {
  const tenantId = payload[tenantClaim];
  if (
    typeof tenantId !== "string" ||
    tenantId === "" ||
    typeof payload.sub !== "string" ||
    payload.sub === ""
  ) {
    throw new AppError("unauthorized", `The bearer token lacks the "sub" or "${tenantClaim}" claim.`);
  }
  return { subject: payload.sub, tenantId, scopes: scopesOf(payload) };
}

/** `scope` (space-separated) and `scp` (an array of strings, or space-separated): the union of both. */
function scopesOf(payload: JWTPayload): Set<string> {
  const found = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === "string") for (const s of value.split(" ")) if (s) found.add(s);
  };
  add(payload.scope);
  if (Array.isArray(payload.scp)) for (const s of payload.scp) add(s);
  else add(payload.scp);
  return found;
}

export function requireScope(principal: Principal, scope: Scope): void {
  if (!principal.scopes.has(scope)) {
    throw new AppError("forbidden", `The bearer token lacks the "${scope}" scope this operation needs.`);
  }
}

export interface MintOptions {
  secret: string;
  tenantId: string;
  scopes: string[];
  subject: string;
  ttlSeconds: number;
  tenantClaim: string;
  issuer?: string;
  audience?: string;
  clock: Clock;
}

/** Mints an HS256 token the server accepts; used by `cardvault token` and by tests. */
export async function mintToken(options: MintOptions): Promise<string> {
  const now = Math.floor(options.clock.now().getTime() / 1000);
  let jwt = new SignJWT({ [options.tenantClaim]: options.tenantId, scope: options.scopes.join(" ") })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.subject)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + options.ttlSeconds);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
