// The app's authenticated routes as they declare themselves (app.routeContracts), for the suites that run a
// check against every route: a new route is covered as soon as it is registered, with the card parameter it
// names rather than one guessed from parameter names. Also the smallest body each route accepts, so that only
// the property under test decides an answer.
import { randomBytes } from "node:crypto";
import type { CardvaultApp } from "../../src/http/app.js";
import type { RouteContract } from "../../src/http/route-contract.js";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface DeclaredRoute extends RouteContract {
  method: Method;
}

/** Every authenticated route but the HEAD twins of GETs (answered like their GET, without a body). */
export function declaredRoutes(app: CardvaultApp): DeclaredRoute[] {
  return app.routeContracts.filter((route): route is DeclaredRoute => route.method !== "HEAD");
}

/** The route's URL for a card: the declared card parameter filled in, any other parameter with "0". */
export function urlFor(route: Pick<RouteContract, "url" | "cardParam">, publicToken: string): string {
  return route.url.replace(/:([^/:.(-]+)/g, (_match, name: string) =>
    name === route.cardParam ? publicToken : "0",
  );
}

/** A well-formed RSA-OAEP-wrapped key (the right length for RSA-4096); it reaches the card look-up first. */
export const WRAPPED_KEY = randomBytes(512).toString("base64");

/** A body that passes validation on each route. */
export function validBody(route: Pick<RouteContract, "method" | "url">): unknown {
  const { method, url } = route;
  if (method === "GET" || method === "DELETE") return undefined;
  if (url.endsWith("/secure-data") || url.endsWith("/encrypted")) return { key: WRAPPED_KEY };
  if (method === "PUT" && url.endsWith("/cvv/status")) return { status: "Unblocked" };
  if (method === "PUT" && url.endsWith("/status")) return { cardStatusCode: "00" };
  if (method === "POST" && url.endsWith("/pin") && !url.startsWith("/v1/")) return { cardPin: "1234" };
  if (url === "/v1/cards") return { type: "virtual" };
  if (url.endsWith("/reveal-sessions")) return { fields: ["pan"], targetOrigin: "https://app.example" };
  if (url.endsWith("/cvv/verify")) return { cvv: "123" };
  if (url.endsWith("/pin/verify")) return { pin: "1234" };
  if (url.endsWith("/pin")) return { pin: "1234" };
  if (url.endsWith("/cvv/rotation")) return { intervalHours: 24 };
  if (url.endsWith("/cvv-rotation")) return { cvv_rotation_interval_hours: 24 };
  if (url === "/v1/test-clocks") return { frozenTime: "2026-01-01T00:00:00Z" };
  if (url.endsWith("/advance")) return { to: "2027-01-01T00:00:00Z" };
  if (method === "PATCH") return { cardholderName: "Someone" };
  return {};
}
