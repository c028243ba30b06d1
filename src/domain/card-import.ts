// Card import lines (issue 15): what one line of a file from another processor may carry, checked field by
// field into a plain value, or refused with a reason. Pure: no keys, no store, time comes in as an argument.
// A reason names fields and what is wrong with them, never their values: a rejected line's PAN, PIN block or
// PVV must not reach a rejects file, an API answer or a log (first six / last four at most, and not even that
// here). Clear PINs are refused outright: a file must carry a PIN as a PVV or an enciphered PIN block.
import { isLuhnValid } from "../crypto/luhn.js";
import { PUBLIC_TOKEN_PATTERN } from "../lib/ids.js";
import {
  assertCardholderName,
  type CardStatus,
  type CardType,
  cardStatuses,
  cardTypes,
  parseExpiry,
} from "./card.js";
import { AppError } from "./errors.js";
import { isValidInterval } from "./rotation-schedule.js";

/** How a line carries the card's PIN: its PVV only, or a PIN block under a zone PIN key (with the PVV to check). */
export type ImportPin =
  | { kind: "pvv"; pvki: number; pvv: string }
  | { kind: "block"; pinBlock: string; format: 0 | 1 | 3 | 4; zpkId: string; pvki?: number; pvv?: string };

export interface ImportLine {
  pan: string;
  expiry: string;
  serviceCode?: string;
  type: CardType;
  status: CardStatus;
  cardholderName?: string;
  customerReference?: string;
  publicToken?: string;
  pismoId?: number;
  cvkId?: string;
  pvkId?: string;
  pin?: ImportPin;
  cvvTriesRemaining?: number;
  pinTriesRemaining?: number;
  cvvRotationIntervalHours?: number;
}

/** A refused line: the reason, for the rejects file and the import's record. */
export class LineRejected extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "LineRejected";
  }
}

export interface LineRules {
  now: Date;
  /** false accepts PANs whose Luhn check digit is wrong (certification test cards); default true. */
  luhn: boolean;
}

/**
 * Vendors' status names, mapped onto our life cycle (domain/card.ts): Thredd's and Pismo's common ones; anything
 * else is refused, so no card comes in with a status we would misread.
 */
const STATUS_NAMES: Record<string, CardStatus> = {
  active: "active",
  normal: "active",
  inactive: "inactive",
  pending: "inactive",
  created: "inactive",
  not_activated: "inactive",
  suspended: "suspended",
  blocked: "suspended",
  frozen: "suspended",
  closed: "closed",
  cancelled: "closed",
  canceled: "closed",
  terminated: "closed",
};

const FIELDS = new Set([
  "pan",
  "expiry",
  "serviceCode",
  "type",
  "status",
  "cardholderName",
  "customerReference",
  "publicToken",
  "aliases",
  "cvkId",
  "pvkId",
  "pin",
  "cvvTriesRemaining",
  "pinTriesRemaining",
  "cvvRotationIntervalHours",
]);
const PIN_FIELDS = new Set(["pvki", "pvv", "pinBlock", "format", "zpkId"]);
const KEY_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const publicToken = new RegExp(PUBLIC_TOKEN_PATTERN);

const reject = (reason: string): never => {
  throw new LineRejected(reason);
};

function optionalString(record: Record<string, unknown>, field: string): string | undefined {
  const value = record[field];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") reject(`${field}: must be a string`);
  return value as string;
}

function optionalInteger(
  record: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number | undefined {
  const value = record[field];
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" && /^-?[0-9]+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    reject(`${field}: must be a whole number from ${min} to ${max}`);
  }
  return n as number;
}

