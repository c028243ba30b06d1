// The one error type src/crypto throws for bad caller input (wrong key length, non-hex, malformed PIN block…).
// Invariant: messages name the field and the rule that was broken, never the offending value, so a
// CryptoInputError can be logged or shown to a user without leaking a key, PAN, PIN or PIN block.

export class CryptoInputError extends Error {
  override readonly name = "CryptoInputError";
}
