// `cardvault crypto …`: run one payment-card algorithm from src/crypto on clear test values (the commands and
// their options are declared in commands.ts). Invariant: stdout carries only the result; bad input gives one
// line on stderr and exit code 2, and no message ever repeats a key, PAN, PIN or PIN block the user typed.
import {
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
import { UsageError } from "./io.js";

/** Required options are checked by the parser (commands.ts); optional ones may be absent. */
type Optional = string | undefined;

/** --check-length, --length: small whole numbers. */
function integerOption(value: Optional, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,3}$/.test(value)) throw new UsageError(`--${name} must be a whole number`);
  return Number(value);
}

function formatOption(value: string): PinBlockFormat {
  if (!/^[0-4]$/.test(value)) throw new UsageError("--format must be 0, 1, 2, 3 or 4");
  return Number(value) as PinBlockFormat;
}

export function cvv(v: { cvk: string; pan: string; expiry: string; "service-code": string }): string {
  return computeCvv({
    cvk: parseKey(v.cvk, { allowed: [16], name: "CVK" }),
    pan: v.pan,
    expiry: v.expiry,
    serviceCode: v["service-code"],
  });
}

export function pvv(v: { pvk: string; pvki: string; pan: string; pin: string }): string {
  return computePvv({
    pvk: parseKey(v.pvk, { allowed: [16], name: "PVK" }),
    pvki: v.pvki,
    pan: v.pan,
    pin: v.pin,
  });
}

export function ibm3624(v: {
  pvk: string;
  "decimalization-table": string;
  "validation-data": string;
  pad: string;
  pin: string;
  "check-length": Optional;
}): string {
  return ibm3624Offset({
    pvk: parseKey(v.pvk, { allowed: [16, 24], name: "PVK" }),
    decimalizationTable: v["decimalization-table"],
    validationData: v["validation-data"],
    pad: v.pad,
    pin: v.pin,
    checkLength: integerOption(v["check-length"], "check-length"),
  });
}

export function kcv(v: { key: string; algorithm: string; length: string }): string {
  const algorithm = v.algorithm;
  if (algorithm !== "tdes" && algorithm !== "aes") throw new UsageError("--algorithm must be tdes or aes");
  const key = parseKey(v.key, { allowed: algorithm === "tdes" ? [16, 24] : [16, 24, 32], name: "key" });
  return keyCheckValue(key, algorithm, integerOption(v.length, "length"));
}

export function dcvv(v: {
  imk: string;
  pan: string;
  psn: string;
  expiry: string;
  "service-code": string;
  atc: string;
  option: string;
}): string {
  const option = v.option.toUpperCase();
  if (option !== "A" && option !== "B") throw new UsageError("--option must be A or B");
  return computeDcvv({
    imk: parseKey(v.imk, { allowed: [16], name: "IMK" }),
    pan: v.pan,
    psn: v.psn,
    expiry: v.expiry,
    serviceCode: v["service-code"],
    atc: v.atc,
    option,
  });
}

export function pinBlockDecode(v: { format: string; block: string; pan: Optional; key: Optional }): string {
  const format = formatOption(v.format);
  if (v.key === undefined) return decodePinBlock({ format, block: v.block, pan: v.pan });
  const key = pinKey(v.key, format);
  if (format === 4 && v.pan === undefined) throw new UsageError("format 4 with --key needs --pan");
  return decipherPinBlock({ format, block: v.block, pan: v.pan, key });
}

export function pinBlockEncode(v: { format: string; pin: string; pan: Optional; key: Optional }): string {
  const format = formatOption(v.format);
  if (v.key === undefined) return toHex(encodePinBlock({ format, pin: v.pin, pan: v.pan }));
  const key = pinKey(v.key, format);
  if (format === 4 && v.pan === undefined) throw new UsageError("format 4 with --key needs --pan");
  return toHex(encipherPinBlock({ format, pin: v.pin, pan: v.pan, key }));
}

function pinKey(hex: string, format: PinBlockFormat): Buffer {
  return format === 4
    ? parseKey(hex, { allowed: [16, 24, 32], name: "AES PIN key" })
    : parseKey(hex, { allowed: [16, 24], name: "3DES PIN key" });
}
