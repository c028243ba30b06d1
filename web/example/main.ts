// `npm run example`: the example card program next to a cardvault. By default it starts cardvault in this
// process (a throwaway data directory, development keys, tenant "example" with PIN delivery on, one virtual
// card); with CARDVAULT_URL and CARDVAULT_TOKEN it talks to a running `cardvault serve` instead.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { mintToken } from "../../src/http/auth.js";
import { startServer } from "../../src/http/server.js";
import { createLogger } from "../../src/lib/logger.js";
import { openRuntime } from "../../src/runtime.js";
import { buildWeb } from "../build.js";
import { startExampleHost } from "./server.js";

const cardvaultPort = Number(process.env.EXAMPLE_CARDVAULT_PORT ?? 8090);
const hostPort = Number(process.env.EXAMPLE_PORT ?? 8091);

async function localCardvault(): Promise<{ origin: string; token: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-example-"));
  const config = loadConfig(
    {
      ...process.env,
      CARDVAULT_HOST: "127.0.0.1",
      CARDVAULT_PORT: String(cardvaultPort),
      CARDVAULT_JOBS: "off",
    },
    { dataDir },
  );
  process.stdout.write(`Starting cardvault with development keys in ${dataDir} (RSA keys take a moment)…\n`);
  const runtime = await openRuntime(config, { warn: () => {} });
  await runtime.services.tenants.add({ id: "example", bin: "400000", secureDataPin: true });
  await startServer(runtime, createLogger("warn"));
  const token = await mintToken({
    secret: runtime.jwtSecret!,
    tenantId: "example",
    scopes: ["cards:write", "cards:reveal"],
    subject: "example-backend",
    ttlSeconds: 12 * 3600,
    tenantClaim: config.auth.tenantClaim,
    issuer: config.auth.issuer,
    audience: config.auth.audience,
    clock: runtime.clock,
  });
  return { origin: `http://127.0.0.1:${cardvaultPort}`, token };
}

async function api(origin: string, token: string, path: string, body: unknown) {
  const response = await fetch(`${origin}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json() as Promise<Record<string, string>>;
}

const remote = process.env.CARDVAULT_URL;
const { origin, token } =
  remote && process.env.CARDVAULT_TOKEN
    ? { origin: new URL(remote).origin, token: process.env.CARDVAULT_TOKEN }
    : await localCardvault();
const card =
  process.env.CARDVAULT_CARD ??
  (await api(origin, token, "/v1/cards", { type: "virtual", cardholderName: "Ada Lovelace" })).publicToken!;

const host = await startExampleHost({
  assetDir: await buildWeb(),
  cardvaultOrigin: origin,
  port: hostPort,
  mintSession: ({ fields, targetOrigin }) =>
    api(origin, token, `/v1/cards/${card}/reveal-sessions`, { fields, targetOrigin }) as Promise<{
      url: string;
    }>,
});
process.stdout.write(
  `cardvault: ${origin}  card: ${card}\nExample host: ${host.origin}/  (Ctrl-C to stop)\n`,
);
// cardvault's own server stops on these signals (startServer); the host must stop too for the process to end.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void host.close());
