// Pismo-compatible CVV rotation at /pismo (a base-URL swap for Pismo clients): snake_case bodies, Pismo's
// error object {error_code, message}, and the status codes Pismo documents. `cardId` is Pismo's integer card id
// of a card imported with one (services/card-aliases.ts), else the card's public token; answers give `id` as an
// integer, as Pismo's schema has it. Translation only: the rotation service holds every rule.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import type { CardAliasService } from "../../../services/card-aliases.js";
import type { RotationService } from "../../../services/rotation.js";
import { type ErrorShape, setErrorShape } from "../../problems.js";
import { actorOf } from "../../v1/schemas.js";

const CardParams = Type.Object(
  {
    cardId: Type.String({
      pattern: "^[0-9]{1,15}$",
      description: "Pismo's card id (an integer), or the card's public token.",
    }),
  },
  { additionalProperties: false },
);
const PismoError = Type.Object({ error_code: Type.String(), message: Type.String() });
const errors = { 400: PismoError, 401: PismoError, 403: PismoError, 404: PismoError, 409: PismoError };

/**
 * Pismo's error object {error_code, message} (Pismo API reference, "ErrorObject", e.g. "Reset CVV2 retry
 * counter": https://developers.pismo.io/pismo-docs/reference/patch-card-config-reset-cvv2-try-counter); the
 * code is ours, upper-cased as Pismo's codes are, and field errors are appended to the message.
 */
const pismoErrorShape: ErrorShape = {
  body(error) {
    const fields = error.fields ? Object.entries(error.fields).map(([f, m]) => `${f} ${m.join(", ")}`) : [];
    return { error_code: error.code.toUpperCase(), message: [error.message, ...fields].join(" — ") };
  },
  // Pismo's description of a 404 ("Rotate virtual card CVV", responses).
  notFoundMessage: "The specified resource was not found.",
};

export async function registerPismoDialect(
  root: FastifyInstance,
  deps: { rotation: RotationService; aliases: CardAliasService },
): Promise<void> {
  await root.register(
    async (scope) => {
      const app = scope.withTypeProvider<TypeBoxTypeProvider>();
      setErrorShape(app, pismoErrorShape);
      const tags = ["pismo"];

      app.post(
        "/v2/cards/:cardId/reset-cvv",
        {
          config: { scope: "cvv:manage", rateLimit: "manage", cardParam: "cardId", idempotent: true },
          schema: {
            tags,
            summary: "Pismo: force a virtual card's CVV rotation.",
            params: CardParams,
            body: Type.Object(
              { service_code: Type.Optional(Type.String({ pattern: "^[0-9]{3}$" })) },
              { additionalProperties: false },
            ),
            response: { 200: Type.Object({ success: Type.Boolean() }), ...errors },
          },
        },
        async (request) => {
          const { service_code } = request.body;
          const actor = actorOf(request);
          const token = await deps.aliases.byPismoId(actor, request.params.cardId);
          await deps.rotation.rotate(actor, token, { serviceCode: service_code });
          return { success: true };
        },
      );

      app.patch(
        "/v2/cards/:cardId/cvv-rotation",
        {
          config: { scope: "cvv:manage", rateLimit: false, cardParam: "cardId" },
          schema: {
            tags,
            summary: "Pismo: set or change the CVV rotation interval in hours.",
            params: CardParams,
            body: Type.Object(
              { cvv_rotation_interval_hours: Type.Integer({ minimum: 1, maximum: 8784 }) },
              { additionalProperties: false },
            ),
            response: {
              200: Type.Object({ id: Type.Integer(), cvv_rotation_interval_hours: Type.Integer() }),
              ...errors,
            },
          },
        },
        async (request) => {
          const hours = request.body.cvv_rotation_interval_hours;
          const actor = actorOf(request);
          const token = await deps.aliases.byPismoId(actor, request.params.cardId);
          const view = await deps.rotation.setInterval(actor, token, hours);
          return {
            id: Number(request.params.cardId),
            cvv_rotation_interval_hours: view.intervalHours ?? hours,
          };
        },
      );

      app.delete(
        "/v2/cards/:cardId/cvv-rotation",
        {
          config: { scope: "cvv:manage", rateLimit: false, cardParam: "cardId" },
          schema: {
            tags,
            summary: "Pismo: delete the CVV rotation interval.",
            params: CardParams,
            response: { 204: Type.Null(), ...errors },
          },
        },
        async (request, reply) => {
          const actor = actorOf(request);
          await deps.rotation.deleteInterval(
            actor,
            await deps.aliases.byPismoId(actor, request.params.cardId),
          );
          return reply.status(204).send(null);
        },
      );
    },
    { prefix: "/pismo" },
  );
}
