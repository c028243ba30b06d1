// fast-check arbitraries read from the JSON Schemas of an (already dereferenced) OpenAPI document: values a
// schema accepts, and values it refuses, for the conformance run (test/openapi-conformance.test.ts). Only the
// keywords the document uses are understood; anything else throws, so a new keyword is noticed, not ignored.
import fc from "fast-check";

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  not?: JsonSchema;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  [keyword: string]: unknown;
};

const LOOKAROUND = /\(\?[=!][^)]*\)/g;

/** Strings matching a pattern (lookarounds, which fast-check cannot generate from, are checked by filter). */
function patternString(schema: JsonSchema): fc.Arbitrary<string> {
  const full = new RegExp(schema.pattern!, "u");
  const generable = new RegExp(schema.pattern!.replace(LOOKAROUND, ""), "u");
  const min = schema.minLength ?? 0;
  const max = schema.maxLength ?? Number.POSITIVE_INFINITY;
  return fc
    .stringMatching(generable)
    .map((s) => (s.length > max ? s.slice(0, max) : s))
    .filter((s) => full.test(s) && s.length >= min && s.length <= max);
}

/** Values the schema accepts. */
export function validValue(schema: JsonSchema): fc.Arbitrary<unknown> {
  if (schema.not && Object.keys(schema.not).length === 0) throw new Error("a schema that accepts nothing");
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return fc.oneof(...union.filter((s) => !isNever(s)).map(validValue));
  const type = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (type.length > 1) return fc.oneof(...type.map((t) => validValue({ ...schema, type: t })));
  switch (type[0]) {
    case "string":
      if (schema.pattern) return patternString(schema);
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) });
    case "integer":
      return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 });
    case "number":
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const items = validValue(schema.items ?? {});
      const options = { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 4, 4) };
      return schema.uniqueItems
        ? fc.uniqueArray(items, { ...options, selector: (v) => JSON.stringify(v) })
        : fc.array(items, options);
    }
    case "object":
      return validObject(schema);
    case undefined:
      return fc.jsonValue({ maxDepth: 1 });
    default:
      throw new Error(`schema type ${String(type[0])} is not generated`);
  }
}

function isNever(schema: JsonSchema): boolean {
  return schema.not !== undefined && Object.keys(schema.not).length === 0;
}

function validObject(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const properties = Object.fromEntries(
    Object.entries(schema.properties ?? {}).filter(([, property]) => !isNever(property)),
  );
  const requiredKeys = (schema.required ?? []).filter((key) => key in properties);
  const record = fc.record(
    Object.fromEntries(Object.entries(properties).map(([key, property]) => [key, validValue(property)])),
    { requiredKeys },
  );
  const min = schema.minProperties ?? 0;
  return record.filter((value) => Object.keys(value).length >= min);
}

/** A value of none of the schema's types (a string where a number goes, an object where a string goes…). */
function wrongType(schema: JsonSchema): fc.Arbitrary<unknown> | undefined {
  const accepted = typesOf(schema);
  if (accepted === undefined) return undefined;
  const candidates: [string, unknown][] = [
    ["string", "not-what-was-asked"],
    ["integer", 12345],
    ["number", 1.5],
    ["boolean", true],
    ["null", null],
    ["array", [1, 2]],
    ["object", { unexpected: 1 }],
  ];
  const wrong = candidates.filter(
    ([type]) => !accepted.has(type) && !(type === "integer" && accepted.has("number")),
  );
  return wrong.length ? fc.constantFrom(...wrong.map(([, value]) => value)) : undefined;
}

/** Every JSON type a schema's values may have; undefined when it does not say (any type). */
function typesOf(schema: JsonSchema): Set<string> | undefined {
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    const all = union.map(typesOf);
    if (all.some((t) => t === undefined)) return undefined;
    return new Set(all.flatMap((t) => [...t!]));
  }
  if (schema.const !== undefined || schema.enum) {
    const values = schema.const !== undefined ? [schema.const] : schema.enum!;
    return new Set(values.map((v) => (v === null ? "null" : Number.isInteger(v) ? "integer" : typeof v)));
  }
  if (schema.type === undefined) return undefined;
  const types = new Set([schema.type].flat());
  if (types.has("number")) types.add("integer");
  return types;
}

/**
 * Objects the schema refuses, each with one thing wrong: a required property left out, a property of the wrong
 * type, or an unknown property where none is allowed. Undefined when the schema refuses no object.
 */
export function invalidObject(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> | undefined {
  const base = validObject(schema);
  const mutations: fc.Arbitrary<Record<string, unknown>>[] = [];
  for (const key of schema.required ?? []) {
    mutations.push(
      base.map((value) => {
        const { [key]: _dropped, ...rest } = value;
        return rest;
      }),
    );
  }
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    const wrong = isNever(property) ? fc.constant("any value") : wrongType(property);
    if (wrong) mutations.push(fc.tuple(base, wrong).map(([value, bad]) => ({ ...value, [key]: bad })));
  }
  if (schema.additionalProperties === false) {
    mutations.push(base.map((value) => ({ ...value, notADocumentedField: "x" })));
  }
  return mutations.length ? fc.oneof(...mutations) : undefined;
}
