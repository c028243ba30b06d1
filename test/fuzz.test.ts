// Bad input, generated: fast-check drives every route of the OpenAPI document (native and dialects; schemas from
// the document, the card parameter from each route's declared contract) with bad path tokens, non-object and mistyped bodies, unicode, huge numbers, deep nesting, 1 MB bodies, bad headers
// and query values. Every answer must be a 4xx error body with the security headers (never 2xx or 5xx), and
// a digest of every table must be unchanged.
import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { declaredRoutes, type Method } from "./helpers/declared-routes.js";
import { createHarness, type Harness } from "./helpers/harness.js";

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: JsonSchema[];
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
}
interface Route {
  method: Method;
  path: string;
  /** The declared card parameter, as it appears in the document's path ({publicToken}), or false. */
  cardParam: string | false;
  body?: JsonSchema;
  query?: { name: string; schema: JsonSchema }[];
}

let h: Harness;
let routes: Route[] = [];
let card: string;
let sent = 0;
const statuses = new Map<number, number>();

/** Every table, every row, in a stable order. The limiter's own counters and its audit rows are left out, and
 *  so are the counts of refused authentication (`auth.refused`, written when a minute is over): counting
 *  attempts (and auditing refused ones) is the one write a refused request is designed to make. */
async function digest(): Promise<string> {
  const tables = (await h.runtime.store.db.introspection.getTables())
    .map((t) => t.name)
    .filter((n) => !n.startsWith("kysely_") && n !== "rate_limits")
    .sort();
  const hash = createHash("sha256");
  for (const table of tables) {
    // biome-ignore lint/suspicious/noExplicitAny: every table, whatever its shape
    const rows = await (h.runtime.store.db as any).selectFrom(table).selectAll().execute();
    const kept = rows
      .filter(
        (r: Record<string, unknown>) =>
          !(table === "audit_events" && (r.action === "rate_limit.blocked" || r.action === "auth.refused")),
      )
      .map((r: Record<string, unknown>) =>
        JSON.stringify(Object.entries(r).sort(([a], [b]) => a.localeCompare(b))),
      )
      .sort();
    hash.update(`${table}:${kept.join("\n")}\n`);
  }
  return hash.digest("hex");
}

async function send(
  method: Method,
  url: string,
  init: { payload?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<void> {
  const token = await tokenOnce;
  const response = await h.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, ...init.headers },
    ...(init.payload === undefined ? {} : { payload: init.payload }),
  });
  sent++;
  statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
  const where = `${method} ${url.slice(0, 120)} → ${response.statusCode} ${response.body.slice(0, 200)}`;
  expect(response.statusCode >= 400 && response.statusCode < 500, where).toBe(true);
  // Security headers on every answer, refusals included.
  expect(response.headers["x-content-type-options"], where).toBe("nosniff");
  expect(response.headers["cache-control"], where).toBe("no-store");
  expect(response.headers["content-security-policy"], where).toContain("default-src 'none'");
  const body = JSON.parse(response.body) as Record<string, unknown>;
  // The native code, a dialect's error_code, or the token endpoint's RFC 6749 error.
  expect(body.code ?? body.error_code ?? body.error, where).toBeTruthy();
}
let tokenOnce: Promise<string>;

const json = (value: unknown) => ({
  payload: JSON.stringify(value),
  headers: { "content-type": "application/json" },
});
const urlOf = (route: Route, token = card) =>
  route.path.replace(`{${route.cardParam}}`, token).replace("{id}", "00000000-0000-7000-8000-000000000000");
const hasBody = (r: Route) => r.method !== "GET" && r.method !== "DELETE";
const isCardRoute = (r: Route) => r.cardParam !== false;
/** Objects every branch of which refuses unknown keys, so one unknown key makes any body invalid. */
const closed = (s: JsonSchema | undefined): boolean =>
  s !== undefined &&
  (s.anyOf ? s.anyOf.every(closed) : s.type === "object" && s.additionalProperties === false);
const fieldsOf = (s: JsonSchema | undefined): Record<string, JsonSchema> =>
  s?.anyOf ? Object.assign({}, ...s.anyOf.map(fieldsOf)) : (s?.properties ?? {});

