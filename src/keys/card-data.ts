// The Get Card Data payload: the card's clear data as the device decrypts it, in the field names of Thredd's
// Get Card Data answer (PAN, CVV, expiryDate, PIN; docs/secure-data.md). It exists only inside a key provider,
// between opening the card and encrypting to the device, and carries exactly the fields asked for.
import { expiryToDate } from "../domain/card.js";
import type { CardDataField } from "./key-provider.js";

export interface CardDataValues {
  pan: () => string;
  cvv: () => string;
  expiry: string;
  pin: () => string;
}

/** JSON in a buffer the caller wipes after encrypting it; a secret is computed only when its field is asked. */
export function cardDataPayload(fields: readonly CardDataField[], values: CardDataValues): Buffer {
  const data: Record<string, string> = {};
  if (fields.includes("pan")) data.PAN = values.pan();
  if (fields.includes("cvv")) data.CVV = values.cvv();
  if (fields.includes("expiry")) data.expiryDate = expiryToDate(values.expiry);
  if (fields.includes("pin")) data.PIN = values.pin();
  return Buffer.from(JSON.stringify(data), "utf8");
}
