// The served OpenAPI document against the live server, as a third-party contract tester would run it: the
// document fetched over HTTP passes @apidevtools/swagger-parser's validation, and for every operation, requests
// generated from its own schemas (fast-check: valid ones, and ones with one thing wrong) get answers whose status
// the operation documents, never a 5xx, in a documented media type, with a body its schema accepts (ajv,
// JSON Schema 2020-12 as OpenAPI 3.1 uses). A request the schemas refuse is refused (4xx): one schema both
// validates and documents. A method a path lacks answers 405 with Allow, in the error shape of the path's API.
import SwaggerParser from "@apidevtools/swagger-parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_SCOPES, createHarness, type Harness } from "./helpers/harness.js";
import { invalidObject, type JsonSchema, validValue } from "./helpers/schema-arbitrary.js";

interface Parameter {
  in: "path" | "query" | "header";
  name: string;
  required?: boolean;
  schema: JsonSchema;
}
interface Content {
  schema?: JsonSchema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, Content> };
  responses: Record<string, { content?: Record<string, Content>; headers?: Record<string, unknown> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}
interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Requests per operation: this many generated valid, about as many invalid. */
const RUNS = 6;
const HTTP_METHODS = ["get", "put", "post", "delete", "patch"];

let h: Harness;
let base: string;
let api: Document;
let cardTokens: string[];
/** A physical card every operation may name (virtual-only operations answer it 409). */
let physicalCard: string;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });

beforeAll(async () => {
  h = await createHarness({ sandbox: true, maxCvvTries: 99, maxPinTries: 99 });
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  const address = h.app.server.address();
  if (!address || typeof address === "string") throw new Error("not listening");
  base = `http://127.0.0.1:${address.port}`;
  const served = await fetch(`${base}/openapi.json`);
  expect(served.status).toBe(200);
  const document = (await served.json()) as Parameters<typeof SwaggerParser.validate>[0];
  // Validation (OpenAPI 3.1 structure, refs that resolve), then every $ref inlined for generation.
  await SwaggerParser.validate(structuredClone(document));
  api = (await SwaggerParser.dereference(structuredClone(document))) as unknown as Document;
  physicalCard = (await h.createCard({ type: "physical" })).publicToken;
});
afterAll(() => h?.close());

const operations = () =>
  Object.entries(api.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ method, path, op })),
  );

/** A path parameter: one of the test's cards (or another value the schema accepts), so both found and not. */
function pathValue(parameter: Parameter): fc.Arbitrary<string> {
  const generated = validValue(parameter.schema).map(String);
  return parameter.name === "publicToken" || parameter.name === "cardId"
    ? fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...cardTokens) }, { weight: 1, arbitrary: generated })
    : generated;
}

function jsonBodyOf(op: Operation): JsonSchema | undefined {
  return op.requestBody?.content["application/json"]?.schema;
}

