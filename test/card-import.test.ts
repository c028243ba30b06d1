// Card import (issue 15), in process on the real store (SQLite, and PostgreSQL in the postgres project): a file
// of published vectors' cards serves their printed CVVs and verifies their known PINs by PVV; rejected lines
// are reported by number and reason and cost only themselves; the same file twice imports nothing twice;
// nothing secret reaches a reason, an audit row or the API's record; the API import and its record.
import { createCipheriv, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adjustDesParity } from "../src/crypto/des.js";
import { keyCheckValue } from "../src/crypto/kcv.js";
import { parseNdjsonLine } from "../src/domain/card-import.js";
import { importByComponents } from "../src/keys/key-components.js";
import type { Services } from "../src/runtime.js";
import type { ImportRejection, SourceLine } from "../src/services/card-import.js";
import { createHarness, type Harness } from "./helpers/harness.js";
import vectors from "./vectors/card-crypto.json" with { type: "json" };

const CVK = vectors.cvv[0]!.cvk;
const PVK = vectors.pvv[0]!.pvk;
const ZPK_VECTOR = vectors.pinblock_iso0_encrypted[0]!;
const PVV_UNDER_ZPK = vectors.pvv.find((v) => v.pan === ZPK_VECTOR.pan)!;

let h: Harness;
let services: Services;
let call: Harness["call"];

/** The published keys' ids once imported, as an operator's ceremony brings them: two components each. */
const ids = { cvk: "", pvk: "", pvk2: "", zpk: "" };

beforeAll(async () => {
  h = await createHarness();
  services = h.runtime.services;
  call = h.call;
  const ceremony = async (type: "cvk" | "pvk" | "zpk", hex: string) => {
    // Two custodians' components, each of odd parity (as checked), whose XOR is the published key.
    const key = Buffer.from(hex, "hex");
    const first = adjustDesParity(randomBytes(key.length));
    const second = adjustDesParity(key.map((byte, i) => byte ^ first[i]!));
    const kcv = keyCheckValue(key, "tdes", 3);
    const imported = await importByComponents(
      h.runtime.keys,
      { type, components: [first, second], kcv, production: false },
      () => {},
    );
    return imported.id;
  };
  ids.cvk = await ceremony("cvk", CVK);
  ids.pvk = await ceremony("pvk", PVK);
  ids.pvk2 = await ceremony("pvk", PVV_UNDER_ZPK.pvk);
  ids.zpk = await ceremony("zpk", ZPK_VECTOR.key);
});

afterAll(async () => {
  await h?.close();
});

async function* numbered(lines: readonly string[]): AsyncIterable<SourceLine> {
  for (const [i, text] of lines.entries()) yield { number: i + 1, text };
}

async function importLines(lines: readonly string[], tenantId = "acme", luhn = false) {
  const rejected: ImportRejection[] = [];
  const counts = await services.cardImport.run({ tenantId, subject: "test-import" }, numbered(lines), {
    parse: parseNdjsonLine,
    luhn,
    batchSize: 3,
    onRejected: (r) => void rejected.push(r),
  });
  return { counts, rejected };
}

/** Visa's CVV vectors whose expiry is a valid month from now on, one line per distinct PAN. */
const cvvVectors = vectors.cvv.filter(
  (v, i, all) =>
    /^\d{2}(0[1-9]|1[0-2])$/.test(v.expiry) &&
    v.expiry > "2612" &&
    all.findIndex((w) => w.pan === v.pan) === i,
);
const pvvVectors = vectors.pvv.filter(
  (v, i, all) => v.pvk === PVK && all.findIndex((w) => w.pan === v.pan) === i,
);

