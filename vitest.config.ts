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

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: "sqlite",
          include: ["src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["test/postgres/**"],
        },
      },
      ...(postgresUrl
        ? [
            {
              test: {
                ...shared,
                name: "postgres",
                include: ["test/**/*.test.ts"],
                // The browser suite checks the page, not the store: SQLite is enough.
                exclude: ["test/cli.test.ts", "test/browser/**"],
                env: { CARDVAULT_TEST_STORE: "postgres", CARDVAULT_TEST_DATABASE_URL: postgresUrl },
              },
            },
          ]
        : []),
    ],
  },
});
