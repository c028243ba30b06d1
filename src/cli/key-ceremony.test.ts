// The operator's key ceremony through the CLI, in process on a fresh data directory: a CVK by two components
// (each component's check value printed, the combined one checked), a wrong --kcv refused, the operator's
// check with `crypto cvv|pvv --key-id` against the published vectors, a KBPK and the published TR-31 K0 block,
// `keys list` (type, version, origin, check value, state; never a key), the audit trail (`audit list
// --operator`: who, which key, which check values, never material), `tenants update`, and production refusing
// a single component.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { adjustDesParity } from "../crypto/des.js";
import { keyCheckValue } from "../crypto/kcv.js";
import { initKeystore } from "../keys/keystore-file.js";
import { systemClock } from "../lib/clock.js";
import { main } from "./commands.js";

const VECTORS = JSON.parse(
  readFileSync(new URL("../../test/vectors/card-crypto.json", import.meta.url), "utf8"),
) as {
  cvv: { cvk: string; pan: string; expiry: string; service_code: string; cvv: string }[];
  pvv: { pvk: string; pvki: string; pin: string; pan: string; pvv: string }[];
};
const CVV = VECTORS.cvv[0]!;
const PVV = VECTORS.pvv.find((v) => v.pvki === "1")!;
const KBPK = "EFE0853B256B583D868F251CE99EA1D9";
const K0_BLOCK = "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228";

