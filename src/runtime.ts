// The composition root: from a validated Config, open the store and the keys and wire every service with
// exactly the dependencies it uses. serve, the CLI commands and the tests all build their world here. Metrics
// and traces, when configured, are applied here too, by wrapping the store, the key provider and the services
// from the outside (telemetry/instrument.ts): the business code does not know about them.
import { randomUUID } from "node:crypto";
import { statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { type Config, parseMasterKey } from "./config.js";
import type { RateLimits } from "./domain/rate-limit.js";
import { sessionsPurgeableBefore } from "./domain/reveal.js";
import type { WrongTryBudget } from "./domain/tries.js";
import { createBatchPublisher, createEventPublisher } from "./events/outbox.js";
import { scopes } from "./http/auth.js";
import { createPurgeJob, type Purger } from "./jobs/purge.js";
import type { Job } from "./jobs/runner.js";
import { createRotationScheduler } from "./jobs/scheduler.js";
import type { WebhookSenderDeps } from "./jobs/webhook-sender.js";
import { createWebhookSender } from "./jobs/webhook-sender.js";
import { generatedKeyTypes, type KeyProvider } from "./keys/key-provider.js";
import {
  addImportedKey,
  type ClearKey,
  initKeystore,
  keystoreExists,
  loadKeystore,
} from "./keys/keystore-file.js";
import { createLocalKeyProvider } from "./keys/local-keystore.js";
import { createPkcs11KeyProvider } from "./keys/pkcs11-provider.js";
import { openToken, TokenError } from "./keys/pkcs11-token.js";
import { type Clock, systemClock } from "./lib/clock.js";
import { devSecret } from "./lib/dev-secrets.js";
import { type AccessTokenSettings, createAccessTokenService } from "./services/access-tokens.js";
import { createApiClientService } from "./services/api-clients.js";
import {
  type AuditObserver,
  createAuditBatchRecorder,
  createAuditRecorder,
  createAuditService,
  createRefusalRecorder,
  observedRecorders,
} from "./services/audit.js";
import { createCardAliasService } from "./services/card-aliases.js";
import { createCardClock } from "./services/card-clock.js";
import { createCardImportService } from "./services/card-import.js";
import { createCardTransaction } from "./services/card-transaction.js";
import { createCardService } from "./services/cards.js";
import { createCvvService } from "./services/cvv.js";
import { createEventService } from "./services/events.js";
import { createKeyRotationService } from "./services/key-rotation.js";
import { createPinService } from "./services/pin.js";
import { createRateLimitService } from "./services/rate-limits.js";
import { createRevealService } from "./services/reveal.js";
import { createRotationService } from "./services/rotation.js";
import { createSecureDataService } from "./services/secure-data.js";
import { createTenantKeysService } from "./services/tenant-keys.js";
import { createTenantService } from "./services/tenants.js";
import { createTestClockService } from "./services/test-clocks.js";
import { createTryCounter } from "./services/try-counter.js";
import { createWebhookService } from "./services/webhooks.js";
import { createApiClientRepo } from "./store/api-client-repo.js";
import { createAuditRepo } from "./store/audit-repo.js";
import { createCardImportRepo } from "./store/card-import-repo.js";
import { createCardRepo } from "./store/card-repo.js";
import { ensureSchema, openPostgresStore, openSqliteStore, type Store } from "./store/db.js";
import { createIdempotencyRepo } from "./store/idempotency-repo.js";
import { createLeaseRepo } from "./store/lease-repo.js";
import { createOutboxRepo } from "./store/outbox-repo.js";
import { createRateLimitRepo } from "./store/rate-limit-repo.js";
import { createRevealSessionRepo } from "./store/reveal-session-repo.js";
import { createSecureDataRepo } from "./store/secure-data-repo.js";
import { createTenantRepo } from "./store/tenant-repo.js";
import { createTestClockRepo } from "./store/test-clock-repo.js";
import { createWebhookRepo } from "./store/webhook-repo.js";
import { instrumentKeys, instrumentStore, type Telemetry, traceServices } from "./telemetry/instrument.js";
import { createMetrics, type Metrics } from "./telemetry/metrics.js";
import { startTracing } from "./telemetry/tracing.js";

export interface RuntimeOptions {
  clock?: Clock;
  /** Metrics and tracer to use instead of those the configuration asks for (tests: an in-memory exporter). */
  telemetry?: Telemetry;
  /** Where development-key warnings go (the logger in serve, stderr in the CLI). */
  warn?: (message: string) => void;
}

export function keystorePath(config: Config): string {
  return join(config.dataDir, "keystore.json");
}

export function resolveMasterKey(config: Config, warn: (message: string) => void): Buffer {
  const value = config.masterKey ?? devSecret(config.dataDir, "dev-master.key", 32, warn);
  return parseMasterKey(value)!;
}

export function resolveJwtSecret(config: Config, warn: (message: string) => void): string | undefined {
  if (config.auth.hs256Secret || config.auth.jwksFile || config.auth.jwksUrl) return config.auth.hs256Secret;
  return devSecret(config.dataDir, "dev-jwt-secret", 32, warn);
}

/**
 * Opens the keystore; in development it is created on first use, in production `keys init` must run first.
 * Processes starting together agree on one set of keys: the master key is settled first (a development one is
 * published once, and every process reads the published file), then the keystore sealed by it is created or
 * completed under the keystore lock, which re-reads the file, so a process that finds nothing left to add
 * simply loads what another one wrote.
 */
export function openKeys(config: Config, clock: Clock, warn: (message: string) => void): KeyProvider {
  if (config.keyProvider === "pkcs11") return openTokenKeys(config, clock);
  const file = keystorePath(config);
  const masterKey = resolveMasterKey(config, warn);
  if (!keystoreExists(file)) {
    if (config.production) {
      throw new Error(
        `No keystore at ${file}: run \`cardvault keys init\` once with the production master key.`,
      );
    }
    initKeystore(file, masterKey, clock);
  }
  let keys = loadKeystore(file, masterKey);
  // A development keystore from an older build gains the key types added since (production: `keys init`).
  if (!config.production && generatedKeyTypes.some((type) => !keys.some((k) => k.type === type))) {
    initKeystore(file, masterKey, clock);
    keys = loadKeystore(file, masterKey);
  }
  return createLocalKeyProvider(keys, keystoreReloader(file, masterKey), {
    pool: config.secureDataPool,
    importer: (entry) => addImportedKey(file, masterKey, entry, clock),
  });
}

/**
 * The PKCS#11 provider on the configured token. Its keys are made by `cardvault keys init` (generated inside
 * the token) or a key ceremony, never at start: a token that lacks a key type is refused with that advice.
 */
function openTokenKeys(config: Config, clock: Clock): KeyProvider {
  const token = openToken(config.pkcs11!);
  const have = new Set(
    token
      .readKeys()
      .filter((k) => k.active)
      .map((k) => k.type),
  );
  const missing = generatedKeyTypes.filter((type) => !have.has(type));
  if (missing.length > 0) {
    token.close();
    throw new TokenError(
      `The token "${config.pkcs11!.label}" has no active ${missing.join(", ")} key: run \`cardvault keys init\` with CARDVAULT_KEY_PROVIDER=pkcs11.`,
    );
  }
  return createPkcs11KeyProvider(token, { pool: config.secureDataPool, clock });
}

/**
 * `keys rotate` in another process rewrites the keystore (write-then-rename): a running provider adopts the
 * new file when its identity (inode, size, mtime) changes. A file that fails to load keeps the keys in use.
 */
function keystoreReloader(file: string, masterKey: Buffer): () => ClearKey[] | undefined {
  const identity = () => {
    const s = statSync(file, { throwIfNoEntry: false });
    return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : "";
  };
  let seen = identity();
  return () => {
    const now = identity();
    if (now === seen || now === "") return undefined;
    try {
      const keys = loadKeystore(file, masterKey);
      seen = now;
      return keys;
    } catch {
      return undefined;
    }
  };
}

/** The configured database, as it is (see openStore for one whose schema was checked). */
export function connectStore(config: Config, metrics?: Metrics): Store {
  return config.databaseUrl
    ? openPostgresStore(config.databaseUrl, config.postgres, metrics?.commit)
    : openSqliteStore(config.databaseFile, metrics?.commit);
}

/** The embedded store migrates itself; PostgreSQL, shared by many processes, is migrated by `cardvault migrate`. */
export async function openStore(
  config: Config,
  options: { migrate?: boolean; metrics?: Metrics } = {},
): Promise<Store> {
  const store = connectStore(config, options.metrics);
  try {
    await ensureSchema(store.db, { migrate: options.migrate ?? store.kind === "sqlite" });
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** The repositories over one store: what services, jobs and the HTTP layer's plumbing (idempotency) read. */
export function createRepos(store: Store) {
  return {
    tenants: createTenantRepo(store.db),
    cards: createCardRepo(store.db, store.kind),
    cardImports: createCardImportRepo(store.db),
    audit: createAuditRepo(store.db),
    outbox: createOutboxRepo(store.db),
    idempotency: createIdempotencyRepo(store.db),
    testClocks: createTestClockRepo(store.db),
    leases: createLeaseRepo(store.db),
    webhooks: createWebhookRepo(store.db),
    secureDataSessionKeys: createSecureDataRepo(store.db),
    rateLimits: createRateLimitRepo(store.db, store.kind),
    revealSessions: createRevealSessionRepo(store.db),
    apiClients: createApiClientRepo(store.db),
  };
}

export type Repos = ReturnType<typeof createRepos>;

/** The event outbox's writers: one event, or a batch's events and their webhook deliveries in few statements. */
export function createPublishers(repos: Pick<Repos, "outbox" | "webhooks">, clock: Clock) {
  const publisherDeps = { outbox: repos.outbox, webhooks: repos.webhooks, clock };
  return { publish: createEventPublisher(publisherDeps), publishMany: createBatchPublisher(publisherDeps) };
}

/** The reveal service's settings, from the configuration. */
export interface RevealSettings {
  production: boolean;
  publicUrl: string;
  sessionsPerCardHour: number;
}

export function revealSettings(config: Config): RevealSettings {
  return {
    production: config.production,
    publicUrl: config.publicUrl,
    sessionsPerCardHour: config.revealSessionsPerCardHour,
  };
}

/** The token endpoint's settings, from the configuration. */
export function accessTokenSettings(config: Config): AccessTokenSettings {
  return {
    issuer: config.publicUrl,
    tenantClaim: config.auth.tenantClaim,
    ttlSeconds: config.oauth.accessTokenTtlSeconds,
    failures: config.oauth.failures,
  };
}

/** Every capability, each wired with exactly the dependencies it uses; nothing but services. */
export function createServices(deps: {
  store: Store;
  repos: Repos;
  keys: KeyProvider;
  clock: Clock;
  rateLimits: RateLimits;
  reveal: RevealSettings;
  wrongTryBudget: WrongTryBudget;
  webhookEndpointsPerTenant: number;
  accessTokens: AccessTokenSettings;
  /** Told of every audit record written (the metrics). */
  audited?: AuditObserver;
}) {
  const { store, repos, keys, clock } = deps;
  const recorders = {
    record: createAuditRecorder({ audit: repos.audit, clock }),
    recordMany: createAuditBatchRecorder({ audit: repos.audit, clock }),
  };
  const { record, recordMany } = deps.audited
    ? observedRecorders(recorders.record, recorders.recordMany, deps.audited)
    : recorders;
  const { publish, publishMany } = createPublishers(repos, clock);
  const rateLimits = createRateLimitService({
    store,
    rateLimits: repos.rateLimits,
    record,
    clock,
    limits: deps.rateLimits,
  });
  const withCard = createCardTransaction({ store, cards: repos.cards, limits: rateLimits });
  const cardClock = createCardClock({ clock, testClocks: repos.testClocks });
  const counterDeps = {
    cards: repos.cards,
    withCard,
    record,
    publish,
    cardClock,
    clock,
    budget: deps.wrongTryBudget,
  };
  const rotation = createRotationService({
    store,
    withCard,
    cards: repos.cards,
    keys,
    recordMany,
    publishMany,
    cardClock,
  });
  const secureData = createSecureDataService({
    withCard,
    sessionKeys: repos.secureDataSessionKeys,
    keys,
    record,
    clock,
  });
  const refusals = createRefusalRecorder({ audit: repos.audit, clock });
  return {
    tenants: createTenantService({ tenants: repos.tenants, clock }),
    tenantKeys: createTenantKeysService({ store, tenants: repos.tenants, keys, record }),
    apiClients: createApiClientService({
      store,
      clients: repos.apiClients,
      tenants: repos.tenants,
      record,
      clock,
      knownScopes: scopes,
    }),
    accessTokens: createAccessTokenService({
      store,
      clients: repos.apiClients,
      rateLimits: repos.rateLimits,
      keys,
      record,
      refusals,
      clock,
      ...deps.accessTokens,
    }),
    cards: createCardService({
      store,
      withCard,
      tenants: repos.tenants,
      cards: repos.cards,
      testClocks: repos.testClocks,
      keys,
      record,
      publish,
      cardClock,
      clock,
    }),
    cardAliases: createCardAliasService({ cards: repos.cards }),
    cardImport: createCardImportService({
      store,
      tenants: repos.tenants,
      cards: repos.cards,
      imports: repos.cardImports,
      keys,
      recordMany,
      clock,
    }),
    rotation,
    testClocks: createTestClockService({
      store,
      tenants: repos.tenants,
      testClocks: repos.testClocks,
      rotation,
      record,
      clock,
    }),
    cvv: createCvvService({ withCard, keys, record, counter: createTryCounter(counterDeps, "cvv") }),
    pin: createPinService({
      withCard,
      cards: repos.cards,
      tenants: repos.tenants,
      keys,
      record,
      publish,
      cardClock,
      clock,
      counter: createTryCounter(counterDeps, "pin"),
    }),
    audit: createAuditService({ audit: repos.audit }),
    refusals,
    events: createEventService({ outbox: repos.outbox }),
    secureData,
    reveal: createRevealService({
      store,
      withCard,
      cards: repos.cards,
      sessions: repos.revealSessions,
      secureData,
      record,
      clock,
      ...deps.reveal,
    }),
    webhooks: createWebhookService({
      store,
      webhooks: repos.webhooks,
      tenants: repos.tenants,
      keys,
      record,
      clock,
      endpointsPerTenant: deps.webhookEndpointsPerTenant,
    }),
    keyRotation: createKeyRotationService({ store, cards: repos.cards, keys, record }),
  };
}

export type Services = ReturnType<typeof createServices>;

export interface Runtime {
  config: Config;
  clock: Clock;
  /** The metrics and tracer the layers record to (both undefined when off). */
  telemetry: Telemetry;
  store: Store;
  keys: KeyProvider;
  repos: Repos;
  services: Services;
  jwtSecret: string | undefined;
  close(): Promise<void>;
}

/** What `createWebhookSender` needs, with the configured limits; add a logger when starting it. */
export function webhookSenderDeps(
  runtime: Pick<Runtime, "config" | "store" | "repos" | "keys" | "clock">,
): WebhookSenderDeps {
  return {
    ...runtime.config.webhooks,
    store: runtime.store,
    deliveries: runtime.repos.webhooks,
    keys: runtime.keys,
    clock: runtime.clock,
  };
}

/** What the purge job deletes, table by table: rows that can no longer serve anything. */
export function createPurgers(repos: Pick<Repos, "idempotency" | "revealSessions" | "rateLimits">): Purger[] {
  return [
    {
      name: "rate_limits",
      purge: (now, limit) => repos.rateLimits.purgeExpired(now.toISOString(), limit),
    },
    {
      name: "idempotency_keys",
      purge: (now, limit) => repos.idempotency.purgeExpired(now.toISOString(), limit),
    },
    {
      name: "reveal_sessions",
      purge: (now, limit) =>
        repos.revealSessions.purgeExpiredBefore(sessionsPurgeableBefore(now).toISOString(), limit),
    },
  ];
}

/** The background jobs a process runs: `serve` (unless CARDVAULT_JOBS=off) and `cardvault worker`. */
export function createJobs(
  runtime: Pick<Runtime, "config" | "services" | "repos" | "keys" | "clock" | "store">,
  logger?: Logger,
): Job[] {
  return [
    createWebhookSender({ ...webhookSenderDeps(runtime), logger }),
    createRotationScheduler({
      rotation: runtime.services.rotation,
      leases: runtime.repos.leases,
      clock: runtime.clock,
      holder: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      exclusive: runtime.store.kind === "sqlite",
    }),
    createPurgeJob({
      purgers: createPurgers(runtime.repos),
      clock: runtime.clock,
      batchSize: runtime.config.purgeBatchSize,
    }),
  ];
}

/** The metrics and tracer the configuration asks for: metrics with a metrics listener, traces with an exporter. */
export function createTelemetry(config: Config): Telemetry & { shutdown(): Promise<void> } {
  const tracing = config.tracing ? startTracing() : undefined;
  return {
    metrics: config.metricsListen ? createMetrics() : undefined,
    tracer: tracing?.tracer,
    // An unreachable collector loses the last spans; it never fails a close.
    shutdown: async () => tracing?.shutdown().catch(() => {}),
  };
}

/**
 * With metrics or traces on, the store, the key provider and the services instrumented from the outside
 * (telemetry/instrument.ts); what the audit trail and the webhook attempts record is counted once committed;
 * the scrape asks the store for the backlogs. With both off, the plain objects.
 */
function instrument(telemetry: Telemetry, store: Store, keys: KeyProvider, repos: Repos, clock: Clock) {
  const { metrics } = telemetry;
  if (!metrics && !telemetry.tracer) return { store, keys, repos, audited: undefined };
  const observed = instrumentStore(store, telemetry);
  if (!metrics) return { store: observed, keys: instrumentKeys(keys, telemetry), repos, audited: undefined };
  metrics.setBacklogSources({
    async rotationLagSeconds() {
      const now = clock.now();
      const due = await repos.cards.oldestDueRotation(now.toISOString());
      return due ? Math.max(0, (now.getTime() - Date.parse(due)) / 1000) : 0;
    },
    webhookQueueDepth: () => repos.webhooks.countPending(),
  });
  const finishAttempt = repos.webhooks.finishAttempt;
  const webhooks: Repos["webhooks"] = {
    ...repos.webhooks,
    async finishAttempt(id, token, outcome, tx = store.db) {
      const recorded = await finishAttempt(id, token, outcome, tx);
      if (recorded) observed.afterCommit(tx, () => metrics.webhookAttempt(outcome.status));
      return recorded;
    },
  };
  const audited: AuditObserver = (tx, actor, entry) =>
    observed.afterCommit(tx, () => metrics.audited(actor.tenantId, entry));
  return { store: observed, keys: instrumentKeys(keys, telemetry), repos: { ...repos, webhooks }, audited };
}

export async function openRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const warn = options.warn ?? ((message: string) => process.emitWarning(message));
  const created = options.telemetry ? undefined : createTelemetry(config);
  const telemetry: Telemetry = options.telemetry ?? created!;
  const plainKeys = openKeys(config, clock, warn);
  const jwtSecret = resolveJwtSecret(config, warn);
  const plainStore = await openStore(config, { metrics: telemetry.metrics });
  const { store, keys, repos, audited } = instrument(
    telemetry,
    plainStore,
    plainKeys,
    createRepos(plainStore),
    clock,
  );
  const services = createServices({
    store,
    repos,
    keys,
    clock,
    rateLimits: config.rateLimits,
    reveal: revealSettings(config),
    wrongTryBudget: config.wrongTryBudget,
    webhookEndpointsPerTenant: config.webhooks.endpointsPerTenant,
    accessTokens: accessTokenSettings(config),
    audited,
  });
  return {
    config,
    clock,
    telemetry,
    store,
    keys,
    repos,
    services: telemetry.tracer ? traceServices(services, telemetry.tracer) : services,
    jwtSecret,
    async close() {
      await plainStore.close();
      await plainKeys.close();
      await created?.shutdown();
    },
  };
}
