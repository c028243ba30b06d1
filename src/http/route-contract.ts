// Route contracts: every authenticated route states in its own options (the Fastify route `config`) the scope
// it needs, its rate-limit class (or false) and the path parameter that names its card (or false). The app
// reads them here, once, when the route is registered, and refuses to start on a contract that cannot hold: a
// class or card parameter left unsaid, or a card parameter its URL does not have. Nothing is inferred from a
// scope or from a parameter's name, so the limits a route gets are the ones written beside it.
import type { RouteOptions } from "fastify";
import type { RateLimitClass } from "../domain/rate-limit.js";
import type { Scope } from "./auth.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The scope a route needs; routes without one are public (health, docs, the reveal page's own calls). */
    scope?: Scope;
    /**
     * Brute-force limits per tenant, and per card when cardParam names one; false: none. Required with a scope.
     * The attempt is counted in the service's transaction (services/rate-limits.ts), through the actor.
     */
    rateLimit?: RateLimitClass | false;
    /** The path parameter that names the card the route acts on; false: none. Required with a scope. */
    cardParam?: string | false;
  }
}

/** One authenticated route's contract, as declared, for one method. */
export interface RouteContract {
  method: string;
  url: string;
  scope: Scope;
  rateLimit: RateLimitClass | false;
  cardParam: string | false;
}

/** The names of a route URL's path parameters, as Fastify's router reads them (`::` is a literal colon). */
export function pathParams(url: string): string[] {
  return [...url.replaceAll("::", "").matchAll(/:([^/:.(-]+)/g)].map((match) => match[1]!);
}

/**
 * The contracts a route declares (one per method; none for a public route). Throws, naming the route and what
 * to declare, when the contract is incomplete or names a card parameter that is not in the route's URL.
 */
export function routeContract(route: Pick<RouteOptions, "method" | "url" | "config">): RouteContract[] {
  const { scope, rateLimit, cardParam } = route.config ?? {};
  const methods = [route.method].flat();
  const where = `${methods.join(",")} ${route.url}`;
  if (cardParam) {
    const params = pathParams(route.url);
    if (!params.includes(cardParam)) {
      throw new Error(
        `Route ${where}: cardParam "${cardParam}" is not a parameter of its URL (its parameters: ${params.join(", ") || "none"}).`,
      );
    }
  }
  if (!scope) {
    if (rateLimit) {
      throw new Error(
        `Route ${where}: rateLimit "${rateLimit}" needs a scope; limits count per tenant, so only authenticated routes have them.`,
      );
    }
    return [];
  }
  if (rateLimit === undefined) {
    throw new Error(
      `Route ${where}: declare config.rateLimit, its rate-limit class ("verify", "reveal", "secure-data", "manage") or false; nothing is inferred from its scope.`,
    );
  }
  if (cardParam === undefined) {
    throw new Error(
      `Route ${where}: declare config.cardParam, the path parameter that names its card, or false; nothing is inferred from parameter names.`,
    );
  }
  return methods.map((method) => ({ method, url: route.url, scope, rateLimit, cardParam }));
}
