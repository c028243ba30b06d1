// The served /openapi.json is the contract a generated client is built from, so it must say what the server
// does: every operation named and summarised, every error in the media type and shape its API really sends
// (checked against real answers), 429 wherever a rate limit applies and 503 where Get Card Data can be
// overloaded (both with Retry-After), the public URL as its server and the project's license.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness } from "./helpers/harness.js";

interface Response {
  description?: string;
  headers?: Record<string, { schema?: unknown }>;
  content?: Record<string, { schema?: unknown }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  security?: { bearer: string[] }[];
  parameters?: { in: string; name: string; required?: boolean }[];
  responses: Record<string, Response>;
}
interface Document {
  openapi: string;
  info: { title: string; version: string; license?: { name: string; identifier?: string } };
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
}

const PUBLIC_URL = "https://cards.example.test/vault";
const METHODS = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);

let h: Awaited<ReturnType<typeof createHarness>>;
let doc: Document;
let operations: { method: string; path: string; op: Operation }[];

beforeAll(async () => {
  h = await createHarness({ env: { CARDVAULT_PUBLIC_URL: PUBLIC_URL } });
  const served = await h.app.inject({ method: "GET", url: "/openapi.json" });
  expect(served.statusCode).toBe(200);
  doc = served.json();
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ method, path, op })),
  );
});
afterAll(() => h?.close());

/** The contract route URL (`/v1/cards/:publicToken`) as the document writes it (`/v1/cards/{publicToken}`). */
const documented = (url: string) => url.replace(/:([^/]+)/g, "{$1}");
const mediaTypeOf = (header: unknown) => String(header).split(";")[0]!.trim();