/** A request the operation's schemas accept (with the token of a caller holding every scope). */
function validRequest(method: string, path: string, op: Operation, token: string): fc.Arbitrary<Sent> {
  const params = op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === "path");
  const query = params.filter((p) => p.in === "query");
  const bodySchema = jsonBodyOf(op);
  const body: fc.Arbitrary<unknown> = bodySchema
    ? op.requestBody?.required
      ? validValue(bodySchema)
      : fc.option(validValue(bodySchema), { nil: undefined, freq: 3 })
    : fc.constant(undefined);
  return fc
    .record({
      path: fc.tuple(...pathParams.map(pathValue)),
      query: fc.record(Object.fromEntries(query.map((p) => [p.name, validValue(p.schema).map(String)])), {
        requiredKeys: query.filter((p) => p.required).map((p) => p.name),
      }),
      body,
    })
    .map(({ path: values, query: q, body: b }) => {
      let url = path;
      pathParams.forEach((p, i) => {
        url = url.replace(`{${p.name}}`, encodeURIComponent(values[i]!));
      });
      const search = new URLSearchParams(q as Record<string, string>).toString();
      return {
        method: method.toUpperCase(),
        path: search ? `${url}?${search}` : url,
        headers: {
          authorization: `Bearer ${token}`,
          ...(b === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(b === undefined ? {} : { body: JSON.stringify(b) }),
      };
    });
}

/** A request with one thing the schemas refuse: in its body, its query, its path, or no token at all. */
function invalidRequest(method: string, path: string, op: Operation, token: string): fc.Arbitrary<Sent> {
  const valid = validRequest(method, path, op, token);
  const mutations: fc.Arbitrary<Sent>[] = [
    valid.map(({ headers: { authorization: _none, ...headers }, ...rest }) => ({ ...rest, headers })),
  ];
  const bodySchema = jsonBodyOf(op);
  const badBody = bodySchema && invalidObject(bodySchema);
  if (badBody) {
    mutations.push(
      fc.tuple(valid, badBody).map(([request, body]) => ({
        ...request,
        headers: { ...request.headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      })),
    );
  }
  if (bodySchema) {
    mutations.push(
      fc.tuple(valid, fc.constantFrom("[]", '"text"', "42", "{")).map(([request, body]) => ({
        ...request,
        headers: { ...request.headers, "content-type": "application/json" },
        body,
      })),
    );
  }
  if ((op.parameters ?? []).some((p) => p.in === "query")) {
    mutations.push(
      valid.map((request) => ({
        ...request,
        path: `${request.path}${request.path.includes("?") ? "&" : "?"}notADocumentedParameter=1`,
      })),
    );
  }
  return fc.oneof(...mutations);
}

interface Answer {
  status: number;
  mediaType: string | undefined;
  text: string;
  headers: Headers;
}

async function send(request: Sent): Promise<Answer> {
  const response = await fetch(`${base}${request.path}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
  });
  const text = await response.text();
  return {
    status: response.status,
    mediaType: response.headers.get("content-type")?.split(";")[0]?.trim(),
    text,
    headers: response.headers,
  };
}

/** What is wrong with an answer by the operation's documented responses; undefined when it conforms. */
function nonConformance(op: Operation, answer: Answer): string | undefined {
  if (answer.status >= 500) return `server error ${answer.status}: ${answer.text.slice(0, 200)}`;
  const documented = op.responses[String(answer.status)] ?? op.responses.default;
  if (!documented) {
    return `status ${answer.status} is not documented (documented: ${Object.keys(op.responses).join(", ")}): ${answer.text.slice(0, 200)}`;
  }
  const content = documented.content ?? {};
  if (Object.keys(content).length === 0) {
    return answer.text === ""
      ? undefined
      : `status ${answer.status} documents no body but got ${answer.text}`;
  }
  const media = answer.mediaType && content[answer.mediaType];
  if (!media) return `media type ${answer.mediaType} is not documented for ${answer.status}`;
  if (!media.schema) return undefined;
  const validate = ajv.compile(media.schema);
  if (validate(JSON.parse(answer.text))) return undefined;
  return `body of ${answer.status} does not match its schema: ${ajv.errorsText(validate.errors)}; body ${answer.text.slice(0, 300)}`;
}

describe("the served OpenAPI document against the live server", () => {
  it("documents every answer to requests generated from its schemas, valid and invalid", async () => {
    const token = await h.token(ALL_SCOPES);
    const failures: string[] = [];
    const statuses = new Map<string, number[]>();
    for (const { method, path, op } of operations()) {
      const where = `${op.operationId} (${method.toUpperCase()} ${path})`;
      const seen: number[] = [];
      statuses.set(where, seen);
      const failuresBefore = failures.length;
      // A fresh virtual card for each operation: the previous one may have closed, blocked or suspended its own.
      cardTokens = [(await h.createCard()).publicToken, physicalCard];
      const property = fc.asyncProperty(
        fc.oneof(
          validRequest(method, path, op, token).map((request) => ({ request, valid: true })),
          invalidRequest(method, path, op, token).map((request) => ({ request, valid: false })),
        ),
        async ({ request, valid }) => {
          const answer = await send(request);
          seen.push(answer.status);
          const problem =
            nonConformance(op, answer) ??
            (!valid && (answer.status < 400 || answer.status >= 500)
              ? `a request the schemas refuse was answered ${answer.status}`
              : undefined);
          if (problem) {
            failures.push(
              `${where}: ${problem}\n    ${request.method} ${request.path} ${request.body ?? ""}`,
            );
          }
          return problem === undefined;
        },
      );
      await fc.assert(property, { numRuns: RUNS * 2, endOnFailure: true }).catch((error: unknown) => {
        // A counterexample is in failures already; anything else (a generator that broke) is the test's own.
        if (failures.length === failuresBefore) throw error;
      });
    }
    if (process.env.CONFORMANCE_STATS) console.log(JSON.stringify(Object.fromEntries(statuses), null, 1));
    expect(failures).toEqual([]);
    for (const [where, seen] of statuses) expect(seen.length, where).toBe(RUNS * 2);
  }, 120_000);

  it("answers a method a path lacks with 405 and Allow, in the error shape of the path's API", async () => {
    cardTokens = [(await h.createCard()).publicToken];
    const token = await h.token(ALL_SCOPES);
    for (const [path, methods] of Object.entries(api.paths)) {
      const url = path.replace(/\{[^}]+\}/g, cardTokens[0]!);
      const documented = Object.keys(methods).map((m) => m.toUpperCase());
      const errorTypes = new Set(
        Object.values(methods).flatMap((op) =>
          Object.entries(op.responses)
            .filter(([status]) => Number(status) >= 400)
            .flatMap(([, response]) => Object.keys(response.content ?? {})),
        ),
      );
      for (const method of HTTP_METHODS.filter((m) => !(m in methods))) {
        const answer = await send({
          method: method.toUpperCase(),
          path: url,
          headers: { authorization: `Bearer ${token}` },
        });
        const where = `${method.toUpperCase()} ${path}`;
        expect(answer.status, where).toBe(405);
        const allow = (answer.headers.get("allow") ?? "").split(",").map((m) => m.trim());
        for (const m of documented) expect(allow, where).toContain(m);
        expect(allow, where).not.toContain(method.toUpperCase());
        expect(errorTypes.has(answer.mediaType ?? ""), `${where}: ${answer.mediaType}`).toBe(true);
      }
    }
  });
});