function pinOf(value: unknown): ImportPin | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    return reject("pin: must be {pvki, pvv} or {pinBlock, format, zpkId}; clear PINs are not accepted");
  }
  const pin = value as Record<string, unknown>;
  const unknown = Object.keys(pin).filter((k) => !PIN_FIELDS.has(k));
  if (unknown.length > 0) {
    return reject(
      `pin: unknown field(s) ${unknown.join(", ")}; clear PINs are not accepted: a PIN comes as {pvki, pvv} or {pinBlock, format, zpkId}`,
    );
  }
  const pvki = optionalInteger(pin, "pvki", 0, 9);
  const pvv = optionalString(pin, "pvv");
  if (pvv !== undefined && !/^[0-9]{4}$/.test(pvv)) reject("pin.pvv: must be 4 digits");
  if (pin.pinBlock === undefined) {
    if (pvki === undefined || pvv === undefined) reject("pin: a PVV needs both pvki and pvv");
    return { kind: "pvv", pvki: pvki!, pvv: pvv! };
  }
  const pinBlock = optionalString(pin, "pinBlock");
  if (pinBlock === undefined || !/^[0-9A-Fa-f]{16}([0-9A-Fa-f]{16})?$/.test(pinBlock)) {
    reject("pin.pinBlock: must be 16 (formats 0, 1, 3) or 32 (format 4) hex digits");
  }
  const format = optionalInteger(pin, "format", 0, 4);
  if (format === undefined || format === 2) reject("pin.format: must be 0, 1, 3 or 4");
  const zpkId = optionalString(pin, "zpkId");
  if (zpkId === undefined || !KEY_ID.test(zpkId))
    reject("pin.zpkId: must name the zone PIN key of the block");
  if ((pvki === undefined) !== (pvv === undefined)) reject("pin: give both pvki and pvv, or neither");
  return {
    kind: "block",
    pinBlock: pinBlock!,
    format: format as 0 | 1 | 3 | 4,
    zpkId: zpkId!,
    ...(pvki === undefined ? {} : { pvki, pvv }),
  };
}

/** Checks one parsed line; throws LineRejected with the first thing wrong with it. */
export function checkImportLine(record: unknown, rules: LineRules): ImportLine {
  if (typeof record !== "object" || record === null || Array.isArray(record)) {
    return reject("line: must be a JSON object");
  }
  const r = record as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) reject(`unknown field(s): ${unknown.join(", ")}`);

  const pan = optionalString(r, "pan");
  if (pan === undefined || !/^[0-9]{12,19}$/.test(pan)) reject("pan: must be 12 to 19 digits");
  if (rules.luhn && !isLuhnValid(pan!)) reject("pan: fails the Luhn check");

  const expiry = optionalString(r, "expiry");
  if (expiry === undefined) reject("expiry: is required (YYMM)");
  try {
    parseExpiry(expiry!, rules.now);
  } catch (error) {
    if (error instanceof AppError) reject(`expiry: ${error.message.replace(/^expiry /, "")}`);
    throw error;
  }

  const serviceCode = optionalString(r, "serviceCode");
  if (serviceCode !== undefined && !/^[0-9]{3}$/.test(serviceCode)) reject("serviceCode: must be 3 digits");

  const type = optionalString(r, "type");
  if (!cardTypes.includes(type as CardType)) reject("type: must be virtual or physical");

  const statusName = optionalString(r, "status")?.toLowerCase();
  const status = statusName === undefined ? "active" : STATUS_NAMES[statusName];
  if (status === undefined) {
    reject(`status: must be one of ${cardStatuses.join(", ")} (or a vendor name for one of them)`);
  }

  const cardholderName = optionalString(r, "cardholderName");
  if (cardholderName !== undefined) {
    try {
      assertCardholderName(cardholderName);
    } catch {
      reject("cardholderName: must be 1–100 letters, digits, spaces or . , ' - / &");
    }
  }
  const customerReference = optionalString(r, "customerReference");
  if (customerReference !== undefined && customerReference.length > 100) {
    reject("customerReference: at most 100 characters");
  }

  const token = optionalString(r, "publicToken");
  if (token !== undefined && !publicToken.test(token)) reject("publicToken: must be 9 digits");

  let pismoId: number | undefined;
  if (r.aliases !== undefined && r.aliases !== null) {
    if (typeof r.aliases !== "object" || Array.isArray(r.aliases)) reject("aliases: must be an object");
    const aliases = r.aliases as Record<string, unknown>;
    const other = Object.keys(aliases).filter((k) => k !== "pismo");
    if (other.length > 0) reject(`aliases: unknown vendor(s) ${other.join(", ")}; known: pismo`);
    pismoId = optionalInteger(aliases, "pismo", 1, Number.MAX_SAFE_INTEGER);
  }

  const cvkId = optionalString(r, "cvkId");
  if (cvkId !== undefined && !KEY_ID.test(cvkId)) reject("cvkId: is not a key id");
  const pvkId = optionalString(r, "pvkId");
  if (pvkId !== undefined && !KEY_ID.test(pvkId)) reject("pvkId: is not a key id");

  const interval = optionalInteger(r, "cvvRotationIntervalHours", 1, 8784);
  if (interval !== undefined && (type !== "virtual" || !isValidInterval(interval))) {
    reject("cvvRotationIntervalHours: only virtual cards have a dynamic CVV");
  }

  return {
    pan: pan!,
    expiry: expiry!,
    type: type as CardType,
    status: status!,
    ...(serviceCode === undefined ? {} : { serviceCode }),
    ...(cardholderName === undefined ? {} : { cardholderName }),
    ...(customerReference === undefined ? {} : { customerReference }),
    ...(token === undefined ? {} : { publicToken: token }),
    ...(pismoId === undefined ? {} : { pismoId }),
    ...(cvkId === undefined ? {} : { cvkId }),
    ...(pvkId === undefined ? {} : { pvkId }),
    ...withPin(pinOf(r.pin)),
    ...withCount("cvvTriesRemaining", optionalInteger(r, "cvvTriesRemaining", 0, 99)),
    ...withCount("pinTriesRemaining", optionalInteger(r, "pinTriesRemaining", 0, 99)),
    ...(interval === undefined ? {} : { cvvRotationIntervalHours: interval }),
  };
}

