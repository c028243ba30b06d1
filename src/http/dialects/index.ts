// Vendor-compatible dialects: each is an encapsulated Fastify plugin under the vendor's own base path, with
// its own error shape, translating to the same services as the native API. No business rule lives here.
import type { FastifyInstance } from "fastify";
import type { Services } from "../../runtime.js";
import { registerPismoDialect } from "./pismo/index.js";

export async function registerDialects(app: FastifyInstance, services: Services): Promise<void> {
  await registerPismoDialect(app, { rotation: services.rotation });
}
