// Native v1: import a card program's existing cards (issue 15). The body is NDJSON, one card a line, bounded
// (CARD_IMPORT_MAX_BYTES) so that an import is processed within the request: the answer is the finished import
// — its id, counts and rejected lines — with nothing left running to poll, fail or lose on a restart; and a
// request cut off half-way is simply sent again (cards already imported count as already present). A portfolio
// larger than a body goes in several requests, or through `cardvault cards import`.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { AppError } from "../../domain/errors.js";
import type { CardImportService } from "../../services/card-import.js";
import { actorOf, errorResponses } from "./schemas.js";

/** 4 MiB: about 16,000 cards, a few seconds of work, well inside the server's 30 s request timeout. */
export const CARD_IMPORT_MAX_BYTES = 4 * 1024 * 1024;

const CardImportView = Type.Object({
  id: Type.String(),
  dryRun: Type.Boolean(),
  lines: Type.Integer({ description: "Non-blank lines read." }),
  imported: Type.Integer(),
  alreadyPresent: Type.Integer({
    description: "Cards whose PAN the tenant already has (not written again).",
  }),
  rejected: Type.Integer(),
  rejections: Type.Array(
    Type.Object({
      line: Type.Integer({ description: "1-based line number in the body." }),
      reason: Type.String({ description: "The field and what is wrong with it; never the line's content." }),
    }),
  ),
  createdAt: Type.String(),
  finishedAt: Type.String(),
});

export function registerCardImportRoutes(root: FastifyInstance, imports: CardImportService): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();

  app.post(
    "/v1/card-imports",
    {
      config: { scope: "cards:import", rateLimit: false, cardParam: false },
      bodyLimit: CARD_IMPORT_MAX_BYTES,
      schema: {
        tags: ["cards"],
        summary:
          "Import existing cards: an application/x-ndjson body, one card a line (docs/migrating.md); processed in the request.",
        querystring: Type.Object(
          {
            dryRun: Type.Optional(
              Type.Union([Type.Literal("true"), Type.Literal("false")], {
                description: "true: check every line, write nothing.",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: CardImportView, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (typeof request.body !== "string") {
        throw new AppError(
          "unsupported_media_type",
          "Send the cards as Content-Type: application/x-ndjson, one JSON object a line.",
        );
      }
      if (request.body.trim() === "") {
        throw new AppError("validation_failed", "The body has no cards: send one JSON object a line.", {
          fields: { body: ["must hold at least one card line"] },
        });
      }
      const view = await imports.importBody(actorOf(request), request.body, {
        dryRun: request.query.dryRun === "true",
      });
      return reply.status(201).send(view);
    },
  );

  app.get(
    "/v1/card-imports/:importId",
    {
      config: { scope: "cards:import", rateLimit: false, cardParam: false },
      schema: {
        tags: ["cards"],
        summary: "An import's counts and its rejected lines' numbers and reasons.",
        params: Type.Object({ importId: Type.String({ maxLength: 64 }) }),
        response: { 200: CardImportView, ...errorResponses },
      },
    },
    async (request) => imports.get(actorOf(request), request.params.importId),
  );
}
