// Queries of the authorisation path, built and compiled once instead of on every call. Kysely builds an
// immutable query tree and compiles it to SQL each time a query runs, which costs several times what SQLite
// takes to run the short statements of a verify (figures in BENCHMARKS.md, "prepared.ts"). A prepared query
// is built once with named placeholders where its values go; each call only binds the values and sends the
// same SQL text, which the SQLite statement cache (db.ts) then reuses too.
// On PostgreSQL the text of each prepared query is also a named statement (namedStatementOf, used by db.ts):
// each connection parses and plans it once instead of on every run. A statement's name and role are looked up
// by its text, and fixed by the first call that marks the text.
// Invariant: the SQL is exactly what the Kysely builder produces, so a prepared query and its builder form
// can never disagree; every value is a bound parameter, never spliced into the text.
import { type Compilable, CompiledQuery, type QueryResult } from "kysely";

/** A database or a transaction of it: all a prepared query needs. */
interface QueryRunner {
  executeQuery<R>(query: CompiledQuery<R>): Promise<QueryResult<R>>;
}

const MARK = "\u0000cardvault-parameter:";

type Slot = { name: string } | { value: unknown };

/**
 * `prepared((p: { id: string }) => db.selectFrom("cards").selectAll().where("id", "=", p.id))` returns
 * `run(tx, { id })`. `build` must use each field of `p` as a value only (where, set, values…); its
 * structure may not depend on them. Run it on the database it was built with, or a transaction of it.
 * `role` says what write-behind (write-behind.ts) may do with it in a PostgreSQL transaction.
 */
export function prepared<P extends object, Row>(
  build: (params: P) => Compilable<Row>,
  role?: StatementRole,
): (db: QueryRunner, values: P) => Promise<QueryResult<Row>> {
  let plan: { sql: string; slots: Slot[] } | undefined;
  return (db, values) => {
    plan ??= compile(build, role);
    const parameters = plan.slots.map((slot) =>
      "name" in slot ? (values[slot.name as keyof P] ?? null) : slot.value,
    );
    return db.executeQuery(CompiledQuery.raw(plan.sql, parameters) as CompiledQuery<Row>);
  };
}

/**
 * What write-behind may do with a named statement inside a PostgreSQL transaction:
 * - "deferred": a write whose answer nobody reads (an INSERT, or an UPDATE or DELETE whose row the transaction
 *   holds locked): it may wait and travel with the transaction's next statement, and answers no rows;
 * - "carrier": a statement that may take the waiting writes with it, as data-modifying CTEs in front of its
 *   own text; it must not read what they write (a CTE's writes are not visible to the rest of its statement).
 */
export type StatementRole = "deferred" | "carrier";

/** A named statement: its name on the connection, and its role for write-behind. */
export interface NamedStatement {
  name: string;
  role?: StatementRole;
}

/**
 * The texts that run as named statements on PostgreSQL, by text. Only the fixed texts of the hot path are named
 * (a few dozen): pg keeps a named statement for the connection's life, so ad-hoc texts stay unnamed.
 */
const statements = new Map<string, NamedStatement>();

/** Marks a fixed SQL text to run as a named (once-parsed) statement on PostgreSQL; returns the text. */
export function namedStatement(sql: string, role?: StatementRole): string {
  if (!statements.has(sql)) statements.set(sql, { name: `cardvault_${statements.size + 1}`, role });
  return sql;
}

/** The statement a text marked by namedStatement (or prepared) is, if any. */
export function namedStatementOf(sql: string): NamedStatement | undefined {
  return statements.get(sql);
}

function compile<P extends object>(build: (params: P) => Compilable<unknown>, role?: StatementRole) {
  const placeholders = new Proxy({} as P, { get: (_, name) => `${MARK}${String(name)}` });
  const query = build(placeholders).compile();
  // A placeholder spliced into the text (sql.lit, sql.raw) would never be bound: refuse the query.
  if (query.sql.includes(MARK)) throw new Error("A prepared query must use its parameters as bound values.");
  const slots = query.parameters.map(
    (value): Slot =>
      typeof value === "string" && value.startsWith(MARK) ? { name: value.slice(MARK.length) } : { value },
  );
  return { sql: namedStatement(query.sql, role), slots };
}

/**
 * The values of a one-row insert naming every column, for a prepared insert (the placeholders of `params`
 * cannot be enumerated). `columns` must list every column: the compiler checks it against the row type.
 */
export function everyColumn<Row>(params: Row, columns: Record<keyof Row, true>): Row {
  return Object.fromEntries(Object.keys(columns).map((name) => [name, params[name as keyof Row]])) as Row;
}