const withPin = (pin: ImportPin | undefined) => (pin === undefined ? {} : { pin });
const withCount = (field: string, n: number | undefined) => (n === undefined ? {} : { [field]: n });

/** One NDJSON line: JSON, then checkImportLine. */
export function parseNdjsonLine(text: string, rules: LineRules): ImportLine {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    return reject("line: is not valid JSON");
  }
  return checkImportLine(record, rules);
}

/**
 * The CSV form's columns (RFC 4180, a header line naming them, in any order; empty = absent): the NDJSON fields,
 * with the PIN's and the alias's parts as columns of their own.
 */
export const CSV_COLUMNS = [
  "pan",
  "expiry",
  "serviceCode",
  "type",
  "status",
  "cardholderName",
  "customerReference",
  "publicToken",
  "pismoId",
  "cvkId",
  "pvkId",
  "pvki",
  "pvv",
  "pinBlock",
  "pinBlockFormat",
  "zpkId",
  "cvvTriesRemaining",
  "pinTriesRemaining",
  "cvvRotationIntervalHours",
] as const;

/** Splits one CSV record (RFC 4180 quoting; a record is one line: quoted line breaks are not supported). */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  let start = true;
  while (i < line.length) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && start) {
      quoted = true;
    } else if (c === ",") {
      fields.push(field);
      field = "";
      start = true;
      i++;
      continue;
    } else {
      field += c;
    }
    start = false;
    i++;
  }
  if (quoted) reject("line: a quoted CSV field is not closed");
  fields.push(field);
  return fields;
}

/** The header line's columns, checked: every name known, none twice, pan present. */
export function parseCsvHeader(line: string): string[] {
  const names = splitCsvLine(line.replace(/^\uFEFF/, "")).map((n) => n.trim());
  const unknown = names.filter((n) => !(CSV_COLUMNS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new AppError("validation_failed", `The CSV header names unknown columns: ${unknown.join(", ")}.`);
  }
  if (new Set(names).size !== names.length) {
    throw new AppError("validation_failed", "The CSV header names a column twice.");
  }
  if (!names.includes("pan")) throw new AppError("validation_failed", "The CSV header has no pan column.");
  return names;
}

/** One CSV record under its header, into the NDJSON form, then checkImportLine. */
export function parseCsvLine(header: readonly string[], line: string, rules: LineRules): ImportLine {
  const values = splitCsvLine(line);
  if (values.length !== header.length) {
    reject(`line: has ${values.length} fields, the header ${header.length}`);
  }
  const cell: Record<string, string> = {};
  header.forEach((name, i) => {
    if (values[i] !== "") cell[name] = values[i]!;
  });
  const { pismoId, pvki, pvv, pinBlock, pinBlockFormat, zpkId, ...rest } = cell;
  const pin =
    pinBlock !== undefined
      ? { pinBlock, format: pinBlockFormat, zpkId, pvki, pvv }
      : pvki !== undefined || pvv !== undefined
        ? { pvki, pvv }
        : undefined;
  return checkImportLine(
    {
      ...rest,
      ...(pismoId === undefined ? {} : { aliases: { pismo: pismoId } }),
      ...(pin === undefined ? {} : { pin }),
    },
    rules,
  );
}
