// The OpenAPI document (served at /openapi.json): @fastify/swagger's options, with one transform that makes
// every operation say what the server does. Invariant: the document is filled from what each route declares
// and what its scope sends, never edited route by hand — errors in the media type of the route's error shape
// (problems.ts setErrorShape records it), 429 with Retry-After wherever the route's contract declares a rate
// limit, 503 with Retry-After on Get Card Data (the "secure-data" class, which the device-crypto pool may
// refuse), and an operationId for every operation. Then, on the whole document: a body that {} satisfies is
// optional (app.ts reads a missing body as {}), and titled schemas (Problem, Card, one per event type and
// audit action) are named in components, with each discriminator's mapping.
import { STATUS_CODES } from "node:http";
import type { SwaggerOptions } from "@fastify/swagger";
import type { RouteOptions } from "fastify";

type Schema = Record<string, unknown>;

const RETRY_AFTER = {
  "Retry-After": { type: "integer", minimum: 0, description: "Seconds to wait before sending it again." },
};

/**
 * A stable operationId from the method and the route's URL template (not from registration order), so it only
 * changes when the route's own path does: `GET /v1/cards/:publicToken/cvv` → `getV1CardsByPublicTokenCvv`.
 * Unique because method and URL are. A route may declare its own in its schema instead.
 */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .split("/")
    .filter(Boolean)
    .flatMap((segment) =>
      segment.startsWith(":")
        ? ["by", ...segment.slice(1).split(/[^A-Za-z0-9]+/)]
        : segment.split(/[^A-Za-z0-9]+/),
    )
    .filter(Boolean)
    .map((word) => word[0]!.toUpperCase() + word.slice(1));
  return method.toLowerCase() + words.join("");
}

/** A documented error: the body's schema in the media type the route's API sends it in. */
function errorResponse(schema: Schema, mediaType: string, description: string, headers?: Schema) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { [mediaType]: { schema } },
  };
}

/** Fills one route's documented responses and operationId from its declared contract and error shape. */
function documentRoute(schema: Schema, route: RouteOptions): Schema {
  const { rateLimit, errorMediaType = "application/json" } = route.config ?? {};
  const declared = (schema.response ?? {}) as Record<string, Schema>;
  const responses: Record<string, Schema> = {};
  let errorSchema: Schema | undefined;
  for (const [status, response] of Object.entries(declared)) {
    if (Number(status) < 400) {
      responses[status] = response;
      continue;
    }
    errorSchema ??= response;
    responses[status] = errorResponse(response, errorMediaType, STATUS_CODES[status] ?? "Error");
  }
  if (errorSchema && rateLimit) {
    responses[429] = errorResponse(
      errorSchema,
      errorMediaType,
      "Too many attempts for this tenant or card (code rate_limited); retry after Retry-After seconds.",
      RETRY_AFTER,
    );
  }
  if (errorSchema && rateLimit === "secure-data") {
    responses[503] = errorResponse(
      errorSchema,
      errorMediaType,
      "Every device-crypto worker is busy (code overloaded); nothing was done or counted. Retry after Retry-After seconds.",
      RETRY_AFTER,
    );
  }
  return {
    ...schema,
    operationId: schema.operationId ?? operationIdOf([route.method].flat()[0]!, route.url),
    response: responses,
  };
}

/**
 * A body none of whose properties is required may be left out (app.ts reads a missing body as {}), so its
 * requestBody is optional: a generated client then needs no `body: {}`. @fastify/swagger marks every body
 * required, because Fastify itself would demand one.
 */
function optionalBodies(document: Schema): Schema {
  const paths = (document.paths ?? {}) as Record<string, Record<string, Schema>>;
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      const body = operation.requestBody as
        | { required?: boolean; content?: Record<string, Schema> }
        | undefined;
      if (!body?.content) continue;
      const schemas = Object.values(body.content).map((media) => (media.schema ?? {}) as Schema);
      if (schemas.every(acceptsEmptyObject)) body.required = false;
    }
  }
  return document;
}

/** An object schema that {} satisfies: no required property and no minimum number of them. */
function acceptsEmptyObject(schema: Schema): boolean {
  return (
    schema.type === "object" &&
    ((schema.required as unknown[] | undefined) ?? []).length === 0 &&
    ((schema.minProperties as number | undefined) ?? 0) === 0
  );
}

/** A schema's title that names it in components.schemas (the event variants, Problem…). */
const SCHEMA_NAME = /^[A-Z][A-Za-z0-9]*$/;

/**
 * Moves every schema titled with a name (SCHEMA_NAME) into components.schemas, referenced where it was, and
 * gives each discriminator the mapping of its variants, as OpenAPI requires for a discriminator to select a
 * variant (OpenAPI 3.1 §4.8.25). The routes keep their schemas inline (one schema validates and documents);
 * this only names them, so a generated client gets one type per name. Two different schemas of one name throw.
 */
function nameTitledSchemas(document: Schema): Schema {
  document.components ??= {};
  const components = document.components as Schema;
  components.schemas ??= {};
  const named = components.schemas as Record<string, Schema>;
  const nameOf = (schema: Schema): string | undefined => {
    if (typeof schema.title !== "string" || !SCHEMA_NAME.test(schema.title)) return undefined;
    const existing = named[schema.title];
    if (existing && JSON.stringify(existing) !== JSON.stringify(schema)) {
      throw new Error(`Two different schemas are titled ${schema.title}`);
    }
    named[schema.title] = schema;
    return schema.title;
  };
  const visit = (node: unknown): unknown => {
    if (!node || typeof node !== "object") return node;
    if (Array.isArray(node)) return node.map(visit);
    const schema = node as Schema;
    const discriminator = schema.discriminator as { propertyName: string } | undefined;
    const variants = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
    if (discriminator && variants) {
      const mapping: Record<string, string> = {};
      for (const variant of variants) {
        const tag = (variant.properties as Record<string, Schema> | undefined)?.[discriminator.propertyName];
        const value = tag?.const ?? (tag?.enum as unknown[] | undefined)?.[0];
        if (typeof variant.title === "string" && value !== undefined) {
          mapping[String(value)] = `#/components/schemas/${variant.title}`;
        }
      }
      schema.discriminator = { ...discriminator, mapping };
    }
    for (const [key, value] of Object.entries(schema)) schema[key] = visit(value);
    const name = nameOf(schema);
    return name ? { $ref: `#/components/schemas/${name}` } : schema;
  };
  document.paths = visit(document.paths);
  return document;
}

/** @fastify/swagger's options for the served document: servers from config.publicUrl, the project's license. */
export function openapiOptions(publicUrl: string): SwaggerOptions {
  return {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "cardvault",
        version: "1",
        description: "Card issuer's CVV & PIN service: cards, CVVs and PINs with try counters.",
        // package.json's license, as an SPDX identifier (OpenAPI 3.1).
        license: { name: "Apache-2.0", identifier: "Apache-2.0" },
      },
      servers: [{ url: publicUrl }],
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
      security: [{ bearer: [] }],
    },
    // The paths are the ones the server routes; a public URL with a path of its own is a prefix in front.
    stripBasePath: false,
    transform: ({ schema, url, route }) => ({
      schema: schema && !schema.hide ? documentRoute(schema as Schema, route as RouteOptions) : schema,
      url,
    }),
    transformObject: (document) =>
      nameTitledSchemas(
        optionalBodies(("openapiObject" in document ? document.openapiObject : {}) as Schema),
      ),
  };
}
