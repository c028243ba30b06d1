// `cardvault keys init | list | rotate | reencrypt | import`: manage the keys. Prints ids and check values,
// never keys. rotate adds new key versions and, for the keys that seal data, re-encrypts every card online and
// then retires the old versions; running servers adopt the new keystore by themselves (see local-keystore.ts).
// import runs a key ceremony (components or a TR-31 block) through the key provider, audited as the operator's.
// Also the operator's check after a ceremony: `crypto cvv|pvv --key-id` computes under a stored key, inside.
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config.js";
import { parseHex } from "../crypto/hex.js";
import { AppError } from "../domain/errors.js";
import { generatedKeyTypes, type KeyInfo, type KeyType, keyTypes } from "../keys/key-provider.js";
import { initKeystore, keystoreExists, retireKeys, rotateKeys } from "../keys/keystore-file.js";
import { generateKey, initTokenKeys, openToken, retireTokenKeys } from "../keys/pkcs11-token.js";
import { systemClock } from "../lib/clock.js";
import { keystorePath, openKeys, openRuntime, openStore, resolveMasterKey } from "../runtime.js";
import { createOperatorRecorder } from "../services/audit.js";
import { createKeyCeremonyService } from "../services/key-ceremony.js";
import { createAuditRepo } from "../store/audit-repo.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, configFrom, operatorName } from "./options.js";

/** The types whose ciphertexts `rotate` re-encrypts, after which their old versions are retired. */
const REENCRYPTED: readonly KeyType[] = ["pan-data", "pin-storage"];

/** What `keys rotate` takes; the other actions take fewer. Declared, with their defaults, in commands.ts. */
export interface KeysFlags extends ConfigFlags {
  type?: string[];
  "batch-size"?: string;
  "grace-ms"?: string;
  "no-reencrypt"?: boolean;
}

/** What `keys import` takes. */
export interface KeyImportFlags extends ConfigFlags {
  type: string;
  component?: string[];
  kcv?: string;
  tr31?: string;
  kbpk?: string;
  algorithm?: string;
  operator?: string;
}

/** Refusals of the provider (bad key, wrong check value, unknown id) are the operator's to fix: exit 2. */
async function asUsage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError) throw new UsageError(error.message);
    throw error;
  }
}

/** How an imported key is put to use: none is active by itself. */
function nextStep(key: KeyInfo): string {
  switch (key.type) {
    case "cvk":
    case "pvk":
      return `name it for a card program: cardvault tenants update TENANT --${key.type} ${key.id}`;
    case "kbpk":
      return `unwrap key blocks under it: cardvault keys import --type TYPE --tr31 BLOCK --kbpk ${key.id}`;
    default:
      return `name it as keyId in PIN block verifications (format ${key.algorithm.startsWith("aes") ? "4" : "0, 1, 3"})`;
  }
}

/** `keys import`: by two or three --component (and --kcv), or by --tr31 BLOCK --kbpk KEY_ID. */
export async function keysImportCommand(values: KeyImportFlags, io: CliIo): Promise<number> {
  const type = values.type as KeyType;
  if (!(keyTypes as readonly string[]).includes(type)) {
    throw new UsageError(`Unknown key type; one of ${keyTypes.join(", ")}.`);
  }
  const components = values.component ?? [];
  const byBlock = values.tr31 !== undefined;
  if (byBlock === components.length > 0) {
    throw new UsageError(
      "give either --component HEX (two or three times) and --kcv, or --tr31 BLOCK and --kbpk KEY_ID",
    );
  }
  if (!byBlock && values.kcv === undefined)
    throw new UsageError("components need --kcv, the key's published check value");
  if (byBlock && values.kbpk === undefined)
    throw new UsageError("--tr31 needs --kbpk KEY_ID, the key it is wrapped under");
  const algorithm = values.algorithm;
  if (algorithm !== undefined && algorithm !== "tdes" && algorithm !== "aes") {
    throw new UsageError("--algorithm must be tdes or aes");
  }
  if (byBlock && algorithm !== undefined)
    throw new UsageError("--algorithm is for components: a key block's header says it");
  const operator = operatorName(values.operator);
  const config = configFrom(values);
  const keys = openKeys(config, systemClock, (message) => io.stderr(`warning: ${message}`));
  try {
    const store = await openStore(config);
    try {
      const ceremony = createKeyCeremonyService({
        keys,
        recordOperator: createOperatorRecorder({ audit: createAuditRepo(store.db), clock: systemClock }),
        production: config.production,
      });
      const key = await asUsage(() =>
        byBlock
          ? ceremony.importKeyBlock(operator, {
              type,
              block: values.tr31!,
              kbpkId: values.kbpk!,
              kcv: values.kcv,
            })
          : ceremony.importComponents(
              operator,
              {
                type,
                components: components.map((c, i) => parseHex(c, { name: `component ${i + 1}` })),
                kcv: values.kcv!,
                algorithm,
              },
              (position, kcv) => io.stdout(`component ${position}: kcv=${kcv}`),
            ),
      );
      io.stdout(
        `imported ${key.id}\t${key.type}\t${key.algorithm}\torigin=${key.origin}\tkcv=${key.kcv}\tnot active`,
      );
      io.stdout(`next: ${nextStep(key)}`);
      return 0;
    } finally {
      await store.close();
    }
  } finally {
    await keys.close();
  }
}

