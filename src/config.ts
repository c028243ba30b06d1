// Every setting, read once at start from the environment and command-line flags and validated together.
// Secrets have no defaults: in production a missing master key or JWT configuration stops start-up; in
// development they are created under the data directory by dev-secrets.ts, with a loud warning.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { RateLimits, TokenFailureLimits } from "./domain/rate-limit.js";
import type { WrongTryBudget } from "./domain/tries.js";
import { WEBHOOK_DEFAULTS, type WebhookLimits } from "./domain/webhooks.js";
import { type DeviceCryptoPoolSettings, defaultDeviceCryptoPool } from "./keys/device-crypto-pool.js";

export interface AuthConfig {
  /** HS256 shared secret (from CARDVAULT_JWT_SECRET); undefined → JWKS or the development secret. */
  hs256Secret?: string;
  jwksFile?: string;
  jwksUrl?: string;
  algorithms: string[];
  issuer?: string;
  audience?: string;
  tenantClaim: string;
}

export interface Config {
  production: boolean;
  host: string;
  port: number;
  dataDir: string;
  databaseFile: string;
  /** postgres://… selects PostgreSQL; otherwise the embedded SQLite file under the data directory. */
  databaseUrl?: string;
  postgres: { poolSize: number; statementTimeoutMs: number; connectionTimeoutMs: number };
  /** 32-byte master key as hex or base64 (CARDVAULT_MASTER_KEY); undefined → development key file. */
  masterKey?: string;
  logLevel: string;
  bodyLimitBytes: number;
  idempotencyTtlHours: number;
  /** Run the background jobs (rotation scheduler, webhook sender, purge) inside `serve`. */
  runJobs: boolean;
  jobIntervalMs: number;
  /**
   * How long `serve` lets in-flight requests finish after SIGTERM/SIGINT before it cuts them
   * (CARDVAULT_SHUTDOWN_GRACE_MS, default 10000): keep it under the orchestrator's kill deadline.
   */
  shutdownGraceMs: number;
  /**
   * Rows the purge job deletes per table in one run (CARDVAULT_PURGE_BATCH_SIZE): one short statement each, so a
   * run never holds a long transaction or lock; a backlog goes over the next runs.
   */
  purgeBatchSize: number;
  auth: AuthConfig;
  /**
   * The OAuth2 token endpoint (POST /oauth2/token): access-token lifetime (CARDVAULT_ACCESS_TOKEN_TTL_SECONDS)
   * and the refused attempts allowed per client id and per source address in a window
   * (CARDVAULT_TOKEN_FAILURES_PER_CLIENT, CARDVAULT_TOKEN_FAILURES_PER_SOURCE, CARDVAULT_TOKEN_FAILURE_WINDOW_SECONDS).
   */
  oauth: { accessTokenTtlSeconds: number; failures: TokenFailureLimits };
  /** Brute-force limits on the verify, reveal and secure-data routes (fixed windows, held in the database). */
  rateLimits: RateLimits;
  /** Serve the Swagger UI page at /docs (CARDVAULT_API_DOCS; on in development, off in production). */
  apiDocs: boolean;
  /**
   * The base URL browsers reach cardvault at (CARDVAULT_PUBLIC_URL, no trailing slash): the reveal page's URL is
   * built on it, never on a request's Host header. Required in production; in development the listen address.
   */
  publicUrl: string;
  /** Reveal sessions a card may have minted in any hour (CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR). */
  revealSessionsPerCardHour: number;
  /**
   * Wrong tries a card's CVV or PIN may have in any window of hours before it is compromised, unblock or not
   * (CARDVAULT_WRONG_TRY_BUDGET, CARDVAULT_WRONG_TRY_BUDGET_HOURS).
   */
  wrongTryBudget: WrongTryBudget;
  /**
   * Get Card Data's private-key work runs on worker threads (CARDVAULT_SECURE_DATA_THREADS, default one fewer
   * than the CPUs, at least 1) with room for CARDVAULT_SECURE_DATA_QUEUE more deliveries waiting (default 32);
   * past that, 503 overloaded.
   */
  secureDataPool: DeviceCryptoPoolSettings;
  /** Endpoints per tenant, delivery timeouts, fair shares and the circuit breaker (CARDVAULT_WEBHOOK_*). */
  webhooks: WebhookLimits;
  /**
   * Where the keys live (CARDVAULT_KEY_PROVIDER): `local`, the keystore file sealed by the master key (the
   * default), or `pkcs11`, a token of a PKCS#11 module (an HSM; SoftHSM2 in tests), named by
   * CARDVAULT_PKCS11_MODULE, CARDVAULT_PKCS11_TOKEN and the PIN (CARDVAULT_PKCS11_PIN or …_PIN_FILE).
   */
  keyProvider: "local" | "pkcs11";
  pkcs11?: { module: string; label: string; pin: string };
  /**
   * Where `serve` and `worker` answer GET /metrics (CARDVAULT_METRICS_LISTEN, host:port): a listener of its own,
   * never the API's, so the API's clients cannot read it and the operator firewalls it apart. Unset: metrics
   * off, nothing collected (docs/operating.md).
   */
  metricsListen?: { host: string; port: number };
  /**
   * Export OpenTelemetry traces: on when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
   */
  tracing: boolean;
}

