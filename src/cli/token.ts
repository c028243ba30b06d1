// `cardvault token`: mint a bearer token the server with the same configuration and data dir accepts.
// Only for HS256 set-ups (the shared or development secret); with a JWKS the private key is not ours to hold.
import { mintToken, scopes } from "../http/auth.js";
import { systemClock } from "../lib/clock.js";
import { resolveJwtSecret } from "../runtime.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, configFrom, parseDuration } from "./options.js";

export async function tokenCommand(
  values: ConfigFlags & { tenant: string; scope: string; ttl: string; subject: string },
  io: CliIo,
): Promise<number> {
  const config = configFrom(values);
  const secret = resolveJwtSecret(config, (message) => io.stderr(`warning: ${message}`));
  if (!secret)
    throw new UsageError("The server verifies tokens with a JWKS; mint them with your identity provider.");
  const requested = values.scope.split(/\s+/).filter(Boolean);
  const unknown = requested.filter((s) => !(scopes as readonly string[]).includes(s));
  if (unknown.length) throw new UsageError(`Unknown scope ${unknown.join(", ")}; known: ${scopes.join(" ")}`);
  io.stdout(
    await mintToken({
      secret,
      tenantId: values.tenant,
      scopes: requested,
      subject: values.subject,
      ttlSeconds: parseDuration(values.ttl),
      tenantClaim: config.auth.tenantClaim,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      clock: systemClock,
    }),
  );
  return 0;
}
