// `cardvault keys init | list | rotate`: manage the local keystore. Prints ids and check values, never keys.
import { type KeyType, keyTypes } from "../keys/key-provider.js";
import { initKeystore, keystoreExists, loadKeystore, rotateKeys } from "../keys/keystore-file.js";
import { systemClock } from "../lib/clock.js";
import { keystorePath, resolveMasterKey } from "../runtime.js";
import { type CliIo, UsageError } from "./io.js";
import { configFrom, dataDirOption, parse } from "./options.js";

/** Rotated by default: the keys that seal data. CVK/PVK rotate only on request (cards keep their own). */
const DEFAULT_ROTATION: KeyType[] = ["pan-data", "pin-storage"];

export async function keysCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { ...dataDirOption, type: { type: "string", multiple: true } });
  const config = configFrom(values);
  const file = keystorePath(config);
  const masterKey = resolveMasterKey(config, (message) => io.stderr(`warning: ${message}`));
  switch (positionals[0]) {
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
        io.stdout(
          `${k.id}\t${k.algorithm}\tkcv=${k.kcv}\t${k.active ? "active" : "retired"}\t${k.createdAt}`,
        );
      }
      return 0;
    }
    case "rotate": {
      const types = (values.type ?? DEFAULT_ROTATION) as string[];
      const unknown = types.filter((t) => !(keyTypes as readonly string[]).includes(t));
      if (unknown.length)
        throw new UsageError(`Unknown key type ${unknown.join(", ")}; one of ${keyTypes.join(", ")}.`);
      const created = rotateKeys(file, masterKey, types as KeyType[], systemClock);
      io.stdout(
        `created ${created.join(", ")}; restart serve to use them (existing ciphertexts keep their key)`,
      );
      return 0;
    }
    default:
      throw new UsageError("usage: cardvault keys init | list | rotate [--type TYPE ...] [--data-dir DIR]");
  }
}
