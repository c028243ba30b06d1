// Native v1 routes every try counter has, the CVV's and the PIN's alike: read the status, unblock.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { TryState } from "../../domain/tries.js";
import type { Actor } from "../../services/audit.js";
import type { StatusChange } from "../../services/try-counter.js";
import { actorOf, errorResponses, PublicTokenParams, StatusChangeBody, TryStateView } from "./schemas.js";

export interface CounterOperations {
  status(actor: Actor, publicToken: string): Promise<TryState>;
  setStatus(
    actor: Actor,
    publicToken: string,
    status: TryState["status"],
    change: StatusChange,
  ): Promise<TryState>;
}

export function registerCounterRoutes(
  root: FastifyInstance,
  secret: "cvv" | "pin",
  operations: CounterOperations,
): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const label = secret.toUpperCase();

  app.get(
    `/v1/cards/:publicToken/${secret}/status`,
    {
      config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
      schema: {
        tags: [secret],
        summary: `The ${label} try counter: Unblocked or Blocked, remaining and maximum tries.`,
        params: PublicTokenParams,
        response: { 200: TryStateView, ...errorResponses },
      },
    },
    async (request) => operations.status(actorOf(request), request.params.publicToken),
  );

  app.post(
    `/v1/cards/:publicToken/${secret}/unblock`,
    {
      config: { scope: `${secret}:manage`, rateLimit: "manage", cardParam: "publicToken", idempotent: true },
      schema: {
        tags: [secret],
        summary: `Unblock the ${label}: the try counter goes back to its maximum, at any time — unless the ${label} spent its wrong-try budget (409 secret_compromised).`,
        params: PublicTokenParams,
        body: StatusChangeBody,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await operations.setStatus(actorOf(request), request.params.publicToken, "Unblocked", request.body);
      return reply.status(204).send(null);
    },
  );
}
