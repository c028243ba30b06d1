// Write-behind: fewer round trips for a PostgreSQL transaction. node-postgres sends a statement and waits for
// its answer before it sends the next (it does not pipeline), so each statement of a transaction is a round
// trip, and on a busy machine those round trips' system calls are most of what a verify costs (BENCHMARKS.md,
// "PostgreSQL at speed"). Inside a transaction, a statement marked "deferred" (prepared.ts: the audit row, an
// outbox event, the counter step on the card the transaction holds locked) is not sent at once: it answers no
// rows and waits for the transaction's next statement. A "carrier" (the attempt's rate-limit count) takes the
// waiting writes with it, as data-modifying CTEs in front of its own text; any other statement, and COMMIT,
// is preceded by the waiting writes sent as one statement. ROLLBACK drops them.
// Invariants:
// - Everything a transaction wrote is sent before its COMMIT, and before any statement that could read it: a
//   carrier must not read the tables the writes it carries touch (the texts are checked, and a carrier that
//   names such a table sends the writes first instead).
// - No statement touches one table twice unless by INSERTs only: the CTEs of a statement run on one snapshot,
//   and which of two updates of one row wins is not defined
//   (https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING). A write that would
//   sends the waiting ones first.
// - A SAVEPOINT or RELEASE sends the waiting writes first; ROLLBACK TO drops those that wait (all written after
//   the savepoint).
// - A waiting write's error is raised by the statement that carried it, and fails the transaction like any.
// Outside a transaction every statement runs at once.
import { type NamedStatement, namedStatement } from "./prepared.js";

/** A statement's answer, as much of pg's as Kysely reads. */
export interface Answer {
  command: string;
  rowCount: number | null;
  rows: unknown[];
}

export type Send = (text: string, values: unknown[]) => Promise<Answer>;

interface Statement {
  text: string;
  values: unknown[];
}

/** A deferred write's answer: no rows, and a command for which Kysely reads no affected-row count. */
const DEFERRED: Answer = { command: "DEFERRED", rowCount: null, rows: [] };

const CONTROL = /^\s*(begin|start|commit|end|rollback|abort|savepoint|release)\b/i;

/**
 * One connection's statements through write-behind: `send` runs a statement on the connection; `statementOf`
 * says which texts are marked, and how (prepared.ts). `waiting` is how many writes wait to be sent.
 */
export function writeBehind(send: Send, statementOf: (text: string) => NamedStatement | undefined) {
  let open = false;
  let waiting: Statement[] = [];

  const flush = async () => {
    if (waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    const combined = combine(batch);
    await send(combined.text, combined.values);
  };

  return {
    get waiting() {
      return waiting.length;
    },
    async query(text: string, values: unknown[] = []): Promise<Answer> {
      const control = CONTROL.exec(text)?.[1]?.toLowerCase();
      if (control !== undefined) {
        if (control === "rollback" || control === "abort") waiting = [];
        else await flush();
        if (control === "begin" || control === "start") open = true;
        else if (control === "commit" || control === "end" || control === "abort") open = false;
        else if (control === "rollback" && !/^\s*rollback\s+to\b/i.test(text)) open = false;
        return send(text, values);
      }
      const role = open ? statementOf(text)?.role : undefined;
      if (role === "deferred") {
        if (clashes(waiting, text)) await flush();
        waiting.push({ text, values });
        return DEFERRED;
      }
      if (role === "carrier" && waiting.length > 0 && !clashes(waiting, text)) {
        const combined = combine([...waiting, { text, values }]);
        waiting = [];
        return send(combined.text, combined.values);
      }
      await flush();
      return send(text, values);
    },
  };
}

/** What write-behind needs to know of a text: the table it writes, if any, and whether only by INSERT. */
interface Shape {
  table: string | undefined;
  insert: boolean;
  parameters: number;
}

const shapes = new Map<string, Shape>();

function shapeOf(text: string): Shape {
  let shape = shapes.get(text);
  if (shape === undefined) {
    // Parameters are renumbered by their $n marks: a literal or a comment could hold one, so none is allowed.
    if (/'|\$\$|--|\/\*/.test(text)) throw new Error("write-behind combines only texts without literals");
    const write = /^\s*(insert\s+into|update|delete\s+from)\s+"?(\w+)"?/i.exec(text);
    const marks = [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
    shape = {
      table: write?.[2],
      insert: write?.[1]?.toLowerCase().startsWith("insert") ?? false,
      parameters: Math.max(0, ...marks),
    };
    shapes.set(text, shape);
  }
  return shape;
}

/** Whether `text` may not share a statement with the waiting writes (see the invariants above). */
function clashes(waiting: readonly Statement[], text: string): boolean {
  const shape = shapeOf(text);
  return waiting.some((w) => {
    const other = shapeOf(w.text);
    const shared =
      (other.table !== undefined && names(text, other.table)) ||
      (shape.table !== undefined && names(w.text, shape.table));
    return shared && !(shape.insert && other.insert && shape.table === other.table);
  });
}

function names(text: string, table: string): boolean {
  return new RegExp(`\\b${table}\\b`).test(text);
}

/** Combined texts by their parts, so each combination is built (and named) once. */
const combined = new Map<string, string>();

/** The statements as one: every one but the last as a CTE in front of the last, parameters renumbered. */
function combine(statements: readonly Statement[]): Statement {
  if (statements.length === 1) return statements[0]!;
  const key = statements.map((s) => s.text).join("\u0000");
  let text = combined.get(key);
  if (text === undefined) {
    text = namedStatement(combinedText(statements.map((s) => s.text)));
    combined.set(key, text);
  }
  const values = statements.flatMap((s) => {
    if (s.values.length !== shapeOf(s.text).parameters)
      throw new Error("a statement's values do not match its text");
    return s.values;
  });
  return { text, values };
}

function combinedText(texts: readonly string[]): string {
  let offset = 0;
  const parts = texts.map((text) => {
    const shifted = text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
    offset += shapeOf(text).parameters;
    return shifted;
  });
  const last = parts.pop()!.trim();
  const ctes = parts.map((part, i) => `cardvault_write_${i + 1} as (${part})`).join(", ");
  return /^with\s/i.test(last) ? `with ${ctes}, ${last.replace(/^with\s+/i, "")}` : `with ${ctes} ${last}`;
}
