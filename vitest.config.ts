import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// Every suite runs on SQLite; the HTTP/integration suites run again on PostgreSQL when
// CARDVAULT_TEST_DATABASE_URL names a server (each test file on a fresh database of its own).
const postgresUrl = process.env.CARDVAULT_TEST_DATABASE_URL;
if (!postgresUrl && !process.env.VITEST_WORKER_ID) {
  process.stdout.write(
    "\n[cardvault] PostgreSQL suites SKIPPED: CARDVAULT_TEST_DATABASE_URL is not set " +
      "(e.g. postgres://postgres@127.0.0.1:5432/postgres). Only SQLite was tested.\n\n",
  );
}

const shared = { pool: "forks" as const, testTimeout: 30_000, hookTimeout: 60_000 };

// The HTTP suites of the key-bearing routes run once more with the PKCS#11 provider on SoftHSM2 (a token per
// test file): a few files, not the whole suite, to keep its time. Skipped, loudly, where SoftHSM2 is absent.
const softhsm = existsSync(process.env.CARDVAULT_TEST_PKCS11_MODULE ?? "/usr/lib/softhsm/libsofthsm2.so");
if (!softhsm && !process.env.VITEST_WORKER_ID) {
  if (process.env.CARDVAULT_REQUIRE_SOFTHSM === "1") {
    throw new Error("CARDVAULT_REQUIRE_SOFTHSM=1 but SoftHSM2 is not installed (apt-get install softhsm2)");
  }
  process.stdout.write("\n[cardvault] PKCS#11 HTTP suites SKIPPED: SoftHSM2 is not installed.\n\n");
}

export default defineConfig({
  test: {
    // Two test files at a time even on two cores (vitest's default is cores − 1, so one): most files wait on
    // PostgreSQL, timers or child processes, so the suite's wall time drops by about a third.
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: "sqlite",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/postgres/**"],
        },
      },
      ...(softhsm
        ? [
            {
              test: {
                ...shared,
                name: "pkcs11",
                include: [
                  "test/cvv.test.ts",
                  "test/pin.test.ts",
                  "test/secure-data.test.ts",
                  "test/rotation.test.ts",
                  "test/oauth.test.ts",
                  "test/tenant-keys.test.ts",
                ],
                env: { CARDVAULT_TEST_KEY_PROVIDER: "pkcs11" },
              },
            },
          ]
        : []),
      ...(postgresUrl
        ? [
            {
              test: {
                ...shared,
                name: "postgres",
                include: ["test/**/*.test.ts"],
                // The browser suite checks the page, and the Redocly lint the served OpenAPI document (built from
                // the route declarations alone), not the store: SQLite is enough for both.
                exclude: ["test/cli.test.ts", "test/browser/**", "test/openapi-lint.test.ts"],
                env: { CARDVAULT_TEST_STORE: "postgres", CARDVAULT_TEST_DATABASE_URL: postgresUrl },
              },
            },
          ]
        : []),
    ],
  },
});
