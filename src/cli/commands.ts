// Every `cardvault` command, declared once: what it does, its options with their defaults, an example. The
// parser and `--help` are both made from these declarations (command.ts), so they cannot drift apart.
// Each command's code is imported only when it runs: `--help` and `crypto` start without loading the server.
import { ConfigError } from "../config.js";
import { CryptoInputError } from "../crypto/errors.js";
import { generatedKeyTypes, importableKeyTypes } from "../keys/key-provider.js";
import { TENANT_DEFAULTS } from "../services/tenants.js";
import { command, type Group, runCommandLine } from "./command.js";
import { type CliIo, UsageError } from "./io.js";
import { dataDirOption, storeOptions } from "./options.js";

/** The options of `keys rotate` and `keys reencrypt`. */
const reencryptOptions = {
  "batch-size": { type: "string", value: "N", default: "200", help: "cards re-encrypted per transaction" },
  // Longer than a running provider's keystore check (1 s): what a server sealed under the old key is caught.
  "grace-ms": {
    type: "string",
    value: "MS",
    default: "2000",
    help: "wait before the second pass, for servers still sealing under the old key",
  },
  ...storeOptions,
} as const;

/** Prints a calculator's result: stdout carries nothing else. */
function print(result: string, io: CliIo): number {
  io.stdout(`${result}\n`);
  return 0;
}
const crypto = () => import("./crypto.js");

/** `crypto cvv|pvv`: exactly one of a clear key and a stored key's id; true for the stored key. */
function keyOption(clear: string | undefined, keyId: string | undefined, flag: string): boolean {
  if ((clear === undefined) === (keyId === undefined)) {
    throw new UsageError(`give either ${flag} HEX or --key-id KEY_ID`);
  }
  return keyId !== undefined;
}

const pinBlockOptions = {
  format: { type: "string", value: "0|1|2|3|4", required: true, help: "ISO 9564 PIN block format" },
  pan: { type: "string", value: "PAN", help: "the card's PAN (formats 0, 3 and 4)" },
  key: {
    type: "string",
    value: "HEX",
    help: "with a key the block is enciphered: 3DES for formats 0–3, AES for format 4 (which then needs --pan)",
  },
} as const;