/** A value of the wrong JSON type for a field (every field has one type). */
function wrongTypeFor(schema: JsonSchema): fc.Arbitrary<unknown> {
  // A field of several types (Thredd's cardPin: digits as a string or an integer) gets a value of none of them.
  const types = new Set((schema.anyOf ?? []).map((alternative) => alternative.type as string | undefined));
  if (types.size > 1) {
    const outside: [string, fc.Arbitrary<unknown>][] = [
      ["string", fc.string()],
      ["integer", fc.double({ noInteger: true, noNaN: true })],
      ["boolean", fc.boolean()],
      ["null", fc.constant(null)],
      ["array", fc.array(fc.integer(), { maxLength: 3 })],
      ["object", fc.constant({ nested: true })],
    ];
    return fc.oneof(...outside.filter(([type]) => !types.has(type)).map(([, value]) => value));
  }
  const t = schema.type ?? (schema.anyOf?.[0]?.type as string | undefined) ?? "string";
  const all = {
    string: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 })),
    integer: fc.oneof(
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.double({ noInteger: true, noNaN: true }),
      fc.constant(1e308),
      fc.constant(-(2 ** 64)),
    ),
    number: fc.oneof(fc.string(), fc.boolean(), fc.constant(null)),
    boolean: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
    object: fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer(), { maxLength: 3 })),
    array: fc.oneof(fc.string(), fc.integer(), fc.constant({})),
  } as Record<string, fc.Arbitrary<unknown>>;
  return all[t] ?? all.string!;
}

const notNineDigits = fc
  .oneof(
    fc.stringMatching(/^[0-9]{1,8}$/),
    fc.stringMatching(/^[0-9]{10,40}$/),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }),
    fc.constantFrom(
      "-12345678",
      "12345678.",
      "1e8",
      "0x1234567",
      "%00",
      "..%2F..%2Fetc",
      "١٢٣٤٥٦٧٨٩",
      "123 45678",
      "９９９９９９９９９",
    ),
  )
  .filter((s) => !/^[0-9]{9}$/.test(s));