/** `crypto cvv --key-id` / `crypto pvv --key-id`: the value under a stored key, computed in the provider. */
export async function storedKeyCheck(
  what: "cvv" | "pvv",
  values: ConfigFlags & Record<string, string | undefined>,
  io: CliIo,
): Promise<string> {
  const keys = openKeys(configFrom(values), systemClock, (message) => io.stderr(`warning: ${message}`));
  try {
    return await asUsage(() =>
      what === "cvv"
        ? keys.computeCvv({
            keyId: values["key-id"]!,
            pan: values.pan!,
            expiry: values.expiry!,
            serviceCode: values["service-code"]!,
          })
        : keys.computePvv({
            keyId: values["key-id"]!,
            pvki: values.pvki!,
            pan: values.pan!,
            pin: values.pin!,
          }),
    );
  } finally {
    await keys.close();
  }
}

export async function keysCommand(
  action: "init" | "list" | "rotate" | "reencrypt",
  values: KeysFlags,
  io: CliIo,
): Promise<number> {
  const config = configFrom(values);
  if (config.keyProvider === "pkcs11") return tokenKeysCommand(action, values, config, io);
  const file = keystorePath(config);
  const warn = (message: string) => io.stderr(`warning: ${message}`);
  const masterKey = resolveMasterKey(config, warn);
  // rotate and reencrypt take these (with defaults): checked before anything changes.
  const batchSize = Number(values["batch-size"]);
  const graceMs = Number(values["grace-ms"]);
  const reencrypts = action === "rotate" || action === "reencrypt";
  if (
    reencrypts &&
    !(Number.isInteger(batchSize) && batchSize >= 1 && Number.isInteger(graceMs) && graceMs >= 0)
  ) {
    throw new UsageError("--batch-size must be a whole number ≥ 1 and --grace-ms ≥ 0");
  }

  const reencrypt = (types: readonly KeyType[]) =>
    reencryptCards(config, io, { batchSize, graceMs, warn }, types, (ids) =>
      retireKeys(file, masterKey, ids, systemClock),
    );

  switch (action) {
    case "init": {
      const created = initKeystore(file, masterKey, systemClock);
      io.stdout(
        created.length ? `created ${created.join(", ")} in ${file}` : `${file} already has every key type`,
      );
      return 0;
    }
    case "list": {
      if (!keystoreExists(file)) throw new UsageError(`No keystore at ${file}; run \`cardvault keys init\`.`);
      const keys = openKeys(config, systemClock, warn);
      try {
        for (const k of keys.listKeys()) io.stdout(keyListLine(k));
      } finally {
        await keys.close();
      }
      return 0;
    }
    case "rotate": {
      const types = values.type ?? [];
      const unknown = types.filter((t) => !(generatedKeyTypes as readonly string[]).includes(t));
      if (unknown.length)
        throw new UsageError(
          `Cannot rotate ${unknown.join(", ")}: one of ${generatedKeyTypes.join(", ")} (zpk and kbpk come in by \`keys import\`).`,
        );
      const created = rotateKeys(file, masterKey, types as KeyType[], systemClock);
      io.stdout(`created ${created.join(", ")}; running servers adopt them within a second`);
      const sealing = types.filter((t): t is KeyType => REENCRYPTED.includes(t as KeyType));
      // CVK, PVK…: new cards use the new version, existing cards keep theirs. --no-reencrypt: copy the
      // keystore to every host first, then run `keys reencrypt`.
      if (sealing.length === 0 || values["no-reencrypt"]) return 0;
      await reencrypt(sealing);
      return 0;
    }
    case "reencrypt": {
      await reencrypt(REENCRYPTED);
      return 0;
    }
  }
}

