// SoftHSM2 tokens for tests: one token directory per test process (a temporary SOFTHSM2_CONF), and a fresh token
// in it for each caller. SoftHSM reads its token directory once, at C_Initialize, so a token made afterwards
// by `softhsm2-util --init-token` in another process would be invisible to this one: tokens are initialised
// here, in-process, with C_InitToken / C_InitPIN on the module's free slot (what softhsm2-util does).
// Where the module is absent the PKCS#11 suites skip, saying so loudly; under CI (.ci/run exports
// CARDVAULT_REQUIRE_SOFTHSM=1) its absence is an error instead, so a green CI always means they ran.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkcs11js from "pkcs11js";
import { generatedKeyTypes } from "../../src/keys/key-provider.js";
import {
  acquireModule,
  generateKey,
  importSecretKey,
  openToken,
  releaseModule,
  type Token,
  type TokenSettings,
} from "../../src/keys/pkcs11-token.js";
import type { Clock } from "../../src/lib/clock.js";
import { testRsaKeyGenerator } from "./test-rsa-keys.js";

export const SOFTHSM_MODULE = process.env.CARDVAULT_TEST_PKCS11_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so";
export const TEST_TOKEN_PIN = "246810";
const SO_PIN = "13579111";

/** True when SoftHSM2 is installed; otherwise a loud notice (or, under CARDVAULT_REQUIRE_SOFTHSM=1, an error). */
export function softhsmAvailable(): boolean {
  if (existsSync(SOFTHSM_MODULE)) return true;
  if (process.env.CARDVAULT_REQUIRE_SOFTHSM === "1") {
    throw new Error(
      `CARDVAULT_REQUIRE_SOFTHSM=1 but the SoftHSM2 module ${SOFTHSM_MODULE} is absent: apt-get install softhsm2.`,
    );
  }
  process.stderr.write(
    `\n[cardvault] PKCS#11 suites SKIPPED: SoftHSM2 (${SOFTHSM_MODULE}) is not installed (apt-get install softhsm2).\n\n`,
  );
  return false;
}

const state = globalThis as { cardvaultSoftHsm?: { dir: string; tokens: number } };

/** This process's token directory and configuration, made once before the module is first loaded. */
function tokenDirectory(): { dir: string; tokens: number } {
  if (!state.cardvaultSoftHsm) {
    // On tmpfs when there is one: SoftHSM syncs every object file it writes, ~120 ms each on a disk.
    const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "cardvault-softhsm-"));
    const conf = join(dir, "softhsm2.conf");
    writeFileSync(
      conf,
      `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
    process.env.SOFTHSM2_CONF = conf;
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    state.cardvaultSoftHsm = { dir, tokens: 0 };
    // Held for the life of the process: finalizing between tokens would close every other test's sessions.
    acquireModule(SOFTHSM_MODULE);
  }
  return state.cardvaultSoftHsm;
}

/** A new, empty token (its own label) with a user PIN: the settings CARDVAULT_PKCS11_* would name. */
export function createSoftHsmToken(prefix = "cv"): TokenSettings {
  const directory = tokenDirectory();
  const pkcs11 = acquireModule(SOFTHSM_MODULE);
  try {
    const T = pkcs11js;
    const free = pkcs11
      .C_GetSlotList(true)
      .find((s) => (pkcs11.C_GetTokenInfo(s).flags & T.CKF_TOKEN_INITIALIZED) === 0);
    if (!free) throw new Error("SoftHSM2 offers no free slot");
    const label = `${prefix}-${process.pid}-${++directory.tokens}`;
    pkcs11.C_InitToken(free, SO_PIN, label.padEnd(32));
    // C_InitToken renumbers the slot: find the token again by its label.
    const slot = pkcs11.C_GetSlotList(true).find((s) => pkcs11.C_GetTokenInfo(s).label.trim() === label)!;
    const session = pkcs11.C_OpenSession(slot, T.CKF_SERIAL_SESSION | T.CKF_RW_SESSION);
    pkcs11.C_Login(session, T.CKU_SO, SO_PIN);
    pkcs11.C_InitPIN(session, TEST_TOKEN_PIN);
    pkcs11.C_Logout(session);
    pkcs11.C_CloseSession(session);
    return { module: SOFTHSM_MODULE, label, pin: TEST_TOKEN_PIN };
  } finally {
    // The process keeps its own reference (tokenDirectory); this one was for the initialisation.
    releaseModule(SOFTHSM_MODULE);
  }
}

/**
 * `keys init` on a test token, quickly: the symmetric keys generated inside the token, the RSA keys imported
 * from the cached test pairs (an RSA-4096 keygen in SoftHSM takes seconds; the keys' handling is the same).
 */
export async function initTestTokenKeys(token: Token, clock: Clock): Promise<void> {
  for (const type of generatedKeyTypes) {
    if (type === "secure-data-wrap" || type === "secure-data-sign") {
      const material = Buffer.from(testRsaKeyGenerator(type === "secure-data-wrap" ? 4096 : 3072));
      importSecretKey(token, { id: `${type}-v1`, type, material, origin: "generated" }, clock);
    } else {
      await generateKey(token, type, clock);
    }
  }
}

/** Opens a token made by createSoftHsmToken. */
export const openTestToken = (settings: TokenSettings) => openToken(settings);