describe("importing published vectors", () => {
  const tokens = new Map<string, string>();
  const lines = [
    ...cvvVectors.map((v, i) =>
      JSON.stringify({
        pan: v.pan,
        expiry: v.expiry,
        serviceCode: v.service_code,
        type: "physical",
        cvkId: ids.cvk,
        publicToken: String(700000001 + i),
      }),
    ),
    ...pvvVectors.map((v, i) =>
      JSON.stringify({
        pan: v.pan,
        expiry: "3012",
        type: "physical",
        pvkId: ids.pvk,
        pin: { pvki: Number(v.pvki), pvv: v.pvv },
        publicToken: String(710000001 + i),
        aliases: { pismo: 8800 + i },
      }),
    ),
    JSON.stringify({
      pan: ZPK_VECTOR.pan,
      expiry: "3012",
      type: "virtual",
      pvkId: ids.pvk2,
      pin: {
        pinBlock: ZPK_VECTOR.encrypted_pin_block,
        format: 0,
        zpkId: ids.zpk,
        pvki: Number(PVV_UNDER_ZPK.pvki),
        pvv: PVV_UNDER_ZPK.pvv,
      },
      publicToken: "720000001",
      cvvRotationIntervalHours: 24,
    }),
  ];

  beforeAll(async () => {
    expect(cvvVectors.length).toBeGreaterThanOrEqual(3);
    expect(pvvVectors.length).toBeGreaterThanOrEqual(2);
    const { counts, rejected } = await importLines(lines);
    expect(rejected).toEqual([]);
    expect(counts).toEqual({ lines: lines.length, imported: lines.length, alreadyPresent: 0, rejected: 0 });
    for (const [i, v] of cvvVectors.entries()) tokens.set(v.pan, String(700000001 + i));
    for (const [i, v] of pvvVectors.entries()) tokens.set(v.pan, String(710000001 + i));
  });

  it("GET …/cvv returns the printed CVV of every vector card", async () => {
    for (const v of cvvVectors) {
      const response = await call("GET", `/v1/cards/${tokens.get(v.pan)}/cvv`);
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().cvv).toBe(v.cvv);
    }
  });

  it("PIN verify accepts the known PIN by PVV, and refuses another; the PIN is not retrievable", async () => {
    for (const v of pvvVectors) {
      const token = tokens.get(v.pan)!;
      const wrong = v.pin === "0000" ? "1111" : "0000";
      const bad = await call("POST", `/v1/cards/${token}/pin/verify`, { pin: wrong });
      expect(bad.json().result, bad.body).toBe("mismatch");
      const good = await call("POST", `/v1/cards/${token}/pin/verify`, { pin: v.pin });
      expect(good.statusCode, good.body).toBe(200);
      expect(good.json().result, good.body).toBe("match");
      const read = await call("GET", `/v1/cards/${token}/pin`);
      expect(read.statusCode).toBe(409);
      expect(read.json().code).toBe("pin_not_retrievable");
      expect(read.body).not.toContain(v.pvv);
    }
  });

  it("a PIN block under the zone PIN key is translated into storage: verified by the PVV and retrievable", async () => {
    const good = await call("POST", "/v1/cards/720000001/pin/verify", { pin: ZPK_VECTOR.pin });
    expect(good.json().result, good.body).toBe("match");
    const read = await call("GET", "/v1/cards/720000001/pin");
    expect(read.json().pin).toBe(ZPK_VECTOR.pin);
    const card = await call("GET", "/v1/cards/720000001");
    expect(card.json()).toMatchObject({ type: "virtual", cvvRotationIntervalHours: 24, last4: "0123" });
  });

  it("a PIN set after import stores a block as usual: the PIN becomes retrievable", async () => {
    const token = tokens.get(pvvVectors[0]!.pan)!;
    expect((await call("PUT", `/v1/cards/${token}/pin`, { pin: "2468" })).statusCode).toBe(204);
    expect((await call("GET", `/v1/cards/${token}/pin`)).json().pin).toBe("2468");
  });

  it("the same file again imports nothing twice", async () => {
    const { counts } = await importLines(lines);
    expect(counts).toEqual({ lines: lines.length, imported: 0, alreadyPresent: lines.length, rejected: 0 });
    const rows = await h.runtime.store.db.selectFrom("cards").select("pan_last4").execute();
    expect(rows.length).toBe(lines.length);
  });

  it("writes one card.import audit record per card, with no PAN, PVV or PIN block in it", async () => {
    const rows = await h.runtime.store.db
      .selectFrom("audit_events")
      .selectAll()
      .where("action", "=", "card.import")
      .execute();
    expect(rows.length).toBe(lines.length);
    const text = JSON.stringify(rows);
    for (const v of [...cvvVectors, ...pvvVectors]) expect(text).not.toContain(v.pan);
    for (const v of pvvVectors) expect(text).not.toMatch(new RegExp(`"${v.pvv}"`));
    expect(text).not.toContain(ZPK_VECTOR.encrypted_pin_block);
  });
});

