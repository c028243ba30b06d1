import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decipherPinBlock, encipherPinBlock } from "../src/crypto/pin-block.js";
import { computePvv } from "../src/crypto/pvv.js";
import { auditActions, cardRow, keyMaterial, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const pinUrl = (t: string, suffix = "") => `/v1/cards/${t}/pin${suffix}`;

describe("PIN", () => {
  it("allocates a random 4-digit PIN at creation, stored as a sealed format-4 block plus its PVV", async () => {
    const card = await h.createCard();
    const response = await h.call("GET", pinUrl(card.publicToken));
    expect(response.statusCode).toBe(200);
    const { pin } = response.json() as { pin: string };
    expect(pin).toMatch(/^[0-9]{4}$/);

    const row = await cardRow(h, card.publicToken);
    // Enciphered: the block opens, under the pin-storage key its envelope names, to this PIN, and it is not
    // the clear PIN field (control nibble 4, length 4, the digits). A search for the 4 digits in the hex
    // would fail by chance about once in 2,000 cards.
    const [, storageKeyId, block] = row.pin_sealed.split(":");
    const pan = await panOf(h, card.publicToken);
    expect(decipherPinBlock({ format: 4, key: keyMaterial(h, storageKeyId!), block: block!, pan })).toBe(pin);
    expect(block!.slice(0, 6)).not.toBe(`44${pin}`);
    expect(row.pvv).toBe(
      computePvv({
        pvk: keyMaterial(h, row.pvk_id),
        pvki: row.pvki,
        pan,
        pin,
      }),
    );
    expect(await auditActions(h, card.publicToken)).toContain("pin.read:success");
  });

  it("sets PINs of 4 to 12 digits and reads back exactly what was set", async () => {
    const card = await h.createCard();
    for (const pin of ["0000", "1234", "98765", "123456789012"]) {
      expect((await h.call("PUT", pinUrl(card.publicToken), { pin })).statusCode).toBe(204);
      expect((await h.call("GET", pinUrl(card.publicToken))).json()).toEqual({ pin });
    }
  });

  it("rejects PINs that are not 4–12 digits", async () => {
    const card = await h.createCard();
    for (const pin of ["123", "1234567890123", "12a4", 1234, ""]) {
      const response = await h.call("PUT", pinUrl(card.publicToken), { pin });
      expect(response.statusCode, String(pin)).toBe(400);
      expect(response.json().errors).toHaveProperty("pin");
    }
  });

  it("verifies a clear PIN against the PVV and the whole stored PIN, counting wrong tries", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    await h.call("PUT", pinUrl(t), { pin: "482913" });
    const verify = async (body: unknown) => (await h.call("POST", pinUrl(t, "/verify"), body)).json();

    // Same first four digits, so the same PVV: the full comparison must still refuse them.
    expect(await verify({ pin: "482900" })).toEqual({
      result: "mismatch",
      status: "Unblocked",
      remainingTries: 2,
    });
    expect(await verify({ pin: "4829" })).toEqual({
      result: "mismatch",
      status: "Unblocked",
      remainingTries: 1,
    });
    expect(await verify({ pin: "482913" })).toEqual({
      result: "match",
      status: "Unblocked",
      remainingTries: 3,
    });
    for (let i = 0; i < 3; i++) await verify({ pin: "111111" });
    expect(await verify({ pin: "482913" })).toEqual({
      result: "blocked",
      status: "Blocked",
      remainingTries: 0,
    });
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toEqual({
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });

    expect((await h.call("POST", pinUrl(t, "/unblock"), {})).statusCode).toBe(204);
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toEqual({
      status: "Unblocked",
      remainingTries: 3,
      maxTries: 3,
    });
    expect(await verify({ pin: "482913" })).toMatchObject({ result: "match" });
  });

  it("unblock resets the counter at any time, and a new PIN starts with a full counter", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    await h.call("PUT", pinUrl(t), { pin: "2468" });
    await h.call("POST", pinUrl(t, "/verify"), { pin: "1111" });
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toMatchObject({ remainingTries: 2 });
    await h.call("POST", pinUrl(t, "/unblock"));
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toMatchObject({ remainingTries: 3 });
    await h.call("POST", pinUrl(t, "/verify"), { pin: "1111" });
    await h.call("PUT", pinUrl(t), { pin: "1357" });
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toMatchObject({ remainingTries: 3 });
  });

  it("verifies enciphered PIN blocks: format 0 and 3 under the 3DES PEK, format 4 under the AES PEK", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    await h.call("PUT", pinUrl(t), { pin: "730142" });
    const pan = await panOf(h, t);
    const tdes = keyMaterial(h, "pek-tdes", true);
    const aes = keyMaterial(h, "pek-aes", true);
    const cases = [
      { format: 0 as const, key: tdes },
      { format: 1 as const, key: tdes },
      { format: 3 as const, key: tdes },
      { format: 4 as const, key: aes },
    ];
    for (const { format, key } of cases) {
      const good = encipherPinBlock({ format, pin: "730142", pan, key }).toString("hex");
      const bad = encipherPinBlock({ format, pin: "730143", pan, key }).toString("hex");
      const ok = await h.call("POST", pinUrl(t, "/verify"), { pinBlock: good, format });
      expect(ok.json(), `format ${format}`).toMatchObject({ result: "match", remainingTries: 3 });
      const wrong = await h.call("POST", pinUrl(t, "/verify"), {
        pinBlock: bad,
        format,
        keyId: format === 4 ? "pek-aes-v1" : "pek-tdes-v1",
      });
      expect(wrong.json(), `format ${format}`).toMatchObject({ result: "mismatch", remainingTries: 2 });
      await h.call("POST", pinUrl(t, "/unblock"));
    }
  });

  it("refuses a PIN block that does not decode, or a key id of the wrong kind, without counting a try", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    const garbage = await h.call("POST", pinUrl(t, "/verify"), { pinBlock: "FFFFFFFFFFFFFFFF", format: 0 });
    expect(garbage.statusCode).toBe(400);
    expect(garbage.json()).toMatchObject({
      code: "validation_failed",
      errors: { pinBlock: expect.any(Array) },
    });
    const wrongKind = await h.call("POST", pinUrl(t, "/verify"), {
      pinBlock: "0".repeat(16),
      format: 0,
      keyId: "cvk-v1",
    });
    expect(wrongKind.statusCode).toBe(400);
    expect(wrongKind.json().errors).toHaveProperty("keyId");
    const mixed = await h.call("POST", pinUrl(t, "/verify"), { pin: "1234", format: 0 });
    expect(mixed.statusCode).toBe(400);
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toMatchObject({ remainingTries: 3 });
  });
});
