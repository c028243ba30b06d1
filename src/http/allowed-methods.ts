// Which methods a path has, for answering a method it lacks with 405 and an Allow header (RFC 9110 §15.5.6)
// instead of a 404: a path that exists is not "not found". Invariant: the table is filled from every route as
// it is registered (app.ts's onRoute, dialect scopes included) and matched with the same router Fastify routes
// with (find-my-way), so Allow lists exactly the methods that would have been routed.
import FindMyWay from "find-my-way";

export interface AllowedMethods {
  /** Records a registered route (every method it answers). */
  add(methods: string | readonly string[], url: string): void;
  /** The methods the request's path has, in a stable order; empty when the path itself is unknown. */
  of(url: string): string[];
}

const NOOP = () => {};

export function createAllowedMethods(): AllowedMethods {
  const router = FindMyWay();
  const methods = new Set<string>();
  return {
    add(routeMethods, url) {
      for (const method of [routeMethods].flat()) {
        methods.add(method);
        router.on(method as FindMyWay.HTTPMethod, url, NOOP);
      }
    },
    of(url) {
      const path = url.split("?")[0]!;
      return [...methods].sort().filter((method) => router.find(method as FindMyWay.HTTPMethod, path));
    },
  };
}