const dataDir = mkdtempSync(join(tmpdir(), "cardvault-ceremony-"));
const MASTER = "5a".repeat(32);
// The development master key and a keystore made with cached RSA pairs (generating them costs seconds).
beforeAll(() => {
  writeFileSync(join(dataDir, "dev-master.key"), `${MASTER}\n`, { mode: 0o600 });
  initKeystore(join(dataDir, "keystore.json"), Buffer.from(MASTER, "hex"), systemClock, {
    generateRsaKey: testRsaKeyGenerator,
  });
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
afterEach(() => vi.unstubAllEnvs());

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main([...args, "--data-dir", dataDir], {
    stdout: (t) => out.push(t.replace(/\n$/, "")),
    stderr: (t) => err.push(t.replace(/\n$/, "")),
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** Two odd-parity components of a key, as hex. */
function componentsOf(keyHex: string): [string, string] {
  const first = adjustDesParity(randomBytes(16));
  const second = adjustDesParity(Buffer.from(Buffer.from(keyHex, "hex").map((b, i) => b ^ first[i]!)));
  return [first.toString("hex").toUpperCase(), second.toString("hex").toUpperCase()];
}
const kcvOf = (hex: string, algorithm: "tdes" | "aes" = "tdes") =>
  keyCheckValue(Buffer.from(hex, "hex"), algorithm, 3);

const allOutput: string[] = [];
const secrets: string[] = [];
async function ceremony(...args: string[]) {
  const result = await cli("keys", "import", "--operator", "alice", ...args);
  allOutput.push(result.stdout, result.stderr);
  return result;
}

describe("key ceremony CLI", () => {
  it("imports a CVK by two components: each component's check value, then the key's; not active", async () => {
    expect((await cli("keys", "init")).code).toBe(0);
    const [a, b] = componentsOf(CVV.cvk);
    secrets.push(a, b, CVV.cvk);
    const result = await ceremony("--type", "cvk", "--component", a, "--component", b, "--kcv", "08D7B4");
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n")).toEqual([
      `component 1: kcv=${kcvOf(a)}`,
      `component 2: kcv=${kcvOf(b)}`,
      "imported cvk-v2\tcvk\ttdes-2key\torigin=components\tkcv=08D7B4\tnot active",
      "next: name it for a card program: cardvault tenants update TENANT --cvk cvk-v2",
    ]);
  });

  it("the operator's check: crypto cvv --key-id gives the published CVV, computed in the provider", async () => {
    const r = await cli(
      "crypto",
      "cvv",
      "--key-id",
      "cvk-v2",
      "--pan",
      CVV.pan,
      "--expiry",
      CVV.expiry,
      "--service-code",
      CVV.service_code,
    );
    expect(r).toMatchObject({ code: 0, stdout: CVV.cvv });
    const both = await cli(
      "crypto",
      "cvv",
      "--key-id",
      "cvk-v2",
      "--cvk",
      CVV.cvk,
      "--pan",
      CVV.pan,
      "--expiry",
      "8701",
      "--service-code",
      "101",
    );
    expect(both).toMatchObject({ code: 2, stderr: expect.stringMatching(/either --cvk HEX or --key-id/) });
    const wrongType = await cli(
      "crypto",
      "cvv",
      "--key-id",
      "pvk-v1",
      "--pan",
      CVV.pan,
      "--expiry",
      "8701",
      "--service-code",
      "101",
    );
    expect(wrongType).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/pvk-v1 \(cvk\) is not in the keystore/),
    });
  });

  it("refuses a combined key whose check value is not --kcv, and a mistyped component; nothing stored", async () => {
    const [a, b] = componentsOf(PVV.pvk);
    secrets.push(a, b, PVV.pvk);
    const wrong = await ceremony("--type", "pvk", "--component", a, "--component", b, "--kcv", "ABCDEF");
    expect(wrong.code).toBe(2);
    expect(wrong.stdout).toContain(`component 2: kcv=${kcvOf(b)}`);
    expect(wrong.stderr).toMatch(/check value is [0-9A-F]{6}, not ABCDEF.*Nothing was stored/);
    const typo = await ceremony(
      "--type",
      "pvk",
      "--component",
      a,
      "--component",
      `${b.slice(0, 31)}${(Number.parseInt(b[31]!, 16) ^ 1).toString(16).toUpperCase()}`, // one bit: parity breaks
      "--kcv",
      kcvOf(PVV.pvk),
    );
    expect(typo).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/Component 2 does not have odd parity/),
    });
    expect((await cli("keys", "list")).stdout).not.toMatch(/^pvk-v2/m);
    // Right this time, with three components; then the published PVV under it.
    const c = adjustDesParity(randomBytes(16)).toString("hex");
    const [x, y] = componentsOf(
      Buffer.from(Buffer.from(PVV.pvk, "hex").map((v, i) => v ^ Buffer.from(c, "hex")[i]!)).toString("hex"),
    );
    const three = await ceremony(
      "--type",
      "pvk",
      "--component",
      x,
      "--component",
      y,
      "--component",
      c,
      "--kcv",
      kcvOf(PVV.pvk),
    );
    expect(three.code).toBe(0);
    expect(three.stdout).toContain("component 3: kcv=");
    const pvv = await cli(
      "crypto",
      "pvv",
      "--key-id",
      "pvk-v2",
      "--pvki",
      PVV.pvki,
      "--pan",
      PVV.pan,
      "--pin",
      PVV.pin,
    );
    expect(pvv).toMatchObject({ code: 0, stdout: PVV.pvv });
  });

  it("imports a KBPK by components, then the published TR-31 K0 block under it; refuses a mismatched header", async () => {
    const [a, b] = componentsOf(KBPK);
    secrets.push(a, b, KBPK);
    expect(
      (await ceremony("--type", "kbpk", "--component", a, "--component", b, "--kcv", kcvOf(KBPK))).code,
    ).toBe(0);
    const block = await ceremony(
      "--type",
      "kbpk",
      "--tr31",
      K0_BLOCK,
      "--kbpk",
      "kbpk-v1",
      "--kcv",
      "5C9405",
    );
    expect(block.code).toBe(0);
    expect(block.stdout).toContain("imported kbpk-v2\tkbpk\ttdes-2key\torigin=tr31\tkcv=5C9405\tnot active");
    const mismatch = await ceremony("--type", "zpk", "--tr31", K0_BLOCK, "--kbpk", "kbpk-v1");
    expect(mismatch).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/key usage is K0 \(key encryption key\); a zpk key needs P0/),
    });
    const usage = await ceremony("--type", "zpk", "--tr31", K0_BLOCK);
    expect(usage).toMatchObject({ code: 2, stderr: expect.stringMatching(/--tr31 needs --kbpk/) });
  });

  it("keys list: id, type, version, origin, check value and state of every key; never a key", async () => {
    const { code, stdout } = await cli("keys", "list");
    expect(code).toBe(0);
    const line = (id: string) => stdout.split("\n").find((l) => l.startsWith(`${id}\t`));
    expect(line("cvk-v1")).toMatch(
      /^cvk-v1\tcvk\tv1\ttdes-2key\torigin=generated\tkcv=[0-9A-F]{6}\tactive\t/,
    );
    expect(line("cvk-v2")).toMatch(
      /^cvk-v2\tcvk\tv2\ttdes-2key\torigin=components\tkcv=08D7B4\timported \(used by id\)\t/,
    );
    expect(line("kbpk-v2")).toMatch(/origin=tr31\tkcv=5C9405/);
    allOutput.push(stdout);
  });

  it("the audit trail holds every ceremony, imported or refused, with who and which check values; no material", async () => {
    const { stdout } = await cli("audit", "list", "--operator");
    const rows = stdout.split("\n").map(
      (l) =>
        JSON.parse(l) as {
          action: string;
          outcome: string;
          actor: string;
          details: Record<string, unknown>;
        },
    );
    const ceremonies = rows.filter((r) => r.action === "key.import");
    expect(ceremonies.map((r) => `${r.outcome}:${r.details.type}:${r.details.origin}`)).toEqual([
      "success:cvk:components",
      "refused:pvk:components",
      "refused:pvk:components",
      "success:pvk:components",
      "success:kbpk:components",
      "success:kbpk:tr31",
      "refused:zpk:tr31",
    ]);
    expect(ceremonies.every((r) => r.actor === "operator:alice")).toBe(true);
    expect(ceremonies[0]!.details).toMatchObject({
      keyId: "cvk-v2",
      kcv: "08D7B4",
      components: 2,
      expectedKcv: "08D7B4",
    });
    expect(String(ceremonies[0]!.details.componentKcvs)).toMatch(/^[0-9A-F]{6},[0-9A-F]{6}$/);
    expect(ceremonies[5]!.details).toMatchObject({ kbpkId: "kbpk-v1", keyUsage: "K0", kcv: "5C9405" });
    expect(ceremonies[1]!.details.reason).toMatch(/check value/);
    allOutput.push(stdout);
    const everything = allOutput.join("\n").toUpperCase();
    for (const secret of secrets) expect(everything).not.toContain(secret.toUpperCase().slice(0, 12));
  });

  it("tenants update names the program's keys, refusing the wrong type; audited in its trail", async () => {
    expect((await cli("tenants", "add", "acme", "--bin", "412345")).code).toBe(0);
    const wrong = await cli("tenants", "update", "acme", "--cvk", "pvk-v2", "--operator", "bob");
    expect(wrong).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/names a pvk key; it must name a cvk key/),
    });
    const ok = await cli(
      "tenants",
      "update",
      "acme",
      "--cvk",
      "cvk-v2",
      "--pvk",
      "pvk-v2",
      "--operator",
      "bob",
    );
    expect(ok).toMatchObject({
      code: 0,
      stdout: expect.stringContaining("new cards use cvk cvk-v2, new PINs pvk pvk-v2"),
    });
    expect((await cli("tenants", "list")).stdout).toContain(
      "acme\tbin=412345\tpanLength=16\tmaxCvvTries=3\tmaxPinTries=3\tcvk=cvk-v2\tpvk=pvk-v2",
    );
    const trail = (await cli("audit", "list", "--tenant", "acme")).stdout;
    expect(trail).toContain('"action":"tenant.keys_changed"');
    expect(trail).toContain('"actor":"operator:bob"');
  });

  it("in production a single component is refused", async () => {
    vi.stubEnv("NODE_ENV", "production");
    vi.stubEnv("CARDVAULT_MASTER_KEY", MASTER);
    vi.stubEnv("CARDVAULT_JWT_SECRET", "a-production-grade-secret-for-hs256-tokens-9f8e7d6c");
    vi.stubEnv("CARDVAULT_PUBLIC_URL", "https://cardvault.test");
    const single = await ceremony("--type", "cvk", "--component", CVV.cvk, "--kcv", "08D7B4");
    expect(single).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/single component is refused in production/),
    });
  });
});