export const cardvault: Group = {
  summary: "cardvault: a card issuer's CVV & PIN service, and the operator's tools around it.",
  commands: {
    serve: command({
      summary: "run the HTTP API, and the background jobs unless CARDVAULT_JOBS=off",
      options: {
        host: {
          type: "string",
          value: "HOST",
          help: "address to listen on (default: $CARDVAULT_HOST, else 127.0.0.1)",
        },
        port: {
          type: "string",
          value: "N",
          help: "port to listen on, 0 for any free one (default: $CARDVAULT_PORT, else 8080)",
        },
        ...storeOptions,
      },
      example: "cardvault serve --host 0.0.0.0 --port 8080 --data-dir /var/lib/cardvault",
      run: async ({ values }) => (await import("./serve.js")).serveCommand(values),
    }),
    worker: command({
      summary: "run the background jobs (rotation scheduler, webhook sender) without the API",
      options: storeOptions,
      example: "cardvault worker --database-url postgres://cardvault@db.example.com:5432/cardvault",
      run: async ({ values }) => (await import("./worker.js")).workerCommand(values),
    }),
    migrate: command({
      summary: "apply database migrations (serve does it on SQLite; PostgreSQL needs it)",
      options: storeOptions,
      example: "cardvault migrate --database-url postgres://cardvault@db.example.com:5432/cardvault",
      run: async ({ values }, io) => (await import("./migrate.js")).migrateCommand(values, io),
    }),
    keys: {
      summary:
        "manage the keys: the local keystore, or the PKCS#11 token when CARDVAULT_KEY_PROVIDER=pkcs11 (prints key ids and check values, never keys)",
      commands: {
        init: command({
          summary:
            "create the keystore (or, on a PKCS#11 token, generate the keys inside it), adding the key types it lacks",
          options: dataDirOption,
          example: "cardvault keys init --data-dir /var/lib/cardvault",
          run: async ({ values }, io) => (await import("./keys.js")).keysCommand("init", values, io),
        }),
        list: command({
          summary: "list key ids, algorithms, check values and states",
          options: dataDirOption,
          example: "cardvault keys list --data-dir /var/lib/cardvault",
          run: async ({ values }, io) => (await import("./keys.js")).keysCommand("list", values, io),
        }),
        rotate: command({
          summary:
            "add new key versions; re-encrypt every card under the data keys, then retire the old ones",
          options: {
            type: {
              type: "string",
              value: "TYPE",
              multiple: true,
              // The keys that seal data. CVK and PVK rotate only on request (cards keep their own version).
              default: ["pan-data", "pin-storage"],
              help: `key type to rotate: ${generatedKeyTypes.join(", ")}`,
            },
            "no-reencrypt": {
              type: "boolean",
              help: "only add the versions: copy the keystore to every host, then run `keys reencrypt`",
            },
            ...reencryptOptions,
          },
          example: "cardvault keys rotate --type pan-data --type cvk --data-dir /var/lib/cardvault",
          run: async ({ values }, io) => (await import("./keys.js")).keysCommand("rotate", values, io),
        }),
        reencrypt: command({
          summary: "re-encrypt every card under the active data keys, then retire the old versions",
          options: reencryptOptions,
          example: "cardvault keys reencrypt --batch-size 500 --data-dir /var/lib/cardvault",
          run: async ({ values }, io) => (await import("./keys.js")).keysCommand("reencrypt", values, io),
        }),
        import: command({
          summary:
            "key ceremony: bring a key in by clear components (dual control) or a TR-31 block; audited, never active",
          options: {
            type: {
              type: "string",
              value: "TYPE",
              required: true,
              help: `the key's type: ${importableKeyTypes.join(", ")}`,
            },
            component: {
              type: "string",
              value: "HEX",
              multiple: true,
              help: "a clear component, one per custodian: two or three (one only outside production); TDES components must have odd parity (checked; the combined key's is set); each one's check value is printed before they are combined",
            },
            kcv: {
              type: "string",
              value: "KCV",
              help: "the key's published check value (4 or 6 hex digits): required with components, optional with --tr31; nothing is stored unless it matches",
            },
            tr31: {
              type: "string",
              value: "BLOCK",
              help: "a TR-31 / X9.143 key block, version B (TDES KBPK) or D (AES KBPK); its MAC and header (key usage, algorithm, mode of use) are checked",
            },
            kbpk: {
              type: "string",
              value: "KEY_ID",
              help: "with --tr31: the stored kbpk the block is wrapped under",
            },
            algorithm: {
              type: "string",
              value: "tdes|aes",
              help: "zpk and kbpk components: the key's algorithm (default by length: 16 or 24 bytes TDES, 32 AES)",
            },
            operator: {
              type: "string",
              value: "NAME",
              help: "who runs the ceremony, for the audit record (default: the OS user)",
            },
            ...storeOptions,
          },
          example:
            "cardvault keys import --type cvk --component 0123456789ABCDEF0123456789ABCDEF --component 0123456789ABCDEF0123456789ABCDEF --kcv 08D7B4",
          run: async ({ values }, io) => (await import("./keys.js")).keysImportCommand(values, io),
        }),
      },
    },
    tenants: {
      summary: "manage tenants (card programs)",
      commands: {
        add: command({
          summary: "register a card program: its BIN, PAN length and try limits",
          args: ["ID"],
          options: {
            name: { type: "string", value: "TEXT", help: "a display name" },
            bin: {
              type: "string",
              value: "DIGITS",
              default: TENANT_DEFAULTS.bin,
              help: "the BIN its PANs start with, 6–11 digits",
            },
            "pan-length": {
              type: "string",
              value: "N",
              default: String(TENANT_DEFAULTS.panLength),
              help: "digits in a PAN, 12–19",
            },
            "max-cvv-tries": {
              type: "string",
              value: "N",
              default: String(TENANT_DEFAULTS.maxCvvTries),
              help: "wrong CVVs in a row that block it, 1–99",
            },
            "max-pin-tries": {
              type: "string",
              value: "N",
              default: String(TENANT_DEFAULTS.maxPinTries),
              help: "wrong PINs in a row that block it, 1–99",
            },
            sandbox: { type: "boolean", help: "a sandbox tenant: its cards may use test clocks" },
            "rotation-interval-hours": {
              type: "string",
              value: "N",
              help: "CVV rotation interval of new virtual cards that name none (default: no rotation)",
            },
            "allow-private-webhooks": {
              type: "boolean",
              help: "let webhooks reach loopback and private addresses",
            },
            "secure-data-pin": { type: "boolean", help: "add the PIN to Get Card Data payloads" },
            "allow-pin-block-format-1": {
              type: "boolean",
              help: "accept format-1 PIN blocks (not bound to the PAN)",
            },
            ...storeOptions,
          },
          example: "cardvault tenants add acme --bin 412345 --max-cvv-tries 5",
          run: async ({ values, args }, io) =>
            (await import("./tenants.js")).tenantsCommand("add", values, args[0], io),
        }),
        update: command({
          summary:
            "name the CVK and PVK a card program's new cards use (existing cards keep theirs); audited",
          args: ["ID"],
          options: {
            cvk: {
              type: "string",
              value: "KEY_ID|active",
              help: "the cvk new cards' CVVs are derived under (`active`: the provider's active version)",
            },
            pvk: {
              type: "string",
              value: "KEY_ID|active",
              help: "the pvk PINs set from now on get their PVV under (`active`: the provider's active version)",
            },
            operator: {
              type: "string",
              value: "NAME",
              help: "who makes the change, for the tenant's audit trail (default: the OS user)",
            },
            ...storeOptions,
          },
          example: "cardvault tenants update acme --cvk cvk-v2 --pvk pvk-v3",
          run: async ({ values, args }, io) =>
            (await import("./tenants.js")).tenantsUpdateCommand(values, args[0]!, io),
        }),
        list: command({
          summary: "list tenants and their settings",
          options: storeOptions,
          example: "cardvault tenants list",
          run: async ({ values }, io) =>
            (await import("./tenants.js")).tenantsCommand("list", values, undefined, io),
        }),
      },
    },
    clients: {
      summary: "manage a tenant's OAuth2 API clients (client credentials for POST /oauth2/token)",
      commands: {
        add: command({
          summary: "register a client: prints its client_id and client_secret, once",
          options: {
            tenant: { type: "string", value: "ID", required: true, help: "the tenant the client acts for" },
            scope: {
              type: "string",
              value: "SCOPES",
              required: true,
              help: "space-separated scopes it may be granted (docs/api.md lists them)",
            },
            name: { type: "string", value: "TEXT", help: "a display name" },
            ...storeOptions,
          },
          example: 'cardvault clients add --tenant acme --scope "cards:write cvv:read cvv:verify"',
          run: async ({ values }, io) =>
            (await import("./clients.js")).clientsCommand("add", values, undefined, io),
        }),
        list: command({
          summary: "list clients (never their secrets), with revocations and secret overlaps",
          options: {
            tenant: { type: "string", value: "ID", help: "only this tenant's clients" },
            ...storeOptions,
          },
          example: "cardvault clients list --tenant acme",
          run: async ({ values }, io) =>
            (await import("./clients.js")).clientsCommand("list", values, undefined, io),
        }),
        revoke: command({
          summary: "refuse a client from now on (its tokens already issued expire within their lifetime)",
          args: ["CLIENT_ID"],
          options: storeOptions,
          example: "cardvault clients revoke cvc_3q2-7wQ0a1b2c3d4e5f6g7",
          run: async ({ values, args }, io) =>
            (await import("./clients.js")).clientsCommand("revoke", values, args[0], io),
        }),
        "rotate-secret": command({
          summary: "issue a new secret, printed once; the old one stays valid for the overlap",
          args: ["CLIENT_ID"],
          options: {
            overlap: {
              type: "string",
              value: "DURATION",
              default: "24h",
              help: "how long the previous secret is still accepted: a number with s, m, h or d (0s: not at all; at most 30d)",
            },
            ...storeOptions,
          },
          example: "cardvault clients rotate-secret cvc_3q2-7wQ0a1b2c3d4e5f6g7 --overlap 2h",
          run: async ({ values, args }, io) =>
            (await import("./clients.js")).clientsCommand("rotate-secret", values, args[0], io),
        }),
      },
    },
    cards: {
      summary: "bring a card program's existing cards over from another processor",
      commands: {
        import: command({
          args: ["FILE"],
          summary:
            "import cards from FILE (NDJSON, one card a line, or CSV with a header); idempotent: run again after a failure",
          options: {
            tenant: {
              type: "string",
              value: "ID",
              required: true,
              help: "the tenant (card program) the cards join",
            },
            format: {
              type: "string",
              value: "ndjson|csv",
              help: "the file's form (default: csv for a .csv file, else ndjson)",
            },
            "dry-run": {
              type: "boolean",
              help: "check every line (keys, PIN blocks, duplicates), write nothing",
            },
            rejects: {
              type: "string",
              value: "FILE",
              help: "write each rejected line's number and reason here (tab-separated; never the line itself)",
            },
            "batch-size": {
              type: "string",
              value: "N",
              default: "500",
              help: "cards written per transaction",
            },
            "skip-luhn-check": {
              type: "boolean",
              help: "accept PANs whose Luhn check digit is wrong (certification test cards)",
            },
            ...storeOptions,
          },
          example: "cardvault cards import cards.ndjson --tenant acme --rejects rejects.tsv",
          run: async ({ values, args }, io) =>
            (await import("./cards-import.js")).cardsImportCommand(values, args[0], io),
        }),
      },
    },
    audit: {
      summary: "read audit records, oldest first, one JSON object a line",
      commands: {
        list: command({
          summary: "a tenant's trail, or the operator's own records (refused requests no tenant owns)",
          options: {
            operator: {
              type: "boolean",
              help: "the operator's records: tokens that did not verify, tokens naming an unregistered tenant",
            },
            tenant: {
              type: "string",
              value: "ID",
              help: "this tenant's records (as GET /v1/audit-events shows them)",
            },
            after: {
              type: "string",
              value: "CURSOR",
              help: "continue after this cursor (printed on stderr)",
            },
            limit: { type: "string", value: "N", default: "100", help: "records to print, 1–1000" },
            ...storeOptions,
          },
          example: "cardvault audit list --operator --limit 50",
          run: async ({ values }, io) => (await import("./audit.js")).auditCommand(values, io),
        }),
      },
    },
    token: command({
      summary: "mint an HS256 bearer token this server accepts (with a JWKS, use your identity provider)",
      options: {
        tenant: { type: "string", value: "ID", required: true, help: "the tenant the token acts for" },
        scope: {
          type: "string",
          value: "SCOPES",
          required: true,
          help: "space-separated scopes (docs/api.md lists them)",
        },
        ttl: {
          type: "string",
          value: "DURATION",
          default: "1h",
          help: "lifetime: a number with s, m, h or d",
        },
        subject: {
          type: "string",
          value: "NAME",
          default: "cli",
          help: "the sub claim, recorded in audit events",
        },
        ...dataDirOption,
      },
      example: 'cardvault token --tenant acme --scope "cards:write cvv:read" --ttl 15m',
      run: async ({ values }, io) => (await import("./token.js")).tokenCommand(values, io),
    }),
    crypto: {
      summary:
        "card cryptography calculator on clear test keys (hex), or (cvv, pvv) a stored key by --key-id; prints only the result",
      commands: {
        cvv: command({
          summary: "a Visa CVV: CVV2 with service code 000, iCVV with 999",
          options: {
            cvk: { type: "string", value: "HEX32", help: "the CVK (key A || key B); or --key-id" },
            "key-id": {
              type: "string",
              value: "KEY_ID",
              help: "a stored cvk, used inside the key provider (the check after a key ceremony)",
            },
            pan: { type: "string", value: "PAN", required: true, help: "the card's PAN" },
            expiry: { type: "string", value: "YYMM", required: true, help: "the expiry date" },
            "service-code": { type: "string", value: "NNN", required: true, help: "the service code" },
            ...dataDirOption,
          },
          example:
            "cardvault crypto cvv --cvk 0123456789ABCDEFFEDCBA9876543210 --pan 4123456789012345 --expiry 8701 --service-code 101",
          run: async ({ values }, io) =>
            print(
              keyOption(values.cvk, values["key-id"], "--cvk")
                ? await (await import("./keys.js")).storedKeyCheck("cvv", values, io)
                : (await crypto()).cvv({ ...values, cvk: values.cvk! }),
              io,
            ),
        }),
        pvv: command({
          summary: "a Visa PIN verification value",
          options: {
            pvk: { type: "string", value: "HEX32", help: "the PVK (key A || key B); or --key-id" },
            "key-id": {
              type: "string",
              value: "KEY_ID",
              help: "a stored pvk, used inside the key provider (the check after a key ceremony)",
            },
            pvki: { type: "string", value: "N", required: true, help: "the PVK index, 0–6" },
            pan: { type: "string", value: "PAN", required: true, help: "the card's PAN" },
            pin: { type: "string", value: "PIN", required: true, help: "the PIN" },
            ...dataDirOption,
          },
          example:
            "cardvault crypto pvv --pvk 0123456789ABCDEFFEDCBA9876543210 --pvki 1 --pan 1122334455667788 --pin 4524",
          run: async ({ values }, io) =>
            print(
              keyOption(values.pvk, values["key-id"], "--pvk")
                ? await (await import("./keys.js")).storedKeyCheck("pvv", values, io)
                : (await crypto()).pvv({ ...values, pvk: values.pvk! }),
              io,
            ),
        }),
        "ibm3624-offset": command({
          summary: "an IBM 3624 PIN offset",
          options: {
            pvk: { type: "string", value: "HEX", required: true, help: "the PIN verification key (3DES)" },
            "decimalization-table": {
              type: "string",
              value: "16DIGITS",
              required: true,
              help: "the decimalization table",
            },
            "validation-data": { type: "string", value: "HEX", required: true, help: "the validation data" },
            pad: { type: "string", value: "HEX1", required: true, help: "the pad character" },
            pin: { type: "string", value: "PIN", required: true, help: "the PIN" },
            "check-length": {
              type: "string",
              value: "N",
              help: "digits checked (default: the PIN's length)",
            },
          },
          example:
            "cardvault crypto ibm3624-offset --pvk 0123456789ABCDEFFEDCBA9876543210 --decimalization-table 1234567890123456 --validation-data 1122334455667788 --pad F --pin 4524",
          run: async ({ values }, io) => print((await crypto()).ibm3624(values), io),
        }),
        "pin-block": {
          summary: "ISO 9564 PIN blocks, clear or enciphered",
          commands: {
            encode: command({
              summary: "build a PIN block (format 4 without --key: the clear 16-byte PIN field)",
              options: {
                ...pinBlockOptions,
                pin: { type: "string", value: "PIN", required: true, help: "the PIN" },
              },
              example: "cardvault crypto pin-block encode --format 0 --pin 1234 --pan 5555555551234567",
              run: async ({ values }, io) => print((await crypto()).pinBlockEncode(values), io),
            }),
            decode: command({
              summary: "read the PIN out of a PIN block",
              options: {
                ...pinBlockOptions,
                block: { type: "string", value: "HEX", required: true, help: "the PIN block" },
              },
              example:
                "cardvault crypto pin-block decode --format 0 --block 041261AAAAEDCBA9 --pan 5555555551234567",
              run: async ({ values }, io) => print((await crypto()).pinBlockDecode(values), io),
            }),
          },
        },
        kcv: command({
          summary: "a key check value",
          options: {
            key: { type: "string", value: "HEX", required: true, help: "the key" },
            algorithm: { type: "string", value: "tdes|aes", required: true, help: "the key's algorithm" },
            length: { type: "string", value: "BYTES", default: "3", help: "bytes of the check value" },
          },
          example: "cardvault crypto kcv --key 0123456789ABCDEFFEDCBA9876543210 --algorithm tdes",
          run: async ({ values }, io) => print((await crypto()).kcv(values), io),
        }),
        dcvv: command({
          summary: "a dynamic CVV (EMV master-key derivation option A or B)",
          options: {
            imk: { type: "string", value: "HEX32", required: true, help: "the issuer master key (AC)" },
            pan: { type: "string", value: "PAN", required: true, help: "the card's PAN" },
            psn: { type: "string", value: "NN", required: true, help: "the PAN sequence number" },
            expiry: { type: "string", value: "YYMM", required: true, help: "the expiry date" },
            "service-code": { type: "string", value: "NNN", required: true, help: "the service code" },
            atc: {
              type: "string",
              value: "HEX4",
              required: true,
              help: "the application transaction counter",
            },
            option: { type: "string", value: "A|B", default: "A", help: "the master-key derivation option" },
          },
          example:
            "cardvault crypto dcvv --imk 12345678123456781234567812345678 --pan 1234567890123456 --psn 00 --expiry 1310 --service-code 226 --atc 3210",
          run: async ({ values }, io) => print((await crypto()).dcvv(values), io),
        }),
      },
    },
  },
};

/** `cardvault …argv`: the exit code, or -1 when the command keeps running (serve, worker). */
export function main(argv: string[], io: CliIo): Promise<number> {
  return runCommandLine(cardvault, argv, io, isOperatorError);
}

/**
 * What an operator fixes — configuration, keystore, schema, crypto input — is a message and exit code 2. The
 * keystore's and the store's error classes are imported only here (a module that threw one is loaded already),
 * so that `--help` and `crypto` do not load them.
 */
async function isOperatorError(error: unknown): Promise<boolean> {
  if (error instanceof ConfigError || error instanceof CryptoInputError) return true;
  const [{ KeystoreError }, { SchemaError }, { TokenError }] = await Promise.all([
    import("../keys/keystore-file.js"),
    import("../store/db.js"),
    import("../keys/pkcs11-token.js"),
  ]);
  return error instanceof KeystoreError || error instanceof SchemaError || error instanceof TokenError;
}