/** A format-0 block of `pin` under the vector ZPK for `pan` (ISO 9564-1 format 0: PIN field XOR PAN field). */
function format0Block(pin: string, pan: string): string {
  const pinField = Buffer.from(`0${pin.length}${pin}`.padEnd(16, "F"), "hex");
  const panField = Buffer.from(`0000${pan.slice(-13, -1)}`, "hex");
  const clear = Buffer.from(pinField.map((b, i) => b ^ panField[i]!));
  const cipher = createCipheriv("des-ede-ecb", Buffer.from(ZPK_VECTOR.key, "hex"), null).setAutoPadding(
    false,
  );
  return Buffer.concat([cipher.update(clear), cipher.final()])
    .toString("hex")
    .toUpperCase();
}

describe("rejections", () => {
  const good = (pan: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ pan, expiry: "3012", type: "physical", ...extra });
  // Luhn-valid PANs under acme's BIN.
  const pans = ["4000001234567899", "4000000000000002", "4000000000000010", "4000000000000028"];

  it("reports each bad line by number and reason, imports none of them and every valid line", async () => {
    const badBlockPan = "4000000000000036";
    const lines = [
      good(pans[0]!, { publicToken: "730000001" }),
      good("4000001234567898"), // bad Luhn
      good(pans[1]!, { cvkId: "cvk-nope" }), // unknown key id
      good(pans[2]!, { publicToken: "730000001" }), // duplicate token
      '{"pan":"4000000000000044","expiry":', // malformed JSON
      good(badBlockPan, {
        pin: { pinBlock: format0Block("1234", pans[3]!), format: 0, zpkId: ids.zpk },
      }), // enciphered for another PAN: does not decode under the ZPK for this one
      good(pans[3]!, {
        pin: { pinBlock: format0Block("1234", pans[3]!), format: 0, zpkId: ids.zpk },
      }),
      good("4000000000000051", { pin: { pin: "1234" } }), // a clear PIN
      good("4000000000000069", { cvkId: ids.pvk }), // a key of the wrong type
    ];
    const { counts, rejected } = await importLines(lines, "acme", true);
    expect(counts).toEqual({ lines: 9, imported: 2, alreadyPresent: 0, rejected: 7 });
    expect(rejected.map((r) => r.line).sort()).toEqual([2, 3, 4, 5, 6, 8, 9]);
    const reason = (line: number) => rejected.find((r) => r.line === line)!.reason;
    expect(reason(2)).toMatch(/^pan: .*Luhn/);
    expect(reason(3)).toMatch(/^cvkId: no key cvk-nope/);
    expect(reason(4)).toMatch(/^publicToken: already in use/);
    expect(reason(5)).toMatch(/not valid JSON/);
    expect(reason(6)).toMatch(/^pin: .*does not decode/);
    expect(reason(8)).toMatch(/clear PINs are not accepted/);
    expect(reason(9)).toMatch(new RegExp(`^cvkId: key ${ids.pvk} is a pvk key`));
    const text = JSON.stringify(rejected);
    for (const pan of [...pans, badBlockPan, "4000001234567898"])
      expect(text).not.toContain(pan.slice(6, 12));
    expect(text).not.toContain(format0Block("1234", pans[3]!));

    const imported = await call("GET", "/v1/cards/730000001");
    expect(imported.json().maskedPan).toBe("400000******7899");
    const tokensOf = await h.runtime.store.db
      .selectFrom("cards")
      .select("pan_last4")
      .where("tenant_id", "=", "acme")
      .where("pan_first6", "=", "400000")
      .execute();
    expect(tokensOf.map((r) => r.pan_last4).sort()).toEqual(["0028", "7899"]);
  });

  it("a PAN of another tenant's card is refused, not taken over", async () => {
    const { counts, rejected } = await importLines([good(pans[0]!)], "globex", true);
    expect(counts.imported).toBe(0);
    expect(rejected).toEqual([{ line: 1, reason: "pan: the card is registered to another tenant" }]);
  });
});

