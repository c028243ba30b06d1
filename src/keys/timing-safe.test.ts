// Secret comparisons are constant-time: every CVV, PIN, PIN-block and webhook-signature check goes through
// crypto.timingSafeEqual, a PIN check compares both the PVV and the full PIN (no early exit on the first),
// and a mismatch takes the same path as a match.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { verifyWebhook } from "../client/verify-webhook.js";
import { encipherPinBlock } from "../crypto/pin-block.js";
import { fixedClock } from "../lib/clock.js";
import type { KeyProvider, SealedCard } from "./key-provider.js";
import { initKeystore, loadKeystore } from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const spy = vi.hoisted(() => ({ calls: 0 }));
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return {
    ...actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      spy.calls++;
      return actual.timingSafeEqual(a, b);
    },
  };
});

const PAN = "4000001234567899";
let keys: KeyProvider;
let pekAes: Buffer;
let pekTdes: Buffer;
let card: SealedCard;
const counted = async <T>(fn: () => Promise<T>) => {
  const before = spy.calls;
  const result = await fn();
  return { result, calls: spy.calls - before };
};

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-ts-")), "keystore.json");
  const master = Buffer.alloc(32, 3);
  initKeystore(file, master, fixedClock("2026-01-01T00:00:00Z"), { generateRsaKey: testRsaKeyGenerator });
  const clear = loadKeystore(file, master);
  keys = createLocalKeyProvider(clear);
  pekAes = clear.find((k) => k.type === "pek-aes")!.material;
  pekTdes = clear.find((k) => k.type === "pek-tdes")!.material;
  const binding = { tenantId: "acme", cardId: "card-1" };
  card = {
    ...binding,
    panSealed: await keys.sealPan(PAN, binding),
    expiry: "2912",
    cvkId: keys.activeKeyId("cvk"),
    serviceCode: "101",
  };
});

describe("constant-time comparisons", () => {
  it("CVV: one timingSafeEqual per check, match or mismatch", async () => {
    const cvv = await keys.deriveCvv(card);
    const wrong = String((Number(cvv) + 1) % 1000).padStart(3, "0");
    expect(await counted(() => keys.verifyCvv(card, cvv))).toEqual({ result: true, calls: 1 });
    expect(await counted(() => keys.verifyCvv(card, wrong))).toEqual({ result: false, calls: 1 });
  });

  it("PIN and PIN block: the PVV and the full PIN are both compared, whichever fails", async () => {
    const pinCard = { ...card, pin: await keys.sealPin(card, "482916") };
    expect(await counted(() => keys.verifyPin(pinCard, "482916"))).toEqual({ result: true, calls: 2 });
    expect(await counted(() => keys.verifyPin(pinCard, "000000"))).toEqual({ result: false, calls: 2 });
    // Same first four digits (same PVV) but a different PIN: still both comparisons, still a mismatch.
    expect(await counted(() => keys.verifyPin(pinCard, "482917"))).toEqual({ result: false, calls: 2 });
    for (const [format, key] of [
      [4, pekAes],
      [0, pekTdes],
      [3, pekTdes],
    ] as const) {
      const block = (pin: string) => encipherPinBlock({ format, pin, pan: PAN, key }).toString("hex");
      const attempt = (pin: string) =>
        counted(() => keys.verifyPinBlock(pinCard, { format, pinBlock: block(pin) }));
      expect(await attempt("482916")).toEqual({ result: true, calls: 2 });
      expect(await attempt("482917")).toEqual({ result: false, calls: 2 });
      expect(await attempt("999999")).toEqual({ result: false, calls: 2 });
    }
  });

  it("opening a stored PIN checks it against its PVV in constant time", async () => {
    const pinCard = { ...card, pin: await keys.sealPin(card, "482916") };
    expect(await counted(() => keys.openPin(pinCard))).toEqual({ result: "482916", calls: 1 });
  });

  it("webhook signatures are compared in constant time", () => {
    const before = spy.calls;
    const secret = `whsec_${Buffer.alloc(24, 1).toString("base64")}`;
    expect(() =>
      verifyWebhook(
        "{}",
        {
          "webhook-id": "msg_1",
          "webhook-timestamp": "1767225600",
          "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")}`,
        },
        secret,
        { now: () => new Date("2026-01-01T00:00:00Z") },
      ),
    ).toThrow();
    expect(spy.calls).toBeGreaterThan(before);
  });
});
