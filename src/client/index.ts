// cardvault's typed HTTP client (`cardvault/client`): openapi-fetch over the types openapi-typescript generates
// from the served /openapi.json (api-types.ts, `npm run generate:client`; a test fails when it is stale). Every
// path, parameter, body and answer — problem+json errors included — is typed from the document, so a call
// compiles only if the server would understand it. The bearer token is added to each request (a function may
// renew it), never logged or put anywhere else.
import createFetchClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, operations, paths } from "./api-types.js";

export type { components, operations, paths };
export type CardvaultClient = Client<paths>;

/** An RFC 9457 problem: every error of the native API. */
export type Problem = components["schemas"]["Problem"];
/** A card as the native API shows it (never its PAN, CVV or PIN). */
export type Card = components["schemas"]["Card"];
/** A CVV or PIN try counter. */
export type TryState = components["schemas"]["TryState"];
/** An event of GET /v1/events (and of cardvault-format webhooks): check `type` to narrow `data`. */
export type CardvaultEvent =
  paths["/v1/events"]["get"]["responses"][200]["content"]["application/json"]["items"][number];

export interface CardvaultClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /** Where cardvault is served, e.g. https://cards.example.com (its OpenAPI document's server). */
  baseUrl: string;
  /** A bearer token (JWT) or a function giving the current one (called for every request). */
  token: string | (() => string | Promise<string>);
}

/**
 * A typed client: `client.POST("/v1/cards", { body: { type: "virtual" } })` resolves to `{ data }` (the 201
 * body) or `{ error }` (the problem), with `response` for the status and headers.
 */
export function createCardvaultClient(options: CardvaultClientOptions): CardvaultClient {
  const { token, ...clientOptions } = options;
  const client = createFetchClient<paths>(clientOptions);
  const bearer: Middleware = {
    async onRequest({ request }) {
      const current = typeof token === "function" ? await token() : token;
      request.headers.set("authorization", `Bearer ${current}`);
      return request;
    },
  };
  client.use(bearer);
  return client;
}
