import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decipherPinBlock, encipherPinBlock } from "../src/crypto/pin-block.js";
import { computePvv } from "../src/crypto/pvv.js";
import { auditActions, cardRow, keyMaterial, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ allowPinBlockFormat1: ["acme"] });
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

  it("refuses a key id of the wrong kind, a block of the wrong size, or a clear PIN mixed in, without counting a try", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    const wrongKind = await h.call("POST", pinUrl(t, "/verify"), {
      pinBlock: "0".repeat(16),
      format: 0,
      keyId: "cvk-v1",
    });
    expect(wrongKind.statusCode).toBe(400);
    expect(wrongKind.json().errors).toHaveProperty("keyId");
    const wrongSize = await h.call("POST", pinUrl(t, "/verify"), { pinBlock: "0".repeat(16), format: 4 });
    expect(wrongSize.statusCode).toBe(400);
    expect(wrongSize.json().errors).toHaveProperty("pinBlock");
    const mixed = await h.call("POST", pinUrl(t, "/verify"), { pin: "1234", format: 0 });
    expect(mixed.statusCode).toBe(400);
    expect((await h.call("GET", pinUrl(t, "/status"))).json()).toMatchObject({ remainingTries: 3 });
    expect((await auditActions(h, t)).filter((a) => a.startsWith("pin.verify"))).toEqual([]);
  });

  // Hardening II: a block that did not decode answered 400 with no try and no audit row, a free oracle on
  // the PIN block's structure (and so on the PAN or the key). It is now a wrong try like any other.
  it("counts a PIN block that does not decode as a wrong try, audited, answering exactly like a wrong PIN", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    await h.call("PUT", pinUrl(t), { pin: "730142" });
    const pan = await panOf(h, t);
    const tdes = keyMaterial(h, "pek-tdes", true);
    const aes = keyMaterial(h, "pek-aes", true);
    const format1Block = encipherPinBlock({ format: 1, pin: "730142", key: tdes }).toString("hex");
    const undecodable = [
      { pinBlock: "FFFFFFFFFFFFFFFF", format: 0 },
      { pinBlock: format1Block, format: 0 }, // a format-1 block read as format 0
      { pinBlock: "F".repeat(32), format: 4, keyId: "pek-aes-v1" },
    ];
    const answers = [];
    for (const body of undecodable) {
      const response = await h.call("POST", pinUrl(t, "/verify"), body);
      expect(response.statusCode, JSON.stringify(body.format)).toBe(200);
      answers.push(response.json());
    }
    expect(answers).toEqual([
      { result: "mismatch", status: "Unblocked", remainingTries: 2 },
      { result: "mismatch", status: "Unblocked", remainingTries: 1 },
      { result: "mismatch", status: "Blocked", remainingTries: 0 },
    ]);
    const rows = await h.runtime.store.db
      .selectFrom("audit_events")
      .select(["action", "outcome", "details"])
      .where("public_token", "=", t)
      .where("action", "=", "pin.verify")
      .orderBy("id")
      .execute();
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => r.outcome)).toEqual(["mismatch", "mismatch", "mismatch"]);
    const details = rows.map((r) => JSON.parse(String(r.details)) as Record<string, unknown>);
    expect(details.map((d) => d.method)).toEqual([
      "pin_block_format_0",
      "pin_block_format_0",
      "pin_block_format_4",
    ]);
    for (const d of details) expect(d.pinBlock).toBe("did_not_decode");
    const text = JSON.stringify(rows).toUpperCase();
    for (const { pinBlock } of undecodable) expect(text).not.toContain(pinBlock.toUpperCase());
    expect(text).not.toContain("730142");
    // A wrong PIN and an undecodable block are one answer: blocked now, with the right block too.
    const good = encipherPinBlock({ format: 4, pin: "730142", pan, key: aes }).toString("hex");
    expect((await h.call("POST", pinUrl(t, "/verify"), { pinBlock: good, format: 4 })).json()).toMatchObject({
      result: "blocked",
    });
  });

  it("refuses format 1 (not PAN-bound) with a 400 naming the field, using no try, unless the tenant allows it", async () => {
    const globex = await h.token(undefined, "globex");
    const card = await h.createCard(undefined, globex);
    const t = card.publicToken;
    const pinBlock = encipherPinBlock({
      format: 1,
      pin: "1234",
      key: keyMaterial(h, "pek-tdes", true),
    }).toString("hex");
    const refused = await h.call("POST", pinUrl(t, "/verify"), { pinBlock, format: 1 }, { token: globex });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({
      code: "validation_failed",
      errors: { format: expect.any(Array) },
    });
    expect((await h.call("GET", pinUrl(t, "/status"), undefined, { token: globex })).json()).toMatchObject({
      remainingTries: 3,
    });
    expect((await auditActions(h, t)).filter((a) => a.startsWith("pin.verify"))).toEqual([]);
  });
});
