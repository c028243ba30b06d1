// `cardvault tenants add | list | update`: register card programs, and name the keys their new cards use.

import { AppError } from "../domain/errors.js";
import { systemClock } from "../lib/clock.js";
import { createTenantService } from "../services/tenants.js";
import { createTenantRepo } from "../store/tenant-repo.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, configFrom, integerOption, operatorName } from "./options.js";
import { withStore } from "./store.js";

/** What `tenants add` takes (`tenants list` only the store flags). */
export interface TenantFlags extends ConfigFlags {
  name?: string;
  bin?: string;
  "pan-length"?: string;
  "max-cvv-tries"?: string;
  "max-pin-tries"?: string;
  sandbox?: boolean;
  "rotation-interval-hours"?: string;
  "allow-private-webhooks"?: boolean;
  "secure-data-pin"?: boolean;
  "allow-pin-block-format-1"?: boolean;
}

export async function tenantsCommand(
  action: "add" | "list",
  values: TenantFlags,
  id: string | undefined,
  io: CliIo,
): Promise<number> {
  return withStore(values, async (store) => {
    const tenants = createTenantService({ tenants: createTenantRepo(store.db), clock: systemClock });
    if (action === "list") {
      for (const t of await tenants.list()) {
        const keys = `${t.cvk_id ? `\tcvk=${t.cvk_id}` : ""}${t.pvk_id ? `\tpvk=${t.pvk_id}` : ""}`;
        const flags = `${keys}${t.sandbox ? "\tsandbox" : ""}${t.webhooks_allow_private ? "\tallowPrivateWebhooks" : ""}${t.secure_data_pin ? "\tsecureDataPin" : ""}${t.allow_pin_block_format_1 ? "\tallowPinBlockFormat1" : ""}`;
        io.stdout(
          `${t.id}\tbin=${t.bin}\tpanLength=${t.pan_length}\tmaxCvvTries=${t.max_cvv_tries}\tmaxPinTries=${t.max_pin_tries}${flags}`,
        );
      }
      return 0;
    }
    if (!id) throw new UsageError("missing ID");
    const row = await tenants.add({
      id,
      name: values.name,
      bin: values.bin,
      panLength: integerOption(values["pan-length"], "pan-length"),
      maxCvvTries: integerOption(values["max-cvv-tries"], "max-cvv-tries"),
      maxPinTries: integerOption(values["max-pin-tries"], "max-pin-tries"),
      sandbox: values.sandbox,
      defaultRotationIntervalHours: integerOption(
        values["rotation-interval-hours"],
        "rotation-interval-hours",
      ),
      allowPrivateWebhooks: values["allow-private-webhooks"],
      secureDataPin: values["secure-data-pin"],
      allowPinBlockFormat1: values["allow-pin-block-format-1"],
    });
    io.stdout(
      `added tenant ${row.id} (bin ${row.bin}, ${row.pan_length}-digit PANs, ${row.max_cvv_tries} CVV / ${row.max_pin_tries} PIN tries)`,
    );
    return 0;
  });
}

/** What `tenants update` takes. */
export interface TenantUpdateFlags extends ConfigFlags {
  cvk?: string;
  pvk?: string;
  operator?: string;
}

/** `tenants update ID --cvk KEY_ID --pvk KEY_ID`: checked against the key provider, audited in the tenant's trail. */
export async function tenantsUpdateCommand(
  values: TenantUpdateFlags,
  id: string,
  io: CliIo,
): Promise<number> {
  const operator = operatorName(values.operator);
  const keyId = (value: string | undefined) => (value === "active" ? null : value);
  // The whole runtime (keys and store) only for this action: add and list stay light.
  const { openRuntime } = await import("../runtime.js");
  const runtime = await openRuntime(configFrom(values), {
    warn: (message) => io.stderr(`warning: ${message}`),
  });
  try {
    const row = await runtime.services.tenantKeys
      .update(operator, id, { cvkId: keyId(values.cvk), pvkId: keyId(values.pvk) })
      .catch((error: unknown) => {
        if (error instanceof AppError) throw new UsageError(error.message);
        throw error;
      });
    io.stdout(
      `tenant ${row.id}: new cards use cvk ${row.cvk_id ?? "(active)"}, new PINs pvk ${row.pvk_id ?? "(active)"}; existing cards keep theirs`,
    );
    return 0;
  } finally {
    await runtime.close();
  }
}
