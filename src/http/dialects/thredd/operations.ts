// The Thredd operations as route builders: each mounts one operation at whatever path a dialect gives it, so
// the Thredd Cards API and Payblr (which wraps Thredd under its own paths) share one translation. Each route
// parses with a schema, needs the same scope as its native twin, calls one service and shapes the answer.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { AppError, validationFailed } from "../../../domain/errors.js";
import type { CardService } from "../../../services/cards.js";
import type { CvvService } from "../../../services/cvv.js";
import type { PinService } from "../../../services/pin.js";
import type { SecureDataService } from "../../../services/secure-data.js";
import { actorOf } from "../../v1/schemas.js";
import {
  CardDataBody,
  CardDataView,
  CvvStatusView,
  CvvStatusWithTriesView,
  CvvView,
  cardStatusFromThredd,
  cvvStatusBody,
  expiryFromValidityDate,
  newCardFromThredd,
  PinStatusView,
  PinView,
  PublicTokenParams,
  pinDigits,
  pinStatusView,
  requireJsonContentType,
  SetPinBody,
  StatusChangeBody,
  ThreddCardView,
  ThreddNewCardBody,
  ThreddNewCardView,
  ThreddStatusBody,
  ThreddStatusView,
  threddCardView,
  threddErrors,
  threddNewCardView,
  threddStatusView,
  triesView,
  withFieldNames,
} from "./shapes.js";

export interface ThreddDeps {
  cards: CardService;
  cvv: CvvService;
  pin: PinService;
  secureData: SecureDataService;
}

const NoContent = { 204: Type.Null(), ...threddErrors };

