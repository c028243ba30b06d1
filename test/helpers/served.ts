// A cardvault world for tests that run real `serve` processes (faults, online key rotation): one data
// directory and database (SQLite file, or a fresh PostgreSQL database in the postgres project), a runtime in
// the test process for set-up and inspection, tokens, and `serve` processes started, killed and restarted.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { mintToken, scopes } from "../../src/http/auth.js";
import { systemClock } from "../../src/lib/clock.js";
import { openRuntime, type Runtime } from "../../src/runtime.js";
import { type CardvaultProcess, freePort, spawnCardvault, waitForHttp } from "./processes.js";
import { createTestDatabase, prepareStoreAndKeys } from "./test-database.js";

export const SERVED_JWT_SECRET = "served-world-secret-that-is-long-enough!!";
export const SERVED_MASTER_KEY = "22".repeat(32);

export interface ServedWorld {
  dataDir: string;
  env: Record<string, string>;
  runtime: Runtime;
  token: (tenant?: string) => Promise<string>;
  serve(extraEnv?: Record<string, string>): Promise<{ process: CardvaultProcess; base: string }>;
  /** Starts `serve` without waiting for it to be ready (its jobs may start before /readyz answers). */
  spawnServe(extraEnv?: Record<string, string>): Promise<{ process: CardvaultProcess; base: string }>;
  close(): Promise<void>;
}

export async function createServedWorld(
  options: {
    env?: Record<string, string>;
    tenants?: {
      id: string;
      maxCvvTries?: number;
      maxPinTries?: number;
      sandbox?: boolean;
      allowPrivateWebhooks?: boolean;
    }[];
  } = {},
): Promise<ServedWorld> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-served-"));
  const database = await createTestDatabase();
  const env: Record<string, string> = {
    CARDVAULT_DATA_DIR: dataDir,
    CARDVAULT_JWT_SECRET: SERVED_JWT_SECRET,
    CARDVAULT_MASTER_KEY: SERVED_MASTER_KEY,
    CARDVAULT_JOBS: "off",
    ...(database.url ? { CARDVAULT_DATABASE_URL: database.url } : {}),
    ...options.env,
  };
  const config = loadConfig(env);
  await prepareStoreAndKeys(config, systemClock);
  const runtime = await openRuntime(config, { warn: () => {} });
  for (const t of options.tenants ?? [{ id: "acme" }]) {
    await runtime.services.tenants.add({
      id: t.id,
      maxCvvTries: t.maxCvvTries ?? 3,
      maxPinTries: t.maxPinTries ?? 3,
      sandbox: t.sandbox ?? false,
      allowPrivateWebhooks: t.allowPrivateWebhooks,
    });
  }
  const processes: CardvaultProcess[] = [];
  const spawnServe = async (extraEnv: Record<string, string> = {}) => {
    const port = await freePort();
    const process = spawnCardvault(["serve", "--port", String(port)], { ...env, ...extraEnv });
    processes.push(process);
    return { process, base: `http://127.0.0.1:${port}` };
  };
  return {
    dataDir,
    env,
    runtime,
    token: (tenant = "acme") =>
      mintToken({
        secret: SERVED_JWT_SECRET,
        tenantId: tenant,
        scopes: [...scopes],
        subject: "served",
        ttlSeconds: 3600,
        tenantClaim: "tenant",
        clock: systemClock,
      }),
    spawnServe,
    async serve(extraEnv = {}) {
      const started = await spawnServe(extraEnv);
      await waitForHttp(`${started.base}/readyz`, 30_000);
      return started;
    },
    async close() {
      for (const p of processes)
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
      await Promise.all(processes.map((p) => p.exited));
      await runtime.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** JSON over fetch; network failures come back as status 0 so load loops can count them. */
export async function request(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  try {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  } catch {
    return { status: 0, body: {} };
  }
}
