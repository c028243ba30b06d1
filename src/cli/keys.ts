// `cardvault keys init | list | rotate | reencrypt`: manage the local keystore. Prints ids and check values,
// never keys. rotate adds new key versions and, for the keys that seal data, re-encrypts every card online and
// then retires the old versions; running servers adopt the new keystore by themselves (see local-keystore.ts).
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../config.js";
import { type KeyType, keyTypes } from "../keys/key-provider.js";
import { initKeystore, keystoreExists, loadKeystore, retireKeys, rotateKeys } from "../keys/keystore-file.js";
import { generateKey, initTokenKeys, openToken, retireTokenKeys } from "../keys/pkcs11-token.js";
import { systemClock } from "../lib/clock.js";
import { keystorePath, openRuntime, resolveMasterKey } from "../runtime.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, configFrom } from "./options.js";

/** The types whose ciphertexts `rotate` re-encrypts, after which their old versions are retired. */
const REENCRYPTED: readonly KeyType[] = ["pan-data", "pin-storage"];

/** What `keys rotate` takes; the other actions take fewer. Declared, with their defaults, in commands.ts. */
export interface KeysFlags extends ConfigFlags {
  type?: string[];
  "batch-size"?: string;
  "grace-ms"?: string;
  "no-reencrypt"?: boolean;
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
      for (const k of loadKeystore(file, masterKey)) {
        const state = k.active ? "active" : k.retired ? "retired" : "previous (still opens data)";
        const notAfter = k.notAfter ? `\tnot-after=${k.notAfter}` : "";
        io.stdout(`${k.id}\t${k.algorithm}\tkcv=${k.kcv}\t${state}\t${k.createdAt}${notAfter}`);
      }
      return 0;
    }
    case "rotate": {
      const types = values.type ?? [];
      const unknown = types.filter((t) => !(keyTypes as readonly string[]).includes(t));
      if (unknown.length)
        throw new UsageError(`Unknown key type ${unknown.join(", ")}; one of ${keyTypes.join(", ")}.`);
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
        for (const k of token.readKeys()) {
          const state = k.active ? "active" : k.retired ? "retired" : "previous (still opens data)";
          const notAfter = k.notAfter ? `\tnot-after=${k.notAfter}` : "";
          io.stdout(
            `${k.id}\t${k.algorithm}\tkcv=${k.kcv}\t${state}\torigin=${k.origin}\t${k.createdAt}${notAfter}`,
          );
        }
        return 0;
      }
      case "rotate": {
        const types = values.type ?? [];
        const unknown = types.filter((t) => !(keyTypes as readonly string[]).includes(t));
        if (unknown.length)
          throw new UsageError(`Unknown key type ${unknown.join(", ")}; one of ${keyTypes.join(", ")}.`);
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
