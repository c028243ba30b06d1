// The native API, version 1.
import type { FastifyInstance } from "fastify";
import type { Services } from "../../runtime.js";
import { registerAuditRoutes } from "./audit.js";
import { registerCardImportRoutes } from "./card-imports.js";
import { registerCardRoutes } from "./cards.js";
import { registerCvvRoutes } from "./cvv.js";
import { registerEventRoutes } from "./events.js";
import { registerPinRoutes } from "./pin.js";
import { registerRevealRoutes } from "./reveal.js";
import { registerRotationRoutes } from "./rotation.js";
import { registerSecureDataRoutes } from "./secure-data.js";
import { registerTestClockRoutes } from "./test-clocks.js";
import { registerWebhookRoutes } from "./webhooks.js";

export function registerV1Routes(app: FastifyInstance, services: Services): void {
  registerCardRoutes(app, services.cards);
  registerCardImportRoutes(app, services.cardImport);
  registerCvvRoutes(app, services.cvv);
  registerPinRoutes(app, services.pin);
  registerAuditRoutes(app, services.audit);
  registerRotationRoutes(app, services.rotation);
  registerTestClockRoutes(app, services.testClocks);
  registerEventRoutes(app, services.events);
  registerWebhookRoutes(app, services.webhooks);
  registerSecureDataRoutes(app, services.secureData);
  registerRevealRoutes(app, services.reveal);
}
