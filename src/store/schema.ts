// The database's shape as Kysely sees it. Times are ISO-8601 UTC strings (sortable, identical on SQLite and
// PostgreSQL). No column holds a clear PAN, CVV or PIN: pan_sealed and pin_sealed are envelopes from keys/.
import type { Generated, Insertable, Selectable } from "kysely";

export interface TenantsTable {
  id: string;
  name: string | null;
  bin: string;
  pan_length: number;
  max_cvv_tries: number;
  max_pin_tries: number;
  created_at: string;
  sandbox: number;
  default_rotation_interval_hours: number | null;
  /** 1 lets this tenant's webhooks reach loopback and private addresses (tests, on-premises receivers). */
  webhooks_allow_private: number;
  /** 1: PIN verification accepts format-1 blocks (not PAN-bound); 0 (default): refused. */
  allow_pin_block_format_1: Generated<number>;
  /** 1 adds the PIN to this tenant's Get Card Data payloads. */
  secure_data_pin: number;
  /** How many live webhook endpoints the tenant has: the endpoint cap is a guarded update of this count. */
  webhook_endpoints: Generated<number>;
  /** The CVK new cards are created under (migration 0017); null: the provider's active cvk. */
  cvk_id: string | null;
  /** The PVK new PINs get their PVV under; null: the provider's active pvk. */
  pvk_id: string | null;
}

export interface CardsTable {
  id: string;
  tenant_id: string;
  public_token: string;
  type: string;
  status: string;
  pan_sealed: string;
  pan_fingerprint: string;
  pan_first6: string;
  pan_last4: string;
  expiry: string;
  cardholder_name: string | null;
  customer_reference: string | null;
  cvk_id: string;
  cvv_service_code: string;
  cvv_tries_remaining: number;
  /** The sealed format-4 block, or keys/'s PVV_ONLY_PIN for a PIN imported as a PVV only. */
  pin_sealed: string;
  pvk_id: string;
  pvki: number;
  pvv: string;
  pin_tries_remaining: number;
  created_at: string;
  updated_at: string;
  rotation_interval_hours: number | null;
  next_rotation_at: string | null;
  last_scheduled_at: string | null;
  last_rotated_at: string | null;
  test_clock_id: string | null;
  /** Moves on with every decided change (migration 0007); guarded writes compare it. */
  version: Generated<number>;
  /** The previous CVV service codes, most recent first, at most 10 (JSON; migration 0009). */
  cvv_history: Generated<string>;
  /** The times of the CVV's and the PIN's last wrong tries, for the rolling budget (migration 0012). */
  cvv_wrong_tries: Generated<string>;
  pin_wrong_tries: Generated<string>;
  /** When the CVV or PIN spent its wrong-try budget; null while it has not (migration 0012). */
  cvv_compromised_at: string | null;
  pin_compromised_at: string | null;
  /** The card's Pismo card id when imported with one (migration 0018); Pismo paths resolve it. */
  pismo_id: number | null;
}

/** What an API card import did (migration 0018): counts and rejected lines' numbers and reasons (JSON). */
export interface CardImportsTable {
  id: string;
  tenant_id: string;
  actor: string;
  dry_run: number;
  lines: number;
  imported: number;
  already_present: number;
  rejected: number;
  rejects: string;
  created_at: string;
  finished_at: string;
}

export interface TestClocksTable {
  id: string;
  tenant_id: string;
  frozen_time: string;
  created_at: string;
}

export interface JobLeasesTable {
  name: string;
  holder: string;
  expires_at: string;
}

export interface AuditEventsTable {
  id: string;
  /** Null: the operator's record (a refused request with no registered tenant; migration 0014). */
  tenant_id: string | null;
  card_id: string | null;
  public_token: string | null;
  actor: string;
  action: string;
  outcome: string;
  request_id: string | null;
  details: string | null;
  created_at: string;
}

export interface OutboxEventsTable {
  id: string;
  tenant_id: string;
  card_id: string | null;
  type: string;
  payload: string;
  created_at: string;
}

export interface WebhookEndpointsTable {
  id: string;
  tenant_id: string;
  url: string;
  description: string | null;
  /** JSON array of event types; null = every type. */
  event_types: string | null;
  /** The signing secret, sealed by keys/ (never clear). */
  secret_sealed: string;
  created_at: string;
  deleted_at: string | null;
  /** Failed attempts in a row (the circuit breaker's count); a success sets it back to 0. */
  consecutive_failures: Generated<number>;
  /** While in the future, the endpoint's circuit is open: its deliveries are not claimed, they wait. */
  circuit_open_until: string | null;
  /** cardvault | pismo: whose event schema the endpoint receives (migration 0015). */
  format: Generated<string>;
}

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  /** pending | succeeded | failed | canceled */
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  /** The lease of the sender that claimed the delivery; another sender may claim it once it is past. */
  locked_until: string | null;
  lock_token: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  /** The body to send when it is not the event's cardvault payload (a Pismo event; migration 0015). */
  payload: string | null;
}

/** Get Card Data session keys already used: a digest of the key, never the key. */
export interface SecureDataSessionKeysTable {
  replay_id: string;
  tenant_id: string;
  card_id: string;
  used_at: string;
}

/** Card reveal sessions: a digest of the session token, never the token. */
export interface RevealSessionsTable {
  id: string;
  tenant_id: string;
  card_id: string;
  public_token: string;
  token_hash: string;
  fields: string;
  target_origin: string;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface IdempotencyKeysTable {
  tenant_id: string;
  key: string;
  fingerprint: string;
  state: string;
  response_status: number | null;
  response_body: string | null;
  created_at: string;
  expires_at: string;
}

/** Brute-force limiter: attempts counted per bucket (tenant or card) in one fixed window. */
export interface RateLimitsTable {
  bucket: string;
  window_start: string;
  count: number;
  /** The end of the window (ISO): the row can go after it. */
  expires_at: string;
}

/** OAuth2 client-credentials clients: secrets only as slow hashes (lib/secret-hash.ts), never in clear. */
export interface ApiClientsTable {
  id: string;
  tenant_id: string;
  name: string | null;
  /** Space-separated scopes the client may be granted. */
  scope: string;
  secret_hash: string;
  /** After a rotation: the previous secret's hash, valid until previous_valid_until (ISO). */
  previous_secret_hash: string | null;
  previous_valid_until: string | null;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
  version: Generated<number>;
}

export interface Database {
  tenants: TenantsTable;
  cards: CardsTable;
  audit_events: AuditEventsTable;
  outbox_events: OutboxEventsTable;
  idempotency_keys: IdempotencyKeysTable;
  test_clocks: TestClocksTable;
  job_leases: JobLeasesTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  secure_data_session_keys: SecureDataSessionKeysTable;
  rate_limits: RateLimitsTable;
  reveal_sessions: RevealSessionsTable;
  api_clients: ApiClientsTable;
  card_imports: CardImportsTable;
}

export type ApiClientRow = Selectable<ApiClientsTable>;

export type TenantRow = Selectable<TenantsTable>;
export type TestClockRow = Selectable<TestClocksTable>;
export type CardRow = Selectable<CardsTable>;
export type NewCardRow = Insertable<CardsTable>;
export type AuditRow = Selectable<AuditEventsTable>;
export type SecureDataSessionKeyRow = Selectable<SecureDataSessionKeysTable>;
export type RevealSessionRow = Selectable<RevealSessionsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