export function threddOperations(root: FastifyInstance, deps: ThreddDeps, tag: string) {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  const tags = [tag];

  return {
    /** Create Card; Thredd answers 200, Payblr 201. */
    createCard(path: string, status: 200 | 201) {
      // The success status is fixed per dialect; typed as 200 only so the type provider knows the schema.
      const response = { [status]: ThreddNewCardView, ...threddErrors } as {
        200: typeof ThreddNewCardView;
      } & typeof threddErrors;
      app.post(
        path,
        {
          config: { scope: "cards:write", rateLimit: false, cardParam: false, idempotent: true },
          schema: {
            tags,
            summary: "Create a card (Thredd fields).",
            body: ThreddNewCardBody,
            response,
          },
        },
        async (request, reply) => {
          const card = await withFieldNames(
            deps.cards.create(actorOf(request), newCardFromThredd(request.body)),
            {
              expiry: "expiryDate",
              cardholderName: "cardHolder",
            },
          );
          return reply.status(status as 200).send(threddNewCardView(card));
        },
      );
    },

    getCard(path: string) {
      app.get(
        path,
        {
          config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Read a card (Thredd fields; the PAN masked).",
            params: PublicTokenParams,
            response: { 200: ThreddCardView, ...threddErrors },
          },
        },
        async (request) => threddCardView(await deps.cards.get(actorOf(request), request.params.publicToken)),
      );
    },

    getCardStatus(path: string) {
      app.get(
        path,
        {
          config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Read the card status as a Thredd cardStatusCode.",
            params: PublicTokenParams,
            response: { 200: ThreddStatusView, ...threddErrors },
          },
        },
        async (request) =>
          threddStatusView(await deps.cards.get(actorOf(request), request.params.publicToken)),
      );
    },

    updateCardStatus(path: string) {
      app.put(
        path,
        {
          config: { scope: "cards:write", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary:
              "Update the card status by any Thredd cardStatusCode (docs/dialects.md maps each onto the life cycle).",
            params: PublicTokenParams,
            body: ThreddStatusBody,
            response: { 200: ThreddStatusView, ...threddErrors },
          },
        },
        async (request) => {
          const { updatedBy, description, validityDate } = request.body;
          const status = cardStatusFromThredd(request.body);
          const change = {
            status,
            updatedBy,
            description,
            ...(validityDate !== undefined ? { statedExpiry: expiryFromValidityDate(validityDate) } : {}),
          };
          try {
            const card = await deps.cards.update(actorOf(request), request.params.publicToken, change);
            return threddStatusView(card, { updatedBy, description });
          } catch (error) {
            // The service names the card's expiry; the client sent it as validityDate.
            if (error instanceof AppError && error.fields?.expiry) {
              throw validationFailed("validityDate", error.fields.expiry.join(" "));
            }
            throw error;
          }
        },
      );
    },

    getCvv(path: string) {
      app.get(
        path,
        {
          config: { scope: "cvv:read", rateLimit: "reveal", cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Read the card's current CVV (audited).",
            params: PublicTokenParams,
            response: { 200: CvvView, ...threddErrors },
          },
        },
        async (request) => {
          const { cvv } = await deps.cvv.get(actorOf(request), request.params.publicToken);
          return { cvv, resultStatus: "Success" as const };
        },
      );
    },

    /** Thredd documents {status}; Payblr adds the remaining tries. */
    getCvvStatus(path: string, options: { withTries: boolean }) {
      app.get(
        path,
        {
          config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary: "The CVV status: Unblocked or Blocked (Payblr adds the remaining tries).",
            params: PublicTokenParams,
            response: { 200: options.withTries ? CvvStatusWithTriesView : CvvStatusView, ...threddErrors },
          },
        },
        async (request) => {
          const state = await deps.cvv.status(actorOf(request), request.params.publicToken);
          return options.withTries
            ? { status: state.status, remainingTries: triesView(state) }
            : { status: state.status };
        },
      );
    },

    /** Update CVV Status (Blocked | Unblocked) → 204. */
    updateCvvStatus(path: string, options: { statusRequired: boolean }) {
      app.put(
        path,
        {
          config: { scope: "cvv:manage", rateLimit: "manage", cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Block or unblock the CVV; Unblocked restores every try.",
            params: PublicTokenParams,
            body: cvvStatusBody(options.statusRequired),
            response: NoContent,
          },
        },
        async (request, reply) => {
          const { status, description, updatedBy } = request.body;
          await deps.cvv.setStatus(actorOf(request), request.params.publicToken, status ?? "Unblocked", {
            description,
            updatedBy,
          });
          return reply.status(204).send(null);
        },
      );
    },

    /**
     * The older unblock: "execute a POST call to the cards CVV endpoint" (Thredd Cards API, "Card Verification
     * Value (CVV)", "Unblock a Card's CVV"); Thredd's current pages use PUT …/cvv/status (updateCvvStatus).
     */
    unblockCvv(path: string) {
      app.post(
        path,
        {
          config: { scope: "cvv:manage", rateLimit: "manage", cardParam: "publicToken", idempotent: true },
          schema: {
            tags,
            summary: "Unblock the CVV.",
            params: PublicTokenParams,
            body: StatusChangeBody,
            response: NoContent,
          },
        },
        async (request, reply) => {
          await deps.cvv.setStatus(actorOf(request), request.params.publicToken, "Unblocked", request.body);
          return reply.status(204).send(null);
        },
      );
    },

    setPin(path: string) {
      app.post(
        path,
        {
          config: { scope: "pin:write", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Set the PIN (cardPin: 4–12 digits, string or number); the PIN counter starts again.",
            params: PublicTokenParams,
            body: SetPinBody,
            response: NoContent,
          },
        },
        async (request, reply) => {
          await deps.pin.set(actorOf(request), request.params.publicToken, pinDigits(request.body.cardPin));
          return reply.status(204).send(null);
        },
      );
    },

    getPin(path: string) {
      app.get(
        path,
        {
          config: { scope: "pin:read", rateLimit: "reveal", cardParam: "publicToken" },
          schema: {
            tags,
            summary: "Read the card's PIN (audited).",
            params: PublicTokenParams,
            response: { 200: PinView, ...threddErrors },
          },
        },
        async (request) => deps.pin.get(actorOf(request), request.params.publicToken),
      );
    },

    getPinStatus(path: string) {
      app.get(
        path,
        {
          config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" },
          schema: {
            tags,
            summary: "The PIN status: Unblocked or Blocked, with the remaining tries.",
            params: PublicTokenParams,
            response: { 200: PinStatusView, ...threddErrors },
          },
        },
        async (request) => pinStatusView(await deps.pin.status(actorOf(request), request.params.publicToken)),
      );
    },

    /** Thredd answers 415 without Content-Type: application/json; Payblr shows the POST with no body at all. */
    unblockPin(path: string, options: { requireJson: boolean }) {
      app.post(
        path,
        {
          config: { scope: "pin:manage", rateLimit: "manage", cardParam: "publicToken", idempotent: true },
          ...(options.requireJson ? { preValidation: requireJsonContentType } : {}),
          schema: {
            tags,
            summary: options.requireJson
              ? "Unblock the PIN: the counter goes back to its maximum. Needs Content-Type: application/json."
              : "Unblock the PIN: the counter goes back to its maximum. The body is optional.",
            params: PublicTokenParams,
            body: StatusChangeBody,
            response: NoContent,
          },
        },
        async (request, reply) => {
          await deps.pin.setStatus(actorOf(request), request.params.publicToken, "Unblocked", request.body);
          return reply.status(204).send(null);
        },
      );
    },

    /** Get Card Data; never idempotent (a replayed answer would deliver the secrets twice). */
    getCardData(path: string) {
      app.post(
        path,
        {
          config: { scope: "cards:secure-data", rateLimit: "secure-data", cardParam: "publicToken" },
          schema: {
            tags,
            summary:
              "Get Card Data: PAN, CVV and expiry encrypted under the device's RSA-wrapped session key.",
            params: PublicTokenParams,
            body: CardDataBody,
            response: { 200: CardDataView, ...threddErrors },
          },
        },
        async (request) => {
          const answer = await deps.secureData.deliver(actorOf(request), request.params.publicToken, {
            wrappedKey: Buffer.from(request.body.key, "base64"),
          });
          if (answer.kind !== "rsa") throw new Error("an RSA request answered in another form");
          const { iv, encryptedPayload, signatureOfPayloadAndIv } = answer;
          return { iv, encryptedPayload, signatureOfPayloadAndIv };
        },
      );
    },
  };
}
