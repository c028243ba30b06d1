// `cardvault crypto …`: run one payment-card algorithm from src/crypto on clear test values.
// Invariant: stdout carries only the result; bad input gives one line on stderr and exit code 2, and no
// message ever repeats a key, PAN, PIN or PIN block the user typed.

import { parseArgs } from "node:util";
import {
  CryptoInputError,
  computeCvv,
  computeDcvv,
  computePvv,
  decipherPinBlock,
  decodePinBlock,
  encipherPinBlock,
  encodePinBlock,
  ibm3624Offset,
  keyCheckValue,
  type PinBlockFormat,
  parseKey,
  toHex,
} from "../crypto/index.js";
import { type CliIo, UsageError } from "./io.js";

export const CRYPTO_USAGE = `Usage: cardvault crypto <command> [options]

Payment-card cryptography on clear test keys (hex). Prints only the result.

Commands:
  cvv             --cvk HEX32 --pan PAN --expiry YYMM --service-code NNN
                  (CVV2: service code 000, iCVV: 999)
  pvv             --pvk HEX32 --pvki N --pan PAN --pin PIN
  ibm3624-offset  --pvk HEX32 --decimalization-table 16DIGITS --validation-data HEX --pad F
                  --pin PIN [--check-length N]   (check length defaults to the PIN length)
  pin-block decode --format 0|1|2|3|4 --block HEX [--pan PAN] [--key HEX]
                  with --key the block is enciphered (3DES for 0-3, AES for 4; format 4 then needs --pan)
  pin-block encode --format 0|1|2|3|4 --pin PIN [--pan PAN] [--key HEX]
                  without --key format 4 prints the clear 16-byte PIN field
  kcv             --key HEX --algorithm tdes|aes [--length BYTES]   (default 3)
  dcvv            --imk HEX32 --pan PAN --psn NN --expiry YYMM --service-code NNN --atc HEX4 [--option A|B]

Options:
  -h, --help      show this help
`;

type Values = Record<string, string | boolean | undefined>;

function parse(args: string[], names: readonly string[]): Values {
  const options: Record<string, { type: "string" } | { type: "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const name of names) options[name] = { type: "string" };
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values;
  } catch (error) {
    throw new UsageError(describeParseError(error));
  }
}

/** parseArgs messages can quote what the user typed (maybe a PIN): keep only well-formed option names. */
function describeParseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : "";
  const name = /'(?:-[a-z], )?(--?[a-z][a-z-]*)/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return name ? `unknown option ${name}` : "unknown option";
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return name ? `option ${name} needs a value` : "an option is missing its value";
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return "unexpected argument (every value must follow its --option)";
    default:
      return "invalid arguments";
  }
}

function need(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`missing --${name}`);
  return value;
}

function optional(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

function integerOption(values: Values, name: string): number | undefined {
  const value = optional(values, name);
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,3}$/.test(value)) throw new UsageError(`--${name} must be a whole number`);
  return Number(value);
}

function formatOption(values: Values): PinBlockFormat {
  const value = need(values, "format");
  if (!/^[0-4]$/.test(value)) throw new UsageError("--format must be 0, 1, 2, 3 or 4");
  return Number(value) as PinBlockFormat;
}

