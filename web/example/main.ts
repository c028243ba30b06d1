// `npm run example`: the example card program next to a cardvault. By default it starts cardvault in this
// process (a throwaway data directory, development keys, tenant "example" with PIN delivery on, one virtual
// card); with CARDVAULT_URL and CARDVAULT_TOKEN it talks to a running `cardvault serve` instead.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCardvaultClient } from "../../src/client/index.js";
import { loadConfig } from "../../src/config.js";
import { isRevealField } from "../../src/domain/reveal.js";
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

/** The answer's data, or an error naming the problem cardvault answered with. */
function dataOf<T>(what: string, answer: { data?: T; error?: { code?: string; detail?: string } }): T {
  if (answer.data === undefined) throw new Error(`${what}: ${answer.error?.code} ${answer.error?.detail}`);
  return answer.data;
}

const remote = process.env.CARDVAULT_URL;
const { origin, token } =
  remote && process.env.CARDVAULT_TOKEN
    ? { origin: new URL(remote).origin, token: process.env.CARDVAULT_TOKEN }
    : await localCardvault();
// The program backend's calls go through the typed client (cardvault/client).
const cardvault = createCardvaultClient({ baseUrl: origin, token });
const card =
  process.env.CARDVAULT_CARD ??
  dataOf(
    "create card",
    await cardvault.POST("/v1/cards", { body: { type: "virtual", cardholderName: "Ada Lovelace" } }),
  ).publicToken;

const host = await startExampleHost({
  assetDir: await buildWeb(),
  cardvaultOrigin: origin,
  port: hostPort,
  mintSession: async ({ fields, targetOrigin }) =>
    dataOf(
      "mint reveal session",
      await cardvault.POST("/v1/cards/{publicToken}/reveal-sessions", {
        params: { path: { publicToken: card } },
        body: { fields: fields.filter(isRevealField), targetOrigin },
      }),
    ),
});
process.stdout.write(
  `cardvault: ${origin}  card: ${card}\nExample host: ${host.origin}/  (Ctrl-C to stop)\n`,
);
// cardvault's own server stops on these signals (startServer); the host must stop too for the process to end.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void host.close());
