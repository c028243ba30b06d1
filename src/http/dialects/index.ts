// Vendor-compatible dialects: each is an encapsulated Fastify plugin under the vendor's own base path, with
// its own error shape, translating to the same services as the native API. No business rule lives here.
import type { FastifyInstance } from "fastify";
import type { Services } from "../../runtime.js";
import { registerPayblrDialect } from "./payblr/index.js";
import { registerPismoDialect } from "./pismo/index.js";
import { registerThreddDialect } from "./thredd/index.js";

export async function registerDialects(app: FastifyInstance, services: Services): Promise<void> {
  await registerPismoDialect(app, { rotation: services.rotation, aliases: services.cardAliases });

  // Thredd Cards API (/api/v1) and Payblr PSP (/thr/thredd, a Thredd wrapper): one shared translation.
  const thredd = {
    cards: services.cards,
    cvv: services.cvv,
    pin: services.pin,
    secureData: services.secureData,
  };
  await registerThreddDialect(app, thredd);
  await registerPayblrDialect(app, thredd);
}
