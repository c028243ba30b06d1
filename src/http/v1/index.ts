// The native API, version 1.
import type { FastifyInstance } from "fastify";
import type { Services } from "../../runtime.js";
import { registerAuditRoutes } from "./audit.js";
import { registerCardRoutes } from "./cards.js";
import { registerCvvRoutes } from "./cvv.js";
import { registerPinRoutes } from "./pin.js";

export function registerV1Routes(app: FastifyInstance, services: Services): void {
  registerCardRoutes(app, services.cards);
  registerCvvRoutes(app, services.cvv);
  registerPinRoutes(app, services.pin);
  registerAuditRoutes(app, services.audit);
}
