// What both key providers check of a Get Card Data request before any private-key work: a device's ephemeral
// key must be a public P-256 point (checked by importing it), and a session key that does not unwrap is refused
// with one answer whatever the cause, so a client learns nothing about why (no padding oracle).
import { calculateJwkThumbprint, importJWK, type JWK } from "jose";
import { AppError } from "../domain/errors.js";

/** Anything but a ciphertext that opens into a 32-byte key under a current wrap key is refused alike. */
export const sessionKeyInvalid = () =>
  new AppError(
    "session_key_invalid",
    "The key does not unwrap into a 256-bit AES key: wrap a fresh 32-byte key with RSA-OAEP (SHA-256) under the published wrap key.",
    {
      fields: {
        key: ["does not unwrap under the published wrap key (RSA-OAEP-SHA256, 4096 bits) into 32 bytes"],
      },
    },
  );

/** A device's ephemeral key: a public P-256 point (checked on import), and its RFC 7638 thumbprint. */
export async function deviceKeyOf(
  deviceKey: Record<string, unknown>,
): Promise<{ jwk: JWK; replayId: string }> {
  const given = deviceKey as JWK;
  try {
    if (given.kty !== "EC" || given.crv !== "P-256" || "d" in given)
      throw new Error("not a P-256 public key");
    const jwk: JWK = { kty: "EC", crv: "P-256", x: given.x, y: given.y };
    await importJWK(jwk, "ECDH-ES");
    return { jwk, replayId: await calculateJwkThumbprint(jwk, "sha256") };
  } catch {
    throw new AppError(
      "device_key_invalid",
      "deviceKey is not a public P-256 key (JWK with kty EC, crv P-256, x, y).",
      {
        fields: { deviceKey: ["must be a public EC P-256 JWK with a point on the curve"] },
      },
    );
  }
}
