// Keys per card program, end to end over HTTP: a CVK and a PVK brought in by a component ceremony (the
// published vectors of test/vectors/card-crypto.json, split into components), named for tenant acme; cards
// created afterwards get CVVs under the imported CVK (checked against an independent computation with the
// vector key), PINs set afterwards get PVVs under the imported PVK, cards created before keep their CVK, the
// other tenant is untouched; a key of the wrong type or an unknown id is refused; the change is audited.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeCvv } from "../src/crypto/cvv.js";
import { adjustDesParity } from "../src/crypto/des.js";
import { keyCheckValue } from "../src/crypto/kcv.js";
import { encipherPinBlock } from "../src/crypto/pin-block.js";
import { computePvv } from "../src/crypto/pvv.js";
import { importByComponents } from "../src/keys/key-components.js";
import type { KeyInfo } from "../src/keys/key-provider.js";
import { cardRow, expectedCvv, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const VECTORS = JSON.parse(readFileSync(new URL("./vectors/card-crypto.json", import.meta.url), "utf8")) as {
  cvv: { cvk: string }[];
  pvv: { pvk: string; pvki: string }[];
};
const CVK = VECTORS.cvv[0]!.cvk;
const PVK = VECTORS.pvv.find((v) => v.pvki === "1")!.pvk;

/** Two odd-parity components of `keyHex`, as two custodians would hold them. */
function components(keyHex: string): Buffer[] {
  const first = adjustDesParity(randomBytes(16));
  const key = Buffer.from(keyHex, "hex");
  return [first, adjustDesParity(Buffer.from(key.map((b, i) => b ^ first[i]!)))];
}

let h: Harness;
let cvk: KeyInfo;
let pvk: KeyInfo;
let before: { publicToken: string };
const pinUrl = (t: string) => `/v1/cards/${t}/pin`;

beforeAll(async () => {
  h = await createHarness();
  before = await h.createCard();
  const ceremony = (type: "cvk" | "pvk", keyHex: string, kcv: string) =>
    importByComponents(
      h.runtime.keys,
      { type, components: components(keyHex), kcv, production: true },
      () => {},
    );
  cvk = await ceremony("cvk", CVK, "08D7B4");
  pvk = await ceremony("pvk", PVK, kcvOf(PVK));
});
afterAll(() => h.close());

/** The check value a key's sender publishes with it, computed here independently of the service. */
const kcvOf = (keyHex: string) => keyCheckValue(Buffer.from(keyHex, "hex"), "tdes", 3);

describe("a card program's own CVK and PVK", () => {
  it("refuses an unknown key id or one of the wrong type, changing nothing", async () => {
    const update = h.runtime.services.tenantKeys.update;
    await expect(update("alice", "acme", { cvkId: pvk.id })).rejects.toMatchObject({
      code: "validation_failed",
      message: expect.stringMatching(/names a pvk key; it must name a cvk key/),
    });
    await expect(update("alice", "acme", { pvkId: "pvk-v99" })).rejects.toMatchObject({
      code: "validation_failed",
      message: expect.stringMatching(/pvk-v99 names no key/),
    });
    await expect(update("alice", "nobody", { cvkId: cvk.id })).rejects.toMatchObject({ code: "not_found" });
    const acme = await h.runtime.repos.tenants.find("acme");
    expect(acme).toMatchObject({ cvk_id: null, pvk_id: null });
  });

  it("cards created afterwards get CVVs under the imported CVK and PVVs under the imported PVK", async () => {
    const updated = await h.runtime.services.tenantKeys.update("alice", "acme", {
      cvkId: cvk.id,
      pvkId: pvk.id,
    });
    expect(updated).toMatchObject({ cvk_id: cvk.id, pvk_id: pvk.id });

    const card = await h.createCard();
    const row = await cardRow(h, card.publicToken);
    expect(row).toMatchObject({ cvk_id: cvk.id, pvk_id: pvk.id });
    const pan = await panOf(h, card.publicToken);
    // The CVV computed with the vector key, outside the service, is what GET cvv answers.
    const cvv = computeCvv({
      cvk: Buffer.from(CVK, "hex"),
      pan,
      expiry: row.expiry,
      serviceCode: row.cvv_service_code,
    });
    const response = await h.call("GET", `/v1/cards/${card.publicToken}/cvv`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ cvv });
    expect((await h.call("POST", `/v1/cards/${card.publicToken}/cvv/verify`, { cvv })).json()).toMatchObject({
      result: "match",
    });

    expect((await h.call("PUT", pinUrl(card.publicToken), { pin: "4524" })).statusCode).toBe(204);
    const withPin = await cardRow(h, card.publicToken);
    expect(withPin.pvk_id).toBe(pvk.id);
    expect(withPin.pvv).toBe(
      computePvv({ pvk: Buffer.from(PVK, "hex"), pvki: String(withPin.pvki), pan, pin: "4524" }),
    );
    expect(
      (await h.call("POST", `/v1/cards/${card.publicToken}/pin/verify`, { pin: "4524" })).json(),
    ).toMatchObject({
      result: "match",
    });
  });

  it("a card created before keeps its CVK; a PIN set on it now gets its PVV under the program's PVK", async () => {
    const row = await cardRow(h, before.publicToken);
    expect(row.cvk_id).not.toBe(cvk.id);
    expect((await h.call("GET", `/v1/cards/${before.publicToken}/cvv`)).json()).toEqual({
      cvv: await expectedCvv(h, before.publicToken),
    });
    expect((await h.call("PUT", pinUrl(before.publicToken), { pin: "8642" })).statusCode).toBe(204);
    expect((await cardRow(h, before.publicToken)).pvk_id).toBe(pvk.id);
    expect(
      (await h.call("POST", `/v1/cards/${before.publicToken}/pin/verify`, { pin: "8642" })).json(),
    ).toMatchObject({
      result: "match",
    });
  });

  it("the other tenant's cards keep the provider's active keys", async () => {
    const other = await h.createCard({ type: "virtual" }, await h.token(undefined, "globex"));
    const row = await cardRow(h, other.publicToken);
    expect(row.cvk_id).toBe(h.runtime.keys.activeKeyId("cvk"));
    expect(row.pvk_id).toBe(h.runtime.keys.activeKeyId("pvk"));
  });

  it("a partner's zone PIN key, imported by components, deciphers PIN blocks named by keyId over HTTP", async () => {
    const zpkHex = "0123456789ABCDEFFEDCBA9876543210";
    const zpk = await importByComponents(
      h.runtime.keys,
      { type: "zpk", components: components(zpkHex), kcv: kcvOf(zpkHex), production: true },
      () => {},
    );
    expect(zpk).toMatchObject({ type: "zpk", algorithm: "tdes-2key", active: false });
    const card = await h.createCard();
    expect((await h.call("PUT", pinUrl(card.publicToken), { pin: "1357" })).statusCode).toBe(204);
    const pan = await panOf(h, card.publicToken);
    const block = (pin: string) =>
      encipherPinBlock({ format: 0, pin, pan, key: Buffer.from(zpkHex, "hex") })
        .toString("hex")
        .toUpperCase();
    const verify = (pin: string, keyId: string) =>
      h.call("POST", `${pinUrl(card.publicToken)}/verify`, { pinBlock: block(pin), format: 0, keyId });
    expect((await verify("1357", zpk.id)).json()).toMatchObject({ result: "match" });
    expect((await verify("2468", zpk.id)).json()).toMatchObject({ result: "mismatch" });
    // A zpk is no key for format 4 (it is TDES), and a CVK is no PIN key at all: 400, no try used.
    const format4 = await h.call("POST", `${pinUrl(card.publicToken)}/verify`, {
      pinBlock: "0".repeat(32),
      format: 4,
      keyId: zpk.id,
    });
    expect(format4.statusCode).toBe(400);
    expect(format4.json().errors).toHaveProperty("keyId");
    expect((await verify("1357", cvk.id)).statusCode).toBe(400);
  });

  it("the change is in the tenant's audit trail: who, which key ids and check values, never material", async () => {
    const rows = await h.runtime.store.db
      .selectFrom("audit_events")
      .selectAll()
      .where("action", "=", "tenant.keys_changed")
      .execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ tenant_id: "acme", actor: "operator:alice", outcome: "success" });
    expect(JSON.parse(rows[0]!.details!)).toMatchObject({ cvkId: cvk.id, cvkKcv: "08D7B4", pvkId: pvk.id });
    const text = JSON.stringify(rows).toUpperCase();
    for (const secret of [CVK, PVK]) expect(text).not.toContain(secret.slice(0, 8));
  });
});
