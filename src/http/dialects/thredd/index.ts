// The Thredd Cards API at /api/v1 (Thredd's own base path): a Thredd client changes its base URL and keeps
// working. Paths as Thredd documents them, plus the seed's legacy "POST /cards/{publicToken}/cvv" unblock.
// Translation only; the shared operations and shapes live in ../thredd-operations.ts and ../thredd-shapes.ts.
import type { FastifyInstance } from "fastify";
import { type ThreddDeps, threddOperations } from "../thredd-operations.js";
import { prepareThreddScope } from "../thredd-shapes.js";

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
      op.unblockPin("/cards/:publicToken/pin/unblock");
      op.getCardData("/cards/:publicToken/encrypted");
    },
    { prefix: THREDD_PREFIX },
  );
}
