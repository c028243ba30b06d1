// The Thredd Cards API at /api/v1 (Thredd's own base path): a Thredd client changes its base URL and keeps
// working. Paths as Thredd documents them, plus the older unblock that Thredd's CVV page describes as "execute
// a POST call to the cards CVV endpoint" (Thredd Cards API, "Card Verification Value (CVV)", "Unblock a
// Card's CVV": https://cardsapidocs.globalprocessing.com/docs/card-verification-value-cvv). Translation only;
// the operations and shapes Payblr shares live beside this file, in operations.ts and shapes.ts.
import type { FastifyInstance } from "fastify";
import { type ThreddDeps, threddOperations } from "./operations.js";
import { prepareThreddScope } from "./shapes.js";

export const THREDD_PREFIX = "/api/v1";

export async function registerThreddDialect(root: FastifyInstance, deps: ThreddDeps): Promise<void> {
  await root.register(
    async (scope) => {
      prepareThreddScope(scope);
      const op = threddOperations(scope, deps, "thredd");
      op.createCard("/cards", 200);
      op.getCard("/cards/:publicToken");
      op.getCardStatus("/cards/:publicToken/status");
      op.updateCardStatus("/cards/:publicToken/status");
      op.getCvv("/cards/:publicToken/cvv");
      op.unblockCvv("/cards/:publicToken/cvv");
      op.getCvvStatus("/cards/:publicToken/cvv/status", { withTries: false });
      op.updateCvvStatus("/cards/:publicToken/cvv/status", { statusRequired: true });
      op.setPin("/cards/:publicToken/pin");
      op.getPin("/cards/:publicToken/pin");
      op.getPinStatus("/cards/:publicToken/pin/status");
      op.unblockPin("/cards/:publicToken/pin/unblock", { requireJson: true });
      op.getCardData("/cards/:publicToken/encrypted");
    },
    { prefix: THREDD_PREFIX },
  );
}