const COMMANDS: Record<string, { options: readonly string[]; run: (values: Values) => string }> = {
  cvv: {
    options: ["cvk", "pan", "expiry", "service-code"],
    run: (v) =>
      computeCvv({
        cvk: parseKey(need(v, "cvk"), { allowed: [16], name: "CVK" }),
        pan: need(v, "pan"),
        expiry: need(v, "expiry"),
        serviceCode: need(v, "service-code"),
      }),
  },
  pvv: {
    options: ["pvk", "pvki", "pan", "pin"],
    run: (v) =>
      computePvv({
        pvk: parseKey(need(v, "pvk"), { allowed: [16], name: "PVK" }),
        pvki: need(v, "pvki"),
        pan: need(v, "pan"),
        pin: need(v, "pin"),
      }),
  },
  "ibm3624-offset": {
    options: ["pvk", "decimalization-table", "validation-data", "pad", "pin", "check-length"],
    run: (v) =>
      ibm3624Offset({
        pvk: parseKey(need(v, "pvk"), { allowed: [16, 24], name: "PVK" }),
        decimalizationTable: need(v, "decimalization-table"),
        validationData: need(v, "validation-data"),
        pad: need(v, "pad"),
        pin: need(v, "pin"),
        checkLength: integerOption(v, "check-length"),
      }),
  },
  kcv: {
    options: ["key", "algorithm", "length"],
    run: (v) => {
      const algorithm = need(v, "algorithm");
      if (algorithm !== "tdes" && algorithm !== "aes")
        throw new UsageError("--algorithm must be tdes or aes");
      const key = parseKey(need(v, "key"), {
        allowed: algorithm === "tdes" ? [16, 24] : [16, 24, 32],
        name: "key",
      });
      return keyCheckValue(key, algorithm, integerOption(v, "length") ?? 3);
    },
  },
  dcvv: {
    options: ["imk", "pan", "psn", "expiry", "service-code", "atc", "option"],
    run: (v) => {
      const option = (optional(v, "option") ?? "A").toUpperCase();
      if (option !== "A" && option !== "B") throw new UsageError("--option must be A or B");
      return computeDcvv({
        imk: parseKey(need(v, "imk"), { allowed: [16], name: "IMK" }),
        pan: need(v, "pan"),
        psn: need(v, "psn"),
        expiry: need(v, "expiry"),
        serviceCode: need(v, "service-code"),
        atc: need(v, "atc"),
        option,
      });
    },
  },
  "pin-block decode": {
    options: ["format", "block", "pan", "key"],
    run: (v) => {
      const format = formatOption(v);
      const block = need(v, "block");
      const pan = optional(v, "pan");
      const keyHex = optional(v, "key");
      if (keyHex === undefined) return decodePinBlock({ format, block, pan });
      const key = pinKey(keyHex, format);
      if (format === 4 && pan === undefined) throw new UsageError("format 4 with --key needs --pan");
      return decipherPinBlock({ format, block, pan, key });
    },
  },
  "pin-block encode": {
    options: ["format", "pin", "pan", "key"],
    run: (v) => {
      const format = formatOption(v);
      const pin = need(v, "pin");
      const pan = optional(v, "pan");
      const keyHex = optional(v, "key");
      if (keyHex === undefined) return toHex(encodePinBlock({ format, pin, pan }));
      const key = pinKey(keyHex, format);
      if (format === 4 && pan === undefined) throw new UsageError("format 4 with --key needs --pan");
      return toHex(encipherPinBlock({ format, pin, pan, key }));
    },
  },
};

function pinKey(hex: string, format: PinBlockFormat): Buffer {
  return format === 4
    ? parseKey(hex, { allowed: [16, 24, 32], name: "AES PIN key" })
    : parseKey(hex, { allowed: [16, 24], name: "3DES PIN key" });
}

export async function cryptoCommand(args: string[], io: CliIo): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--help" || first === "-h") {
    io.stdout(CRYPTO_USAGE);
    return 0;
  }
  let name = first;
  let commandArgs = rest;
  if (first === "pin-block") {
    const [mode, ...more] = rest;
    if (mode === "--help" || mode === "-h") {
      io.stdout(CRYPTO_USAGE);
      return 0;
    }
    name = `pin-block ${mode ?? ""}`;
    commandArgs = more;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (command === undefined) {
    const problem =
      first === undefined
        ? "missing command"
        : first === "pin-block"
          ? "pin-block needs encode or decode"
          : "unknown command";
    io.stderr(`cardvault crypto: ${problem}\n\n${CRYPTO_USAGE}`);
    return 2;
  }
  try {
    const values = parse(commandArgs, command.options);
    if (values.help === true) {
      io.stdout(CRYPTO_USAGE);
      return 0;
    }
    io.stdout(`${command.run(values)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError || error instanceof CryptoInputError) {
      io.stderr(`cardvault crypto ${name}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
