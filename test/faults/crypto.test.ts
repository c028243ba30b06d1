// Damaged key material or ciphertext: a clear error that names the key id, never a wrong PAN, CVV or PIN.
// Covers a flipped byte in a sealed PAN and PIN block, ciphertexts swapped between cards (the AAD binds them
// to their row), a damaged keystore entry, and a wrong master key at start-up.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { KeystoreError, loadKeystore, rotateKeys } from "../../src/keys/keystore-file.js";
import { systemClock } from "../../src/lib/clock.js";
import { openRuntime } from "../../src/runtime.js";
import { cardRow } from "../helpers/card-secrets.js";
import { createHarness, type Harness, TEST_MASTER_KEY } from "../helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h?.close());

/** Flips one character in the middle of the last field of an envelope "v1:<key id>:…". */
function damage(envelope: string): string {
  const i = envelope.length - 10;
  const c = envelope[i] === "A" ? "B" : "A";
  return envelope.slice(0, i) + c + envelope.slice(i + 1);
}

async function setColumns(publicToken: string, changes: { pan_sealed?: string; pin_sealed?: string }) {
  await h.runtime.store.db
    .updateTable("cards")
    .set(changes)
    .where("public_token", "=", publicToken)
    .execute();
}

describe("damaged ciphertexts", () => {
  it("a flipped byte in a sealed PAN: 500 problem naming pan-data-v1 on every read; no CVV, no PAN", async () => {
    const { publicToken } = await h.createCard();
    await h.call("PUT", `/v1/cards/${publicToken}/pin`, { pin: "2468" });
    const row = await cardRow(h, publicToken);
    await setColumns(publicToken, { pan_sealed: damage(row.pan_sealed) });
    for (const [method, path, body] of [
      ["GET", "cvv", undefined],
      ["POST", "cvv/verify", { cvv: "123" }],
      ["GET", "pin", undefined],
      ["POST", "pin/verify", { pin: "2468" }],
    ] as const) {
      const r = await h.call(method, `/v1/cards/${publicToken}/${path}`, body);
      expect(r.statusCode, path).toBe(500);
      expect(r.json()).toMatchObject({ code: "key_unavailable" });
      expect(r.json().detail).toContain("pan-data-v1");
      expect(r.body).not.toMatch(/"(cvv|pin|pan)"/);
    }
    // A refused verification moved no counter.
    expect((await cardRow(h, publicToken)).cvv_tries_remaining).toBe(3);
  });

  it("a flipped byte in a sealed PIN block: an error naming pin-storage-v1, never another PIN", async () => {
    const { publicToken } = await h.createCard();
    await h.call("PUT", `/v1/cards/${publicToken}/pin`, { pin: "135790" });
    const row = await cardRow(h, publicToken);
    // Every position of the block: each damaged block is refused, none decodes to a PIN that is returned.
    const [v, kid, block] = row.pin_sealed.split(":");
    let refused = 0;
    for (let i = 0; i < block!.length; i += 3) {
      const flipped = block!.slice(0, i) + (block![i] === "0" ? "1" : "0") + block!.slice(i + 1);
      await setColumns(publicToken, { pin_sealed: `${v}:${kid}:${flipped}` });
      const r = await h.call("GET", `/v1/cards/${publicToken}/pin`);
      expect(r.statusCode).toBe(500);
      expect(r.json().detail).toContain("pin-storage-v1");
      refused++;
    }
    expect(refused).toBeGreaterThan(5);
  });

  it("ciphertexts swapped between two cards do not open (AAD = tenant + card): no other card's data", async () => {
    const a = await h.createCard();
    const b = await h.createCard();
    const rowB = await cardRow(h, b.publicToken);
    await setColumns(a.publicToken, { pan_sealed: rowB.pan_sealed });
    const r = await h.call("GET", `/v1/cards/${a.publicToken}/cvv`);
    expect(r.statusCode).toBe(500);
    expect(r.json().detail).toMatch(/does not open under key pan-data-v1/);
  });

  it("an envelope naming a key that is not in the keystore: an error naming that key id", async () => {
    const { publicToken } = await h.createCard();
    const row = await cardRow(h, publicToken);
    await setColumns(publicToken, { pan_sealed: row.pan_sealed.replace("pan-data-v1", "pan-data-v9") });
    const r = await h.call("GET", `/v1/cards/${publicToken}/cvv`);
    expect(r.statusCode).toBe(500);
    expect(r.json().detail).toContain("pan-data-v9");
  });
});

describe("damaged keys", () => {
  it("a damaged keystore entry names the key id; a wrong master key is refused at start-up, clearly", async () => {
    const file = join(h.dataDir, "keystore.json");
    const original = readFileSync(file, "utf8");
    const master = Buffer.from(TEST_MASTER_KEY, "hex");
    try {
      const parsed = JSON.parse(original) as { keys: { id: string; sealed: string }[] };
      const entry = parsed.keys.find((k) => k.id === "pin-storage-v1")!;
      entry.sealed = damage(entry.sealed);
      writeFileSync(file, JSON.stringify(parsed));
      expect(() => loadKeystore(file, master)).toThrow(/Key pin-storage-v1 in the keystore is damaged/);
    } finally {
      writeFileSync(file, original);
    }
    expect(() => loadKeystore(file, Buffer.alloc(32, 9))).toThrow(KeystoreError);
    const wrong = loadConfig(
      { CARDVAULT_MASTER_KEY: "ab".repeat(32), CARDVAULT_JWT_SECRET: "x".repeat(32) },
      { dataDir: h.dataDir },
    );
    await expect(openRuntime(wrong, { warn: () => {} })).rejects.toThrow(
      /master key does not open the keystore/,
    );
  });
});

describe("re-encryption meets damaged data", () => {
  it("stops with the key id named instead of sealing garbage under the new key", async () => {
    rotateKeys(
      join(h.dataDir, "keystore.json"),
      Buffer.from(TEST_MASTER_KEY, "hex"),
      ["pan-data", "pin-storage"],
      systemClock,
    );
    await new Promise((r) => setTimeout(r, 1100)); // the running provider checks the keystore once a second
    // The cards damaged above are still in the table: the batch refuses them, naming the key.
    await expect(h.runtime.services.keyRotation.reencryptBatch(1000)).rejects.toThrow(
      /under key (pan-data|pin-storage)-v\d/,
    );
  });
});