beforeAll(async () => {
  h = await createHarness();
  tokenOnce = h.token();
  card = (await h.createCard()).publicToken;
  await h.createCard({ type: "virtual" }, await h.token(undefined, "globex"));
  const doc = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json() as {
    paths: Record<
      string,
      Record<
        string,
        {
          requestBody?: { content: Record<string, { schema: JsonSchema }> };
          parameters?: { in: string; name: string; schema: JsonSchema }[];
        }
      >
    >;
  };
  const cardParams = new Map(declaredRoutes(h.app).map((r) => [`${r.method} ${r.url}`, r.cardParam]));
  routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase() as Method,
      path,
      cardParam: cardParams.get(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`) ?? false,
      body: op.requestBody?.content["application/json"]?.schema,
      query: op.parameters?.filter((p) => p.in === "query").map((p) => ({ name: p.name, schema: p.schema })),
    })),
  );
});
afterAll(() => h?.close());

describe("generated bad input on every route", () => {
  it("answers every malformed request with a 4xx error and changes nothing (≥ 10,000 requests)", async () => {
    const before = await digest();
    const runs = { numRuns: 0 };
    const per = (n: number) => ({ ...runs, numRuns: n });
    const withBody = routes.filter(hasBody);
    const cardRoutes = routes.filter(isCardRoute);

    // 1. Path tokens that are not 9 digits, on every card route, with an otherwise valid-looking body.
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...cardRoutes), notNineDigits, async (route, token) => {
        await send(route.method, urlOf(route, encodeURIComponent(token)), hasBody(route) ? json({}) : {});
      }),
      per(2500),
    );

    // 2. Bodies that are not objects: random JSON scalars and arrays, including unicode and huge numbers.
    const notObject = fc.oneof(
      fc.string({ unit: "grapheme" }),
      fc.oneof(fc.integer(), fc.double(), fc.constant(1e308), fc.constant(-1e308), fc.bigInt().map(String)),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 5 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...withBody), notObject, async (route, value) => {
        await send(route.method, urlOf(route), json(value));
      }),
      per(2500),
    );

    // 3. Objects with one field of the wrong type (or breaking its pattern with unicode), plus random extras.
    const typed = withBody.filter((r) => Object.keys(fieldsOf(r.body)).length > 0);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...typed).chain((route) => {
          const fields = fieldsOf(route.body);
          return fc.tuple(
            fc.constant(route),
            fc.constantFrom(...Object.keys(fields)).chain((name) => {
              const schema = fields[name]!;
              const wrong = schema.pattern
                ? fc.oneof(
                    wrongTypeFor(schema),
                    fc.string({ unit: "grapheme", minLength: 1 }).map((s) => `${s}\u00e9\u{1F4B3}`),
                  )
                : wrongTypeFor(schema);
              return wrong.map((value) => ({ [name]: value }));
            }),
          );
        }),
        async ([route, body]) => {
          await send(route.method, urlOf(route), json(body));
        },
      ),
      per(2500),
    );

    // 4. Random JSON objects with at least one unknown key, on routes whose bodies are closed.
    const closedRoutes = withBody.filter((r) => closed(r.body));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...closedRoutes),
        fc.dictionary(
          fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }),
          fc.jsonValue({ maxDepth: 2 }),
          { maxKeys: 4 },
        ),
        async (route, extra) => {
          await send(route.method, urlOf(route), json({ ...extra, "\u{1F4B3}unknown": 1 }));
        },
      ),
      per(1500),
    );

    // 5. Deep nesting, 1 MB bodies, broken JSON and wrong media types.
    const shapes = fc.oneof(
      fc.integer({ min: 1_000, max: 20_000 }).map((d) => ({
        payload: `${"[".repeat(d)}${"]".repeat(d)}`,
        headers: { "content-type": "application/json" },
      })),
      fc.integer({ min: 500, max: 5_000 }).map((d) => ({
        payload: `${'{"a":'.repeat(d)}1${"}".repeat(d)}`,
        headers: { "content-type": "application/json" },
      })),
      fc.constant({
        payload: JSON.stringify({ pin: "1".repeat(1 << 20) }),
        headers: { "content-type": "application/json" },
      }),
      fc.constant({ payload: Buffer.alloc(1 << 20, 0x41), headers: { "content-type": "application/json" } }),
      fc
        .string({ maxLength: 40 })
        .map((s) => `{${s}`)
        // Broken JSON only: "{" + "}" is a well-formed empty body, which a body-less unblock rightly accepts.
        .filter((text) => {
          try {
            JSON.parse(text);
            return false;
          } catch {
            return true;
          }
        })
        .map((payload) => ({ payload, headers: { "content-type": "application/json" } })),
      fc
        .constantFrom(
          "text/plain",
          "application/xml",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
        )
        .map((type) => ({ payload: "pin=1234", headers: { "content-type": type } })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...withBody), shapes, async (route, init) => {
        await send(route.method, urlOf(route), init);
      }),
      per(600),
    );

    // 6. Headers out of range: malformed bearer tokens, and Idempotency-Keys that are too long or not ASCII.
    const badAuth = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => `Bearer ${s}x`),
      fc.constantFrom(
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "bearer x.y.z",
        `Bearer ${"a".repeat(8000)}`,
        "Bearer a.b.c.d.e",
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), badAuth, async (route, authorization) => {
        await send(route.method, urlOf(route), {
          ...(hasBody(route) ? json({}) : {}),
          headers: {
            authorization: authorization.replace(/[^\x20-\x7e]/g, "?"),
            "content-type": "application/json",
          },
        });
      }),
      per(1200),
    );
    const idempotent = withBody.filter((r) => r.path.endsWith("/unblock"));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...idempotent),
        fc.oneof(
          fc.string({ minLength: 256, maxLength: 400 }).map((s) => `k${s}`.padEnd(256, "k")),
          fc.constantFrom("a b", "key\u00e9", ""),
        ),
        async (route, key) => {
          await send(route.method, urlOf(route), {
            ...json({}),
            headers: {
              "content-type": "application/json",
              "idempotency-key": Buffer.from(key, "utf8").toString("latin1"),
            },
          });
        },
      ),
      per(200),
    );

    // 7. Query values out of range on every route with a query schema.
    const queried = routes.filter((r) => (r.query ?? []).length > 0);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...queried),
        fc.oneof(
          fc.record({
            limit: fc.oneof(
              fc.integer({ max: 0 }),
              fc.integer({ min: 10_000 }),
              fc.string({ minLength: 1 }).filter((s) => !/^\d+$/.test(s)),
              fc.constant("1e308"),
            ),
          }),
          fc.record({
            cursor: fc
              .string({ unit: "grapheme", minLength: 1, maxLength: 80 })
              .filter((s) => !/^[0-9a-f-]{36}$/.test(s)),
          }),
        ),
        async (route, query) => {
          await send(route.method, `${urlOf(route)}?${new URLSearchParams(query as Record<string, string>)}`);
        },
      ),
      per(800),
    );

    expect(await digest()).toBe(before);
    expect(sent).toBeGreaterThanOrEqual(10_000);
    console.info(
      `[fuzz] ${sent} generated requests over ${routes.length} routes; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
  }, 120_000);
});