describe("the OpenAPI document", () => {
  it("names and summarises every operation, with unique operationIds", () => {
    expect(operations.length).toBeGreaterThan(40);
    for (const { method, path, op } of operations) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
      expect(op.summary?.trim(), `${method} ${path}`).toBeTruthy();
    }
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("documents every error in the media type each API really answers with", async () => {
    for (const { method, path, op } of operations) {
      const where = `${method} ${path}`;
      const errors = Object.entries(op.responses).filter(([status]) => Number(status) >= 400);
      expect(errors.length, where).toBeGreaterThan(0);
      // Pismo's error object and the token endpoint's RFC 6749 §5.2 errors are plain JSON; the native API and
      // Thredd/Payblr send problem+json.
      const oauth = path === "/oauth2/token" || path === "/connect/token";
      const expected = path.startsWith("/pismo/") || oauth ? "application/json" : "application/problem+json";
      for (const [status, response] of errors) {
        expect(Object.keys(response.content ?? {}), `${where} ${status}`).toEqual([expected]);
        expect(response.content?.[expected]?.schema, `${where} ${status}`).toBeTypeOf("object");
      }
      // A real refusal (no token) comes in the documented media type and shape.
      const url = path.replace(/\{[^}]+\}/g, "123456789");
      const answer = await h.app.inject({
        method: method.toUpperCase() as "GET",
        url,
        ...(method === "get" || method === "delete" ? {} : { payload: {} }),
      });
      // The token endpoint reads the grant before the client: an empty request is invalid_request (400).
      const refusal = oauth ? "400" : "401";
      expect(String(answer.statusCode), where).toBe(refusal);
      expect(mediaTypeOf(answer.headers["content-type"]), where).toBe(expected);
      const schema = op.responses[refusal]?.content?.[expected]?.schema as { required?: string[] };
      for (const field of schema.required ?? [])
        expect(answer.json(), `${where} ${field}`).toHaveProperty(field);
    }
  });

  it("documents 429 with Retry-After on every rate-limited operation, and 503 on Get Card Data", () => {
    const limited = h.app.routeContracts.filter((c) => c.rateLimit !== false && c.method !== "HEAD");
    expect(limited.length).toBeGreaterThan(5);
    for (const contract of limited) {
      const where = `${contract.method} ${contract.url}`;
      const op = doc.paths[documented(contract.url)]?.[contract.method.toLowerCase()];
      expect(op, where).toBeDefined();
      const statuses = contract.rateLimit === "secure-data" ? ["429", "503"] : ["429"];
      const errorTypes = Object.keys(op!.responses["400"]?.content ?? {});
      for (const status of statuses) {
        const response = op!.responses[status];
        expect(response?.headers?.["Retry-After"]?.schema, `${where} ${status}`).toMatchObject({
          type: "integer",
        });
        expect(Object.keys(response?.content ?? {}), `${where} ${status}`).toEqual(errorTypes);
      }
    }
    const unlimited = h.app.routeContracts.filter((c) => c.rateLimit === false && c.method !== "HEAD");
    for (const contract of unlimited) {
      const op = doc.paths[documented(contract.url)]?.[contract.method.toLowerCase()];
      expect(op?.responses["429"], `${contract.method} ${contract.url}`).toBeUndefined();
    }
  });

  it("marks a body optional exactly when {} is a valid one, and the server takes none there", async () => {
    type WithBody = Operation & {
      requestBody?: { required: boolean; content: Record<string, { schema: { required?: string[] } }> };
    };
    const bodies = operations.filter(({ op }) => (op as WithBody).requestBody);
    expect(bodies.length).toBeGreaterThan(20);
    for (const { method, path, op } of bodies) {
      const body = (op as WithBody).requestBody!;
      const schema = body.content["application/json"]!.schema as {
        type?: string;
        required?: string[];
        minProperties?: number;
      };
      const acceptsEmpty =
        schema.type === "object" && (schema.required ?? []).length === 0 && (schema.minProperties ?? 0) === 0;
      expect(body.required, `${method} ${path}`).toBe(!acceptsEmpty);
    }
    const unblock = doc.paths["/v1/cards/{publicToken}/pin/unblock"]!.post as WithBody;
    expect(unblock.requestBody?.required).toBe(false);
    const card = await h.createCard();
    const answer = await h.app.inject({
      method: "POST",
      url: `/v1/cards/${card.publicToken}/pin/unblock`,
      headers: { authorization: `Bearer ${await h.token()}` },
    });
    expect(answer.statusCode).toBe(204);
  });

  it("documents the patterns the server checks: cursor, expiry month, targetOrigin, Thredd's validityDate", async () => {
    type Schemas = { schema: { pattern?: string; minLength?: number; not?: object } };
    const bodyProperty = (path: string, method: string, name: string) =>
      (
        doc.paths[path]![method] as unknown as {
          requestBody: {
            content: { "application/json": { schema: { properties: Record<string, Schemas["schema"]> } } };
          };
        }
      ).requestBody.content["application/json"].schema.properties[name]!;
    const cursor = (
      doc.paths["/v1/audit-events"]!.get!.parameters as unknown as ({ name: string } & Schemas)[]
    ).find((p) => p.name === "cursor")!.schema;
    await h.createCard();
    await h.createCard();
    const page = (await h.call("GET", "/v1/audit-events?limit=1")).json() as { nextCursor: string };
    expect(new RegExp(cursor.pattern!).test(page.nextCursor)).toBe(true);
    expect(new RegExp(cursor.pattern!).test("zzz")).toBe(false);

    const expiry = new RegExp(bodyProperty("/v1/cards", "post", "expiry").pattern!);
    expect(["2912", "3001"].map((e) => expiry.test(e))).toEqual([true, true]);
    expect(["2900", "2913", "291"].map((e) => expiry.test(e))).toEqual([false, false, false]);

    const origin = bodyProperty("/v1/cards/{publicToken}/reveal-sessions", "post", "targetOrigin");
    expect(origin.minLength).toBe(1);
    const originPattern = new RegExp(origin.pattern!);
    expect(["https://app.example.test", "http://127.0.0.1:5173"].every((o) => originPattern.test(o))).toBe(
      true,
    );
    expect(
      ["", "*", "https://app.example.test/", "https://APP.example.test"].some((o) => originPattern.test(o)),
    ).toBe(false);

    // Accepted only as the card's own expiry month (docs/dialects.md): the schema admits YYYY-MM with a month.
    const validity = new RegExp(
      bodyProperty("/api/v1/cards/{publicToken}/status", "put", "validityDate").pattern!,
    );
    expect(["2029-12", "2030-01"].every((v) => validity.test(v))).toBe(true);
    expect(["2029-13", "2029-00", "29-12", "2029-1"].some((v) => validity.test(v))).toBe(false);
  });

  it("names the public URL as its server and the project's license", () => {
    expect(doc.servers).toEqual([{ url: PUBLIC_URL }]);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(doc.info.license).toEqual({ name: pkg.license, identifier: pkg.license });
    // Paths stay as served: the server's own path is not stripped from them.
    expect(Object.keys(doc.paths)).toContain("/v1/cards/{publicToken}/cvv/verify");
  });

  it("is structurally valid OpenAPI 3.1", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBeTypeOf("string");
    expect(doc.info.version).toBeTypeOf("string");
    for (const [path, ops] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        expect(METHODS.has(method), where).toBe(true);
        const pathParams = (op.parameters ?? []).filter((p) => p.in === "path");
        expect(pathParams.map((p) => p.name).sort(), where).toEqual([...templated].sort());
        for (const p of pathParams) expect(p.required, `${where} ${p.name}`).toBe(true);
        expect(Object.keys(op.responses).length, where).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(op.responses)) {
          expect(status, where).toMatch(/^([1-5][0-9]{2}|[1-5]XX|default)$/);
          expect(response.description, `${where} ${status}`).toBeTypeOf("string");
        }
      }
    }
  });
});
