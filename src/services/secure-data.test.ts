// The secure-data service with real parts (in-memory SQLite, the local key provider) and no HTTP: what is
// written when, and what is not — a refused key leaves no trace of use, a replay leaves an audit row only.
import { constants, createDecipheriv, publicEncrypt, randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { loadConfig } from "../config.js";
import { initKeystore, loadKeystore } from "../keys/keystore-file.js";
import { createLocalKeyProvider } from "../keys/local-keystore.js";
import { systemClock } from "../lib/clock.js";
import { accessTokenSettings, createRepos, createServices, revealSettings } from "../runtime.js";
import { migrateToLatest, openSqliteStore, type Store } from "../store/db.js";

let store: Store;
let services: ReturnType<typeof createServices>;
let wrapPem: string;
const acme = { tenantId: "acme", subject: "unit", requestId: "req-1" };
const pinned = { tenantId: "pinned", subject: "unit" };

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-sd-svc-")), "keystore.json");
  const master = Buffer.alloc(32, 3);
  initKeystore(file, master, systemClock, { generateRsaKey: testRsaKeyGenerator });
  const keys = createLocalKeyProvider(loadKeystore(file, master));
  store = openSqliteStore(":memory:");
  await migrateToLatest(store.db);
  const config = loadConfig({}, { dataDir: tmpdir() });
  services = createServices({
    store,
    repos: createRepos(store),
    keys,
    clock: systemClock,
    rateLimits: config.rateLimits,
    reveal: revealSettings(config),
    wrongTryBudget: config.wrongTryBudget,
    webhookEndpointsPerTenant: config.webhooks.endpointsPerTenant,
    accessTokens: accessTokenSettings(config),
  });
  await services.tenants.add({ id: "acme", bin: "400000" });
  await services.tenants.add({ id: "pinned", bin: "400000", secureDataPin: true });
  wrapPem = services.secureData.publicKeys().find((k) => k.use === "wrap")!.pem;
});
afterAll(() => store.close());

function wrapped() {
  const sessionKey = randomBytes(32);
  const wrappedKey = publicEncrypt(
    { key: wrapPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    sessionKey,
  );
  return { sessionKey, wrappedKey };
}

function open(answer: { iv: string; encryptedPayload: string }, sessionKey: Buffer) {
  const decipher = createDecipheriv("aes-256-cbc", sessionKey, Buffer.from(answer.iv, "base64"));
  const clear = Buffer.concat([
    decipher.update(Buffer.from(answer.encryptedPayload, "base64")),
    decipher.final(),
  ]);
  return JSON.parse(clear.toString()) as Record<string, string>;
}

const rows = async (table: "audit_events" | "secure_data_session_keys") =>
  (await store.db.selectFrom(table).selectAll().execute()) as Record<string, unknown>[];

describe("secure-data service", () => {
  it("delivers PAN, CVV and expiry, claims the key and audits the read in one go", async () => {
    const card = await services.cards.create(acme, { type: "virtual" });
    const { sessionKey, wrappedKey } = wrapped();
    const answer = await services.secureData.deliver(acme, card.publicToken, { wrappedKey });
    if (answer.kind !== "rsa") throw new Error("expected the RSA form");
    const data = open(answer, sessionKey);
    expect(Object.keys(data)).toEqual(["PAN", "CVV", "expiryDate"]);
    expect(data.CVV).toBe((await services.cvv.get(acme, card.publicToken)).cvv);
    expect(data.expiryDate).toBe(card.expiryDate);

    const claims = (await rows("secure_data_session_keys")).filter((r) => r.tenant_id === "acme");
    expect(claims).toHaveLength(1);
    const audit = (await rows("audit_events")).filter((r) => r.action === "secure_data.read");
    expect(audit.map((r) => [r.outcome, r.request_id])).toEqual([["success", "req-1"]]);
  });

  it("a key that does not unwrap is refused before anything is claimed or audited", async () => {
    const card = await services.cards.create(acme, { type: "virtual" });
    const before = [(await rows("secure_data_session_keys")).length, (await rows("audit_events")).length];
    await expect(
      services.secureData.deliver(acme, card.publicToken, { wrappedKey: randomBytes(512) }),
    ).rejects.toMatchObject({ code: "session_key_invalid", status: 400 });
    expect([(await rows("secure_data_session_keys")).length, (await rows("audit_events")).length]).toEqual(
      before,
    );
  });

  it("a replay is refused with 409 and leaves one more audit row (replay_refused), no second claim", async () => {
    const card = await services.cards.create(acme, { type: "virtual" });
    const { wrappedKey } = wrapped();
    await services.secureData.deliver(acme, card.publicToken, { wrappedKey });
    const claims = (await rows("secure_data_session_keys")).length;
    await expect(services.secureData.deliver(acme, card.publicToken, { wrappedKey })).rejects.toMatchObject({
      code: "session_key_replayed",
      status: 409,
    });
    expect((await rows("secure_data_session_keys")).length).toBe(claims);
    const outcomes = (await rows("audit_events"))
      .filter((r) => r.public_token === card.publicToken && r.action === "secure_data.read")
      .map((r) => r.outcome);
    expect(outcomes).toEqual(["success", "replay_refused"]);
  });

  it("adds the PIN for a tenant that enables it", async () => {
    const card = await services.cards.create(pinned, { type: "physical" });
    await services.pin.set(pinned, card.publicToken, "98765");
    const { sessionKey, wrappedKey } = wrapped();
    const answer = await services.secureData.deliver(pinned, card.publicToken, { wrappedKey });
    if (answer.kind !== "rsa") throw new Error("expected the RSA form");
    expect(open(answer, sessionKey)).toMatchObject({ PIN: "98765" });
  });
});