describe("POST /v1/card-imports", () => {
  const ndjson = { "content-type": "application/x-ndjson" };
  const body = [
    JSON.stringify({ pan: "4000000000000077", expiry: "3012", type: "physical", publicToken: "740000001" }),
    "",
    JSON.stringify({ pan: "4000000000000078", expiry: "3012", type: "physical" }),
    JSON.stringify({ pan: "4000000000000085", expiry: "3012", type: "virtual", status: "blocked" }),
  ].join("\n");
  const post = (text: string, query = "", init: { token?: string } = {}) =>
    call("POST", `/v1/card-imports${query}`, text, { headers: ndjson, ...init });

  it("a dry run checks every line and writes nothing", async () => {
    const response = await post(body, "?dryRun=true");
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ dryRun: true, lines: 3, imported: 2, rejected: 1 });
    expect((await call("GET", "/v1/cards/740000001")).statusCode).toBe(404);
  });

  it("imports, answers with an id, and GET shows the counts and the rejected lines' numbers and reasons", async () => {
    const response = await post(body);
    expect(response.statusCode, response.body).toBe(201);
    const view = response.json();
    expect(view).toMatchObject({ dryRun: false, lines: 3, imported: 2, alreadyPresent: 0, rejected: 1 });
    expect(view.rejections).toEqual([{ line: 3, reason: "pan: fails the Luhn check" }]);
    expect(response.body).not.toContain("000000000078");
    const again = await call("GET", `/v1/card-imports/${view.id}`);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(view);
    expect((await call("GET", "/v1/cards/740000001")).json()).toMatchObject({
      maskedPan: "400000******0077",
      status: "active",
    });
    const second = (await post(body)).json();
    expect(second).toMatchObject({ imported: 0, alreadyPresent: 2, rejected: 1 });
  });

  it("another tenant's import is a 404; without cards:import a 403; JSON or an oversized body are refused", async () => {
    const view = (await post(body)).json();
    const globex = await h.token(undefined, "globex");
    expect((await call("GET", `/v1/card-imports/${view.id}`, undefined, { token: globex })).statusCode).toBe(
      404,
    );
    const noScope = await h.token(["cards:read", "cards:write"]);
    const refused = await post(body, "", { token: noScope });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().detail).toContain("cards:import");
    const json = await call("POST", "/v1/card-imports", { pan: "4000000000000093" });
    expect(json.statusCode).toBe(415);
    const huge = await post("x".repeat(4 * 1024 * 1024 + 1));
    expect(huge.statusCode).toBe(413);
  });
});

describe("vendor identifiers of imported cards", () => {
  const line = JSON.stringify({
    pan: "4000000000000101",
    expiry: "3012",
    type: "virtual",
    publicToken: "012000777",
    aliases: { pismo: 12345678 },
  });

  beforeAll(async () => {
    const response = await call("POST", "/v1/card-imports", line, {
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(response.json()).toMatchObject({ imported: 1 });
  });

  it("the Thredd and Payblr paths find the card by its kept public token", async () => {
    for (const base of ["/api/v1", "/thr/thredd"]) {
      const response = await call("GET", `${base}/cards/012000777/status`);
      expect(response.statusCode, `${base}: ${response.body}`).toBe(200);
    }
  });

  it("the Pismo paths take its integer Pismo card id and answer id as an integer", async () => {
    const patch = await call("PATCH", "/pismo/v2/cards/12345678/cvv-rotation", {
      cvv_rotation_interval_hours: 6,
    });
    expect(patch.statusCode, patch.body).toBe(200);
    expect(patch.json()).toEqual({ id: 12345678, cvv_rotation_interval_hours: 6 });
    expect((await call("GET", "/v1/cards/012000777/cvv/rotation")).json()).toMatchObject({
      intervalHours: 6,
    });
    const before = (await call("GET", "/v1/cards/012000777/cvv")).json().cvv;
    expect((await call("POST", "/pismo/v2/cards/12345678/reset-cvv", {})).json()).toEqual({ success: true });
    expect((await call("GET", "/v1/cards/012000777/cvv")).json().cvv).not.toBe(before);
    // A token given as an integer (its leading zero dropped) still names the card.
    expect((await call("DELETE", "/pismo/v2/cards/12000777/cvv-rotation")).statusCode).toBe(204);
    expect((await call("GET", "/v1/cards/012000777/cvv/rotation")).json()).toMatchObject({
      intervalHours: null,
    });
  });

  it("another tenant's Pismo id is a 404", async () => {
    const globex = await h.token(undefined, "globex");
    const response = await call("POST", "/pismo/v2/cards/12345678/reset-cvv", {}, { token: globex });
    expect(response.statusCode).toBe(404);
  });
});

describe("POST /v1/card-imports with no card in it", () => {
  it("is a 400 naming each line and its reason, and records nothing", async () => {
    const before = await h.runtime.store.db.selectFrom("card_imports").select("id").execute();
    const response = await call("POST", "/v1/card-imports", '{"pan":"4000000000000119"\n[1,2]', {
      headers: { "content-type": "application/x-ndjson" },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual({
      "line 1": ["line: is not valid JSON"],
      "line 2": ["line: must be a JSON object"],
    });
    expect(response.body).not.toContain("4000000000000119");
    expect(await h.runtime.store.db.selectFrom("card_imports").select("id").execute()).toEqual(before);
  });
});