export interface ConfigOverrides {
  host?: string;
  port?: string;
  dataDir?: string;
  databaseUrl?: string;
}

export class ConfigError extends Error {}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}): Config {
  const problems: string[] = [];
  const production = env.NODE_ENV === "production";
  const dataDir = resolve(overrides.dataDir ?? env.CARDVAULT_DATA_DIR ?? "data");

  const port = Number(overrides.port ?? env.CARDVAULT_PORT ?? "8080");
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push("port must be an integer from 0 to 65535");

  const bodyLimitBytes = Number(env.CARDVAULT_BODY_LIMIT_BYTES ?? 65536);
  if (!Number.isInteger(bodyLimitBytes) || bodyLimitBytes < 1024)
    problems.push("CARDVAULT_BODY_LIMIT_BYTES must be ≥ 1024");

  const idempotencyTtlHours = Number(env.CARDVAULT_IDEMPOTENCY_TTL_HOURS ?? 24);
  if (!(idempotencyTtlHours >= 1)) problems.push("CARDVAULT_IDEMPOTENCY_TTL_HOURS must be ≥ 1");

  const databaseUrl = overrides.databaseUrl ?? (env.CARDVAULT_DATABASE_URL || undefined);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push("CARDVAULT_DATABASE_URL must be a postgres:// URL");
  }
  const postgres = {
    poolSize: Number(env.CARDVAULT_DB_POOL_SIZE ?? 10),
    statementTimeoutMs: Number(env.CARDVAULT_DB_STATEMENT_TIMEOUT_MS ?? 5000),
    connectionTimeoutMs: Number(env.CARDVAULT_DB_CONNECTION_TIMEOUT_MS ?? 3000),
  };
  for (const [name, value] of Object.entries(postgres)) {
    if (!Number.isInteger(value) || value < 1)
      problems.push(`database setting ${name} must be a whole number ≥ 1`);
  }

  const jobs = env.CARDVAULT_JOBS ?? "on";
  if (jobs !== "on" && jobs !== "off") problems.push("CARDVAULT_JOBS must be on or off");
  const jobIntervalMs = Number(env.CARDVAULT_JOB_INTERVAL_MS ?? 1000);
  if (!Number.isInteger(jobIntervalMs) || jobIntervalMs < 10)
    problems.push("CARDVAULT_JOB_INTERVAL_MS must be ≥ 10");
  const shutdownGraceMs = Number(env.CARDVAULT_SHUTDOWN_GRACE_MS ?? 10_000);
  if (!Number.isInteger(shutdownGraceMs) || shutdownGraceMs < 0)
    problems.push("CARDVAULT_SHUTDOWN_GRACE_MS must be a whole number ≥ 0");
  const purgeBatchSize = Number(env.CARDVAULT_PURGE_BATCH_SIZE ?? 1000);
  if (!Number.isInteger(purgeBatchSize) || purgeBatchSize < 1 || purgeBatchSize > 100_000)
    problems.push("CARDVAULT_PURGE_BATCH_SIZE must be a whole number from 1 to 100000");

  // Defaults sized for an authorisation host: a card sees a handful of attempts a minute, a tenant many.
  const rateLimits: RateLimits = {
    perCard: Number(env.CARDVAULT_RATE_LIMIT_PER_CARD ?? 120),
    perTenant: Number(env.CARDVAULT_RATE_LIMIT_PER_TENANT ?? 30_000),
    windowSeconds: Number(env.CARDVAULT_RATE_LIMIT_WINDOW_SECONDS ?? 60),
    // Each Get Card Data costs an RSA-4096 private-key operation (≈ 15 ms of a core): 600 a minute is a sixth
    // of one core, well above a cardholder app's needs and well below what would starve the other tenants.
    secureDataPerTenant: Number(env.CARDVAULT_RATE_LIMIT_SECURE_DATA_PER_TENANT ?? 600),
    // An unblock or an on-demand rotation a few times a day is service; more is someone searching a secret.
    managePerCardDay: Number(env.CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY ?? 5),
  };
  for (const [name, value] of Object.entries(rateLimits)) {
    if (!Number.isInteger(value) || value < 1) problems.push(`rate limit ${name} must be a whole number ≥ 1`);
  }

  // Short-lived tokens: a revoked client's last token is accepted for at most this long.
  const accessTokenTtlSeconds = Number(env.CARDVAULT_ACCESS_TOKEN_TTL_SECONDS ?? 900);
  if (
    !Number.isInteger(accessTokenTtlSeconds) ||
    accessTokenTtlSeconds < 60 ||
    accessTokenTtlSeconds > 86_400
  )
    problems.push("CARDVAULT_ACCESS_TOKEN_TTL_SECONDS must be a whole number from 60 to 86400");
  const tokenFailures: TokenFailureLimits = {
    perClient: Number(env.CARDVAULT_TOKEN_FAILURES_PER_CLIENT ?? 10),
    perSource: Number(env.CARDVAULT_TOKEN_FAILURES_PER_SOURCE ?? 50),
    windowSeconds: Number(env.CARDVAULT_TOKEN_FAILURE_WINDOW_SECONDS ?? 900),
  };
  for (const [name, value] of Object.entries(tokenFailures)) {
    if (!Number.isInteger(value) || value < 1)
      problems.push(`token failure limit ${name} must be a whole number ≥ 1`);
  }

  const host = overrides.host ?? env.CARDVAULT_HOST ?? "127.0.0.1";
  const configuredUrl = env.CARDVAULT_PUBLIC_URL || undefined;
  let publicUrl = listenUrl(host, port);
  if (configuredUrl !== undefined) {
    const parsed = parsePublicUrl(configuredUrl);
    if (parsed === null) {
      problems.push(
        "CARDVAULT_PUBLIC_URL must be an absolute http(s) URL (scheme, host, optional port and path; no query, fragment or credentials)",
      );
    } else publicUrl = parsed;
  } else if (production) {
    problems.push(
      "CARDVAULT_PUBLIC_URL is required when NODE_ENV=production (the address browsers reach cardvault at)",
    );
  }

  const revealSessionsPerCardHour = Number(env.CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR ?? 10);
  if (!Number.isInteger(revealSessionsPerCardHour) || revealSessionsPerCardHour < 1) {
    problems.push("CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR must be a whole number ≥ 1");
  }

  // Default 10 in 24 hours: verify + unblock then needs about 55 days, on average, to find a 3-digit CVV
  // (docs/security.md, "Hardening II").
  const wrongTryBudget: WrongTryBudget = {
    tries: Number(env.CARDVAULT_WRONG_TRY_BUDGET ?? 10),
    windowHours: Number(env.CARDVAULT_WRONG_TRY_BUDGET_HOURS ?? 24),
  };
  // The store keeps the last `tries` times per secret (24 characters each): bounded, however long the card lives.
  if (!Number.isInteger(wrongTryBudget.tries) || wrongTryBudget.tries < 1 || wrongTryBudget.tries > 100) {
    problems.push("CARDVAULT_WRONG_TRY_BUDGET must be a whole number from 1 to 100");
  }
  if (
    !Number.isInteger(wrongTryBudget.windowHours) ||
    wrongTryBudget.windowHours < 1 ||
    wrongTryBudget.windowHours > 8784
  ) {
    problems.push("CARDVAULT_WRONG_TRY_BUDGET_HOURS must be a whole number of hours from 1 to 8784 (a year)");
  }

  const poolDefaults = defaultDeviceCryptoPool();
  const secureDataPool = {
    threads: Number(env.CARDVAULT_SECURE_DATA_THREADS ?? poolDefaults.threads),
    queue: Number(env.CARDVAULT_SECURE_DATA_QUEUE ?? poolDefaults.queue),
  };
  if (!Number.isInteger(secureDataPool.threads) || secureDataPool.threads < 1) {
    problems.push("CARDVAULT_SECURE_DATA_THREADS must be a whole number ≥ 1");
  }
  if (!Number.isInteger(secureDataPool.queue) || secureDataPool.queue < 0) {
    problems.push("CARDVAULT_SECURE_DATA_QUEUE must be a whole number ≥ 0");
  }

  const webhooks = webhookLimits(env, problems);

  const keyProvider = env.CARDVAULT_KEY_PROVIDER ?? "local";
  if (keyProvider !== "local" && keyProvider !== "pkcs11") {
    problems.push("CARDVAULT_KEY_PROVIDER must be local or pkcs11");
  }
  const pkcs11 = keyProvider === "pkcs11" ? pkcs11Settings(env, problems) : undefined;

  let metricsListen: Config["metricsListen"];
  if (env.CARDVAULT_METRICS_LISTEN) {
    metricsListen = parseListen(env.CARDVAULT_METRICS_LISTEN) ?? undefined;
    if (!metricsListen) {
      problems.push("CARDVAULT_METRICS_LISTEN must be host:port (an IPv6 host in brackets: [::1]:9464)");
    } else if (metricsListen.port !== 0 && metricsListen.port === port && metricsListen.host === host) {
      problems.push("CARDVAULT_METRICS_LISTEN must not be the API's own address");
    }
  }

  const tracesExporter = env.OTEL_TRACES_EXPORTER ?? "otlp";
  if (tracesExporter !== "otlp" && tracesExporter !== "none") {
    problems.push("OTEL_TRACES_EXPORTER must be otlp or none (the exporters cardvault ships)");
  }
  const tracing =
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) &&
    tracesExporter === "otlp" &&
    env.OTEL_SDK_DISABLED !== "true";

  const masterKey = env.CARDVAULT_MASTER_KEY || undefined;
  if (masterKey !== undefined && parseMasterKey(masterKey) === null) {
    problems.push("CARDVAULT_MASTER_KEY must be 32 bytes as 64 hex digits or canonical (padded) base64");
  }
  // The master key seals the local keystore only: a token keeps its keys itself.
  if (production && masterKey === undefined && keyProvider === "local") {
    problems.push("CARDVAULT_MASTER_KEY is required when NODE_ENV=production (development keys are refused)");
  }

  const hs256Secret = env.CARDVAULT_JWT_SECRET || undefined;
  const jwksFile = env.CARDVAULT_JWKS_FILE || undefined;
  const jwksUrl = env.CARDVAULT_JWKS_URL || undefined;
  if (hs256Secret !== undefined && Buffer.byteLength(hs256Secret) < 32) {
    problems.push("CARDVAULT_JWT_SECRET must be at least 32 bytes");
  } else if (production && hs256Secret !== undefined && isLowEntropy(hs256Secret)) {
    problems.push(
      `CARDVAULT_JWT_SECRET is trivially guessable (fewer than ${MIN_DISTINCT_SECRET_BYTES} distinct bytes); use a random secret`,
    );
  }
  if (jwksFile && jwksUrl) problems.push("set CARDVAULT_JWKS_FILE or CARDVAULT_JWKS_URL, not both");
  if (production && !hs256Secret && !jwksFile && !jwksUrl) {
    problems.push(
      "NODE_ENV=production needs CARDVAULT_JWT_SECRET, CARDVAULT_JWKS_FILE or CARDVAULT_JWKS_URL",
    );
  }
  const usesJwks = Boolean(jwksFile || jwksUrl);
  const algorithms = (env.CARDVAULT_JWT_ALGORITHMS ?? (usesJwks ? "RS256,ES256" : "HS256"))
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  const allowed = usesJwks
    ? ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    : ["HS256", "HS384", "HS512"];
  for (const alg of algorithms) {
    if (!allowed.includes(alg))
      problems.push(`JWT algorithm ${alg} is not allowed here (allowed: ${allowed.join(", ")})`);
  }
  if (algorithms.length === 0) problems.push("CARDVAULT_JWT_ALGORITHMS is empty");

  const apiDocs = env.CARDVAULT_API_DOCS ?? (production ? "off" : "on");
  if (apiDocs !== "on" && apiDocs !== "off") problems.push("CARDVAULT_API_DOCS must be on or off");

  // pino's levels: it throws on any other at start, which would be a stack trace instead of this message.
  const logLevel = env.CARDVAULT_LOG_LEVEL ?? "info";
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`CARDVAULT_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);

  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);

  return {
    production,
    host,
    port,
    dataDir,
    databaseFile: resolve(dataDir, "cardvault.db"),
    databaseUrl,
    postgres,
    masterKey,
    logLevel,
    bodyLimitBytes,
    idempotencyTtlHours,
    runJobs: jobs === "on",
    jobIntervalMs,
    shutdownGraceMs,
    purgeBatchSize,
    rateLimits,
    apiDocs: apiDocs === "on",
    publicUrl,
    revealSessionsPerCardHour,
    wrongTryBudget,
    secureDataPool,
    webhooks,
    keyProvider: keyProvider as Config["keyProvider"],
    ...(pkcs11 ? { pkcs11 } : {}),
    oauth: { accessTokenTtlSeconds, failures: tokenFailures },
    metricsListen,
    tracing,
    auth: {
      hs256Secret,
      jwksFile,
      jwksUrl,
      algorithms,
      issuer: env.CARDVAULT_JWT_ISSUER || undefined,
      audience: env.CARDVAULT_JWT_AUDIENCE || undefined,
      tenantClaim: env.CARDVAULT_TENANT_CLAIM || "tenant",
    },
  };
}

/** The token of CARDVAULT_KEY_PROVIDER=pkcs11: its module (a file), its label, and the user PIN (given once). */
function pkcs11Settings(env: NodeJS.ProcessEnv, problems: string[]): Config["pkcs11"] {
  const module = env.CARDVAULT_PKCS11_MODULE || undefined;
  const label = env.CARDVAULT_PKCS11_TOKEN || undefined;
  const pinValue = env.CARDVAULT_PKCS11_PIN || undefined;
  const pinFile = env.CARDVAULT_PKCS11_PIN_FILE || undefined;
  if (!module)
    problems.push("CARDVAULT_KEY_PROVIDER=pkcs11 needs CARDVAULT_PKCS11_MODULE (the module's .so path)");
  else if (!existsSync(module)) problems.push(`CARDVAULT_PKCS11_MODULE: no file at ${module}`);
  if (!label) problems.push("CARDVAULT_KEY_PROVIDER=pkcs11 needs CARDVAULT_PKCS11_TOKEN (the token's label)");
  if (pinValue && pinFile) problems.push("set CARDVAULT_PKCS11_PIN or CARDVAULT_PKCS11_PIN_FILE, not both");
  let pin = pinValue;
  if (pinFile) {
    try {
      pin = readFileSync(pinFile, "utf8").trim();
    } catch {
      problems.push(`CARDVAULT_PKCS11_PIN_FILE: cannot read ${pinFile}`);
    }
  }
  if (!pinValue && !pinFile) {
    problems.push("CARDVAULT_KEY_PROVIDER=pkcs11 needs CARDVAULT_PKCS11_PIN or CARDVAULT_PKCS11_PIN_FILE");
  } else if (pin === "") problems.push("the PKCS#11 PIN is empty");
  return module && label && pin ? { module, label, pin } : undefined;
}

/** The CARDVAULT_WEBHOOK_* settings, each a whole number ≥ 1; a tenant's share fits in a process's slots. */
function webhookLimits(env: NodeJS.ProcessEnv, problems: string[]): WebhookLimits {
  const whole = (name: string, value: number) => {
    if (!Number.isInteger(value) || value < 1) problems.push(`${name} must be a whole number ≥ 1`);
    return value;
  };
  const d = WEBHOOK_DEFAULTS;
  const limits: WebhookLimits = {
    endpointsPerTenant: whole(
      "CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT",
      Number(env.CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT ?? d.endpointsPerTenant),
    ),
    timeoutMs: whole("CARDVAULT_WEBHOOK_TIMEOUT_MS", Number(env.CARDVAULT_WEBHOOK_TIMEOUT_MS ?? d.timeoutMs)),
    connectTimeoutMs: whole(
      "CARDVAULT_WEBHOOK_CONNECT_TIMEOUT_MS",
      Number(env.CARDVAULT_WEBHOOK_CONNECT_TIMEOUT_MS ?? d.connectTimeoutMs),
    ),
    concurrency: whole(
      "CARDVAULT_WEBHOOK_CONCURRENCY",
      Number(env.CARDVAULT_WEBHOOK_CONCURRENCY ?? d.concurrency),
    ),
    tenantConcurrency: whole(
      "CARDVAULT_WEBHOOK_TENANT_CONCURRENCY",
      Number(env.CARDVAULT_WEBHOOK_TENANT_CONCURRENCY ?? d.tenantConcurrency),
    ),
    breakerFailures: whole(
      "CARDVAULT_WEBHOOK_BREAKER_FAILURES",
      Number(env.CARDVAULT_WEBHOOK_BREAKER_FAILURES ?? d.breakerFailures),
    ),
    breakerCooldownMs:
      whole(
        "CARDVAULT_WEBHOOK_BREAKER_COOLDOWN_SECONDS",
        Number(env.CARDVAULT_WEBHOOK_BREAKER_COOLDOWN_SECONDS ?? d.breakerCooldownMs / 1000),
      ) * 1000,
  };
  if (limits.connectTimeoutMs > limits.timeoutMs) {
    problems.push("CARDVAULT_WEBHOOK_CONNECT_TIMEOUT_MS must not exceed CARDVAULT_WEBHOOK_TIMEOUT_MS");
  }
  if (limits.tenantConcurrency > limits.concurrency) {
    problems.push("CARDVAULT_WEBHOOK_TENANT_CONCURRENCY must not exceed CARDVAULT_WEBHOOK_CONCURRENCY");
  }
  return limits;
}

/**
 * 32 bytes from exactly 64 hex digits or canonical base64 (44 characters with its padding, re-encoding to the
 * same text); null otherwise. Node's base64 decoder skips what it does not know, so a typo, a truncated or a
 * base64url value would otherwise decode to some other 32 bytes and seal the keystore under them.
 */
/** An absolute http(s) URL without query, fragment or credentials, without its trailing slash; null otherwise. */
export function parsePublicUrl(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  if (url.username || url.password || url.search || url.hash || value.includes("?") || value.includes("#")) {
    return null;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** host:port (a bracketed IPv6 host allowed), port 0–65535; null otherwise. */
export function parseListen(value: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  return { host: match[1] ?? match[2]!, port };
}

/** The development default: the configured listen address (an unspecified address is reached as localhost). */
function listenUrl(host: string, port: number): string {
  const reachable = host === "0.0.0.0" || host === "::" || host === "" ? "localhost" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

/** 32 bytes from 64 hex digits or base64; null when it is neither. */
export function parseMasterKey(value: string): Buffer | null {
  const trimmed = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, "hex");
  if (!/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return null;
  const b64 = Buffer.from(trimmed, "base64");
  return b64.length === 32 && b64.toString("base64") === trimmed ? b64 : null;
}

/** A shared secret drawn from fewer distinct bytes than this is a pattern, not a key ("aaaa…", "abab…"). */
const MIN_DISTINCT_SECRET_BYTES = 8;

function isLowEntropy(secret: string): boolean {
  return new Set(Buffer.from(secret)).size < MIN_DISTINCT_SECRET_BYTES;
}
