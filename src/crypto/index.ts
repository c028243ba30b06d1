// Public API of src/crypto: pure payment-card cryptography (no I/O), used by keys/ and the crypto CLI.
// Invariant: every export validates its input and throws CryptoInputError (never echoing secrets);
// all ciphers come from node:crypto.

export type { BlockCipher } from "./block-cipher.js";
export { createAesCipher } from "./block-cipher.js";
export type { ComputeCvvInput, CvvInput } from "./cvv.js";
export {
  CVV2_SERVICE_CODE,
  computeCvv,
  computeCvvBatch,
  createCvvGenerator,
  ICVV_SERVICE_CODE,
  visaDecimalize,
} from "./cvv.js";
export type { DcvvInput, IccMasterKeyInput, MasterKeyDerivation } from "./dcvv.js";
export { computeDcvv, deriveIccMasterKey, iccDerivationData } from "./dcvv.js";
export {
  adjustDesParity,
  createDesCipher,
  createTdesCipher,
  desDecrypt,
  desEncrypt,
  tdesDecrypt,
  tdesEncrypt,
  tripleLengthKey,
} from "./des.js";
export { CryptoInputError } from "./errors.js";
export type { KeyLengths, ParseKeyOptions } from "./hex.js";
export { assertDigits, assertKeyLength, isHex, parseHex, parseKey, toHex, xorBytes } from "./hex.js";
export type { Ibm3624Params } from "./ibm3624.js";
export { ibm3624NaturalPin, ibm3624Offset, ibm3624PinFromOffset } from "./ibm3624.js";
export type { KcvAlgorithm } from "./kcv.js";
export { aesCmac, keyCheckValue, tdesCmac } from "./kcv.js";
export { isLuhnValid, luhnCheckDigit } from "./luhn.js";
export { generatePan, last4, maskPan } from "./pan.js";
export type {
  DecipherPinBlockInput,
  DecodePinBlockInput,
  EncipherPinBlockInput,
  EncodePinBlockInput,
  PinBlockCipher,
  PinBlockFormat,
  PinKeyAlgorithm,
  RandomSource,
} from "./pin-block.js";
export {
  createPinBlockCipher,
  decipherPinBlock,
  decodePinBlock,
  encipherPinBlock,
  encodePinBlock,
  iso0PanField,
  iso4PanField,
} from "./pin-block.js";
export type { ComputePvvInput, PvvInput } from "./pvv.js";
export { computePvv, createPvvGenerator, pvvTsp } from "./pvv.js";
export type {
  KeyBlockHeader,
  KeyBlockOptionalBlock,
  KeyBlockProtectionKey,
  KeyBlockVersion,
} from "./tr31.js";
export { parseKeyBlockHeader, unwrapKeyBlock, wrapKeyBlock } from "./tr31.js";
