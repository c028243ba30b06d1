// `cardvault tenants add | list`: register card programs.
import { systemClock } from "../lib/clock.js";
import { createTenantService } from "../services/tenants.js";
import { createTenantRepo } from "../store/tenant-repo.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, integerOption } from "./options.js";
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
        const flags = `${t.sandbox ? "\tsandbox" : ""}${t.webhooks_allow_private ? "\tallowPrivateWebhooks" : ""}${t.secure_data_pin ? "\tsecureDataPin" : ""}${t.allow_pin_block_format_1 ? "\tallowPinBlockFormat1" : ""}`;
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
