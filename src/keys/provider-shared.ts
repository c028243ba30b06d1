// What every key provider does the same way around its own primitives: which key a PIN block from outside is
// enciphered under, how a batch of CVVs is grouped by CVK with each PAN opened once, what reseal moves, what a
// sealed PAN or webhook secret is bound to, how a PIN block's shape and an operator check's input are refused,
// and how two secrets are compared. The providers differ only in where the key lives and how a block is
// enciphered (node:crypto over keystore material, or C_Encrypt in a PKCS#11 token); these rules are written once
// so both answer alike, refusals included.
import { timingSafeEqual } from "node:crypto";
import { CryptoInputError } from "../crypto/errors.js";
import { AppError } from "../domain/errors.js";
import type { KeyInfo, PinBlockAttempt, SealedCard, SealedPinCard } from "./key-provider.js";
import { PVV_ONLY_PIN, pinBlockKeyFits, pinBlockKeyTypes } from "./key-provider.js";

/**
 * The key a PIN block from outside is enciphered under: the one `named` (it must fit the format:
 * pinBlockKeyFits), else the active key of the format's first type. `lookup` finds a key by id (refreshing the
 * provider's view for an id it does not know); `where` names the provider's store in the refusal.
 */
export function choosePinBlockKey<K extends Pick<KeyInfo, "type" | "algorithm">>(
  format: PinBlockAttempt["format"],
  named: { id: string; field: string } | undefined,
  provider: { activeKey(type: KeyInfo["type"]): K; lookup(id: string): K | undefined; where: string },
): K {
  const allowed = pinBlockKeyTypes[format];
  if (named === undefined) return provider.activeKey(allowed[0]!);
  const k = provider.lookup(named.id);
  if (!k || !pinBlockKeyFits(format, k)) {
    const types = `${allowed.join(" or ")} key or a ${format === 4 ? "AES" : "TDES"} zpk`;
    throw new AppError(
      "validation_failed",
      `${named.field} does not name a ${types} in the ${provider.where}.`,
      {
        fields: { [named.field]: [`must name a ${types} for format ${format}`] },
      },
    );
  }
  return k;
}

/**
 * CVVs of many cards in input order (the rotation scheduler's path): grouped by CVK so that `derive` runs once
 * per key over the group's inputs, and each card's PAN opened once (a card may come several times: a rotation
 * compares its recent service codes).
 */
export function deriveCvvsByKey(
  cards: readonly SealedCard[],
  panOf: (card: SealedCard) => string,
  derive: (cvkId: string, inputs: { pan: string; expiry: string; serviceCode: string }[]) => string[],
): string[] {
  const pans = new Map<string, string>();
  const panOnce = (card: SealedCard) => {
    const id = `${card.tenantId}:${card.cardId}:${card.panSealed}`;
    let pan = pans.get(id);
    if (pan === undefined) {
      pan = panOf(card);
      pans.set(id, pan);
    }
    return pan;
  };
  const byKey = new Map<string, number[]>();
  cards.forEach((card, i) => {
    const group = byKey.get(card.cvkId);
    if (group) group.push(i);
    else byKey.set(card.cvkId, [i]);
  });
  const results: string[] = new Array(cards.length);
  for (const [cvkId, indexes] of byKey) {
    const cvvs = derive(
      cvkId,
      indexes.map((i) => ({
        pan: panOnce(cards[i]!),
        expiry: cards[i]!.expiry,
        serviceCode: cards[i]!.serviceCode,
      })),
    );
    indexes.forEach((inputIndex, j) => {
      results[inputIndex] = cvvs[j]!;
    });
  }
  return results;
}

/**
 * reseal's rule (key rotation): the PAN and the PIN block sealed again under the active pan-data and pin-storage
 * keys, each left as it is when already under it (a PVV-only PIN has no block), the PAN opened only when one of
 * them moves. `envelope` is the provider's envelope version; the callbacks seal and open with its primitives.
 */
export function resealUnder(
  card: SealedPinCard,
  active: { envelope: string; panKeyId: string; pinKeyId: string },
  ops: {
    panOf: (card: SealedPinCard) => string;
    sealPan: (pan: string) => string;
    /** The PIN block opened (and checked against its PVV) and sealed as an envelope under pin-storage. */
    resealPin: (pan: string) => string;
  },
): { panSealed: string; pinSealed: string } {
  const panCurrent = card.panSealed.startsWith(`${active.envelope}:${active.panKeyId}:`);
  const pinCurrent =
    card.pin.pinSealed === PVV_ONLY_PIN ||
    card.pin.pinSealed.startsWith(`${active.envelope}:${active.pinKeyId}:`);
  if (panCurrent && pinCurrent) return { panSealed: card.panSealed, pinSealed: card.pin.pinSealed };
  const pan = ops.panOf(card);
  return {
    panSealed: panCurrent ? card.panSealed : ops.sealPan(pan),
    pinSealed: pinCurrent ? card.pin.pinSealed : ops.resealPin(pan),
  };
}

/** Bad test input to an operator check (a PAN of the wrong length…) is a validation_failed, never a 500. */
export function operatorCheck(compute: () => string): string {
  try {
    return compute();
  } catch (error) {
    if (!(error instanceof CryptoInputError)) throw error;
    throw new AppError("validation_failed", error.message);
  }
}

/** The block's shape (hex, the format's size) says nothing about key, PAN or PIN: a plain 400. */
export function assertPinBlockShape(format: PinBlockAttempt["format"], pinBlock: string): void {
  const bytes = format === 4 ? 16 : 8;
  if (!new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`).test(pinBlock)) {
    throw new AppError("validation_failed", `A format ${format} PIN block is ${bytes} bytes of hex.`, {
      fields: { pinBlock: [`must be ${bytes * 2} hex digits for format ${format}`] },
    });
  }
}

/** What a sealed PAN is bound to (the AAD of its envelope): its tenant and card. */
export function panAad(binding: { tenantId: string; cardId: string }): Buffer {
  return Buffer.from(`cardvault:pan:${binding.tenantId}:${binding.cardId}`);
}

/** What a sealed webhook secret is bound to: its tenant and endpoint. */
export function webhookSecretAad(binding: { tenantId: string; endpointId: string }): Buffer {
  return Buffer.from(`cardvault:webhook-secret:${binding.tenantId}:${binding.endpointId}`);
}

/** Constant-time for equal lengths; lengths are not secret (a CVV is 3 digits, a PIN's length is public). */
export function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A provider's keys by id, its view refreshed once for an id it does not know (`keys rotate` in another process
 * adds keys): `lookup` answers undefined for a missing key, `key` refuses it, or one of another type, with
 * key_unavailable naming the provider's store (`where`). `current` is the provider's view as it is now.
 */
export function keysById<K extends KeyInfo>(
  current: () => ReadonlyMap<string, K>,
  refresh: (now: boolean) => void,
  where: string,
) {
  const lookup = (id: string): K | undefined => {
    if (!current().has(id)) refresh(true);
    return current().get(id);
  };
  const key = (id: string, type: KeyInfo["type"]): K => {
    const k = lookup(id);
    if (!k || k.type !== type)
      throw new AppError("key_unavailable", `Key ${id} (${type}) is not in the ${where}.`);
    return k;
  };
  return { lookup, key, where };
}
