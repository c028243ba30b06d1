// Tenants (card programs): registered by an operator with the CLI, each with its BIN, PAN length and the
// number of wrong tries after which its cards' CVV and PIN block.
import { AppError } from "../domain/errors.js";
import { isValidInterval } from "../domain/rotation-schedule.js";
import type { Clock } from "../lib/clock.js";
import type { TenantRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";

export interface NewTenant {
  id: string;
  name?: string;
  bin?: string;
  panLength?: number;
  maxCvvTries?: number;
  maxPinTries?: number;
  /** Sandbox tenants may use test clocks. */
  sandbox?: boolean;
  /** Rotation interval for new virtual cards that do not name one; none by default. */
  defaultRotationIntervalHours?: number;
  /** Lets webhooks reach loopback and private addresses (tests, receivers on the same network). */
  allowPrivateWebhooks?: boolean;
  /** Adds the PIN to Get Card Data payloads (PAN, CVV and expiry otherwise). */
  secureDataPin?: boolean;
  /** Accepts format-1 PIN blocks, which are not bound to the PAN; refused by default. */
  allowPinBlockFormat1?: boolean;
}

export const TENANT_DEFAULTS = { bin: "999999", panLength: 16, maxCvvTries: 3, maxPinTries: 3 } as const;

/** How long a process trusts that a tenant it has seen exists (tenants are never deleted today). */
const KNOWN_TENANT_TTL_MS = 60_000;
const KNOWN_TENANT_LIMIT = 10_000;

export function createTenantService(deps: { tenants: TenantRepo; clock: Clock }) {
  // Authentication asks on every request: known tenants are kept per process for a short while; an unknown
  // one is never kept, so a tenant registered a moment ago is accepted at once.
  const known = new Map<string, number>();
  return {
    /** Whether the tenant is registered: one prepared primary-key lookup, or none while it is cached. */
    async isKnown(id: string): Promise<boolean> {
      const now = deps.clock.now().getTime();
      const until = known.get(id);
      if (until !== undefined && now < until) return true;
      known.delete(id);
      if ((await deps.tenants.find(id)) === undefined) return false;
      if (known.size >= KNOWN_TENANT_LIMIT) known.delete(known.keys().next().value as string);
      known.set(id, now + KNOWN_TENANT_TTL_MS);
      return true;
    },
    async add(input: NewTenant): Promise<TenantRow> {
      const row: TenantRow = {
        id: input.id,
        name: input.name ?? null,
        bin: input.bin ?? TENANT_DEFAULTS.bin,
        pan_length: input.panLength ?? TENANT_DEFAULTS.panLength,
        max_cvv_tries: input.maxCvvTries ?? TENANT_DEFAULTS.maxCvvTries,
        max_pin_tries: input.maxPinTries ?? TENANT_DEFAULTS.maxPinTries,
        created_at: deps.clock.now().toISOString(),
        sandbox: input.sandbox ? 1 : 0,
        default_rotation_interval_hours: input.defaultRotationIntervalHours ?? null,
        webhooks_allow_private: input.allowPrivateWebhooks ? 1 : 0,
        secure_data_pin: input.secureDataPin ? 1 : 0,
        allow_pin_block_format_1: input.allowPinBlockFormat1 ? 1 : 0,
        webhook_endpoints: 0,
        cvk_id: null,
        pvk_id: null,
      };
      const problems = [
        !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(row.id) && "id must be 1–63 lower-case letters, digits, - or _",
        !/^[0-9]{6,11}$/.test(row.bin) && "bin must be 6 to 11 digits",
        !(Number.isInteger(row.pan_length) && row.pan_length >= 12 && row.pan_length <= 19) &&
          "pan length must be 12 to 19",
        row.pan_length - row.bin.length < 7 &&
          "the BIN leaves fewer than 6 account digits plus a check digit",
        !(Number.isInteger(row.max_cvv_tries) && row.max_cvv_tries >= 1 && row.max_cvv_tries <= 99) &&
          "max CVV tries must be 1 to 99",
        !(Number.isInteger(row.max_pin_tries) && row.max_pin_tries >= 1 && row.max_pin_tries <= 99) &&
          "max PIN tries must be 1 to 99",
        row.default_rotation_interval_hours !== null &&
          !isValidInterval(row.default_rotation_interval_hours) &&
          "the default rotation interval must be a whole number of hours ≥ 1",
      ].filter(Boolean);
      if (problems.length > 0) throw new AppError("validation_failed", problems.join("; "));
      if (!(await deps.tenants.insert(row))) {
        throw new AppError("invalid_state_transition", `Tenant ${row.id} already exists.`);
      }
      return row;
    },
    list: () => deps.tenants.list(),
  };
}

export type TenantService = ReturnType<typeof createTenantService>;
