// The Payblr PSP API at /thr/thredd: Payblr wraps Thredd, so these are the Thredd operations under Payblr's
// own paths (card-cvv/…, card-pin/…) with Payblr's differences, each as Payblr documents it:
// - Create Card answers 201 Created (Payblr PSP API, "Card issuance":
//   https://apim-pyb-psp-eu-dev-01.developer.azure-api.net/card-issuance);
// - CVV status "also includes the CVV status and remaining tries", and the CVV-status PUT is "4. Unblock CVV",
//   shown without a body, so a missing status means Unblocked (Payblr PSP API, "CVV & PIN Management":
//   https://apim-pyb-psp-eu-dev-01.developer.azure-api.net/CVV-PIN-management).
import type { FastifyInstance } from "fastify";
import { type ThreddDeps, threddOperations } from "../thredd/operations.js";
import { prepareThreddScope } from "../thredd/shapes.js";

export const PAYBLR_PREFIX = "/thr/thredd";

export async function registerPayblrDialect(root: FastifyInstance, deps: ThreddDeps): Promise<void> {
  await root.register(
    async (scope) => {
      prepareThreddScope(scope);
      const op = threddOperations(scope, deps, "payblr");
      op.createCard("/cards", 201);
      op.getCard("/cards/:publicToken");
      op.getCardStatus("/cards/:publicToken/status");
      op.updateCardStatus("/cards/:publicToken/status");
      op.getCvvStatus("/card-cvv/:publicToken/cvv/status", { withTries: true });
      op.updateCvvStatus("/card-cvv/:publicToken/cvv/status", { statusRequired: false });
      op.getPin("/card-pin/:publicToken/pin");
      op.setPin("/card-pin/:publicToken/pin");
      op.getPinStatus("/card-pin/:publicToken/pin/status");
      op.unblockPin("/card-pin/:publicToken/pin/unblock", { requireJson: false });
      op.getCardData("/cards/:publicToken/encrypted");
    },
    { prefix: PAYBLR_PREFIX },
  );
}