/** Re-encrypts every card under the active versions of `types`, then retires their older versions. */
async function reencryptCards(
  config: Config,
  io: CliIo,
  settings: { batchSize: number; graceMs: number; warn: (message: string) => void },
  types: readonly KeyType[],
  retire: (ids: string[]) => string[],
): Promise<void> {
  const { batchSize, graceMs, warn } = settings;
  const runtime = await openRuntime(config, { warn });
  try {
    const rotation = runtime.services.keyRotation;
    let total = 0;
    const pass = async () => {
      for (;;) {
        const { found, reencrypted } = await rotation.reencryptBatch(batchSize);
        total += reencrypted;
        if (found === 0) return;
        if (reencrypted < found) await sleep(20); // cards changed under us: they come back next batch
      }
    };
    await pass();
    // A server that had not yet adopted the new keys may have sealed a card under the old version.
    await sleep(graceMs);
    await pass();
    const old = runtime.keys
      .listKeys()
      .filter((k) => types.includes(k.type) && !k.active && !k.retired)
      .map((k) => k.id);
    const retired = retire(old);
    io.stdout(`re-encrypted ${total} cards; retired ${retired.length ? retired.join(", ") : "nothing"}`);
  } finally {
    await runtime.close();
  }
}

/**
 * The same actions on a PKCS#11 token (CARDVAULT_KEY_PROVIDER=pkcs11): keys are generated inside it, listed
 * from the metadata it keeps, and retired by marking that metadata; the database never holds any of it.
 */
async function tokenKeysCommand(
  action: "init" | "list" | "rotate" | "reencrypt",
  values: KeysFlags,
  config: Config,
  io: CliIo,
): Promise<number> {
  const batchSize = Number(values["batch-size"]);
  const graceMs = Number(values["grace-ms"]);
  const warn = (message: string) => io.stderr(`warning: ${message}`);
  if (
    (action === "rotate" || action === "reencrypt") &&
    !(Number.isInteger(batchSize) && batchSize >= 1 && Number.isInteger(graceMs) && graceMs >= 0)
  ) {
    throw new UsageError("--batch-size must be a whole number ≥ 1 and --grace-ms ≥ 0");
  }
  const token = openToken(config.pkcs11!);
  const reencrypt = (types: readonly KeyType[]) =>
    reencryptCards(config, io, { batchSize, graceMs, warn }, types, (ids) =>
      retireTokenKeys(token, ids, systemClock),
    );
  try {
    switch (action) {
      case "init": {
        const created = await initTokenKeys(token, systemClock);
        io.stdout(
          created.length
            ? `created ${created.join(", ")} in the token "${token.label}"`
            : `the token "${token.label}" already has every key type`,
        );
        return 0;
      }
      case "list": {
        for (const k of token.readKeys()) io.stdout(keyListLine(k));
        return 0;
      }
      case "rotate": {
        const types = values.type ?? [];
        const unknown = types.filter((t) => !(generatedKeyTypes as readonly string[]).includes(t));
        if (unknown.length)
          throw new UsageError(
            `Cannot rotate ${unknown.join(", ")}: one of ${generatedKeyTypes.join(", ")} (zpk and kbpk come in by \`keys import\`).`,
          );
        const created: string[] = [];
        for (const type of types as KeyType[]) created.push((await generateKey(token, type, systemClock)).id);
        io.stdout(`created ${created.join(", ")}; running servers adopt them within a second`);
        const sealing = types.filter((t): t is KeyType => REENCRYPTED.includes(t as KeyType));
        if (sealing.length > 0 && !values["no-reencrypt"]) await reencrypt(sealing);
        return 0;
      }
      case "reencrypt":
        await reencrypt(REENCRYPTED);
        return 0;
    }
  } finally {
    token.close();
  }
}

/**
 * One line of `keys list`, the same for the keystore and a token: id, type, version, algorithm, origin, check
 * value, state and dates. Never the key.
 */
function keyListLine(k: KeyInfo): string {
  const state = k.active
    ? "active"
    : k.retired
      ? "retired"
      : k.origin === "generated"
        ? "previous (still opens data)"
        : "imported (used by id)";
  const notAfter = k.notAfter ? `\tnot-after=${k.notAfter}` : "";
  return `${k.id}\t${k.type}\tv${k.version}\t${k.algorithm}\torigin=${k.origin}\tkcv=${k.kcv}\t${state}\t${k.createdAt}${notAfter}`;
}
