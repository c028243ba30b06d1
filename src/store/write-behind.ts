// Write-behind: fewer round trips for a PostgreSQL transaction. Each round trip costs both processes a
// socket write and a wake-up, and on a busy machine those are most of what a verify costs (BENCHMARKS.md,
// "PostgreSQL at speed"). So inside a transaction, what nobody waits for is not sent on its own:
// - BEGIN is held and goes with the transaction's first statement;
// - a statement marked "deferred" (prepared.ts: the audit row, an outbox event, the counter step on the card the
//   transaction holds locked) answers no rows at once and waits; waiting writes that may share a statement are
//   combined into one, as data-modifying CTEs in front of the last;
// - a "carrier" (the attempt's rate-limit count) joins the waiting writes' statement as its main part (the CTEs
//   run with it, in no defined order: PostgreSQL runs a statement's parts on one snapshot, which is why parts
//   never touch one table unless by plain inserts, and a carrier never reads what the writes write);
// - the next statement that is answered (a read, a carrier, COMMIT, a SAVEPOINT) goes out together with what
//   waits, pipelined (https://node-postgres.com/features/pipelining): one write on the socket, one round trip.
// So a verify is three round trips (BEGIN with the card's locked read; the counter step, the audit row and the
// count as one statement; COMMIT) where each statement once was one (six).
// Invariants:
// - What a transaction wrote is on the server, in the order written, before any statement it sends after it
//   (the pipeline keeps order), so every read sees it; only a carrier shares a statement with writes, and it must
//   not read what they write (a carrier that names a table they write is sent after them instead).
// - No statement touches one table twice unless by INSERTs only: the CTEs of a statement run on one snapshot,
//   and which of two updates of one row wins is not defined
//   (https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING); such a write starts a
//   statement of its own.
// - A waiting write's error is raised by the statement it went out with (COMMIT at the latest) and fails the
//   transaction like any; ROLLBACK drops what waits; a transaction that sent nothing sends no ROLLBACK or COMMIT.
// Outside a transaction every statement runs at once.
import { memo } from "../lib/memo.js";
import { type NamedStatement, namedStatement } from "./prepared.js";

/** A statement's answer, as much of pg's as Kysely reads. */
export interface Answer {
  command: string;
  rowCount: number | null;
  rows: unknown[];
}

/** One connection, as write-behind uses it. */
export interface Connection {
  /** Sends one statement (at once, without waiting for the answers of those before it) and answers it. */
  send(text: string, values: unknown[]): Promise<Answer>;
  /** Runs `fn`, whose sends leave in one write on the socket. */
  batch<T>(fn: () => T): T;
}

interface Statement {
  text: string;
  values: unknown[];
}

const answered = (command: string): Answer => ({ command, rowCount: null, rows: [] });

/** A deferred write's answer: no rows, and a command for which Kysely reads no affected-row count. */
const DEFERRED = answered("DEFERRED");

const CONTROL = /^\s*(begin|start|commit|end|rollback|abort|savepoint|release)\b/i;

/**
 * One connection's statements through write-behind; `statementOf` says which texts are marked, and how
 * (prepared.ts). `waiting` is how many statements wait to be sent.
 */
export function writeBehind(
  connection: Connection,
  statementOf: (text: string) => NamedStatement | undefined,
) {
  let open = false;
  let begin: Statement | undefined;
  /** The waiting writes, by the statement each will be sent as. */
  let groups: Statement[][] = [];

  /** What waits, as the statements to send, in order; nothing waits afterwards. */
  const takeWaiting = (): Statement[] => {
    const statements = [...(begin ? [begin] : []), ...groups.map(combine)];
    begin = undefined;
    groups = [];
    return statements;
  };

  /** Adds a write (or a carrier) to the last statement that may take it, or starts one. */
  const join = (statement: Statement) => {
    const last = groups.at(-1);
    if (last && !clashes(last, statement.text)) last.push(statement);
    else groups.push([statement]);
  };

  /** Sends the statements pipelined, in one write; the last one's answer, or the first error. */
  const sendAll = async (statements: readonly Statement[]): Promise<Answer> => {
    if (statements.length === 1) return connection.send(statements[0]!.text, statements[0]!.values);
    const answers = connection.batch(() => statements.map((s) => connection.send(s.text, s.values)));
    const settled = await Promise.allSettled(answers);
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    return (settled.at(-1) as PromiseFulfilledResult<Answer>).value;
  };

  return {
    get waiting() {
      return groups.length + (begin ? 1 : 0);
    },
    async query(text: string, values: unknown[] = []): Promise<Answer> {
      const statement = { text, values };
      const control = CONTROL.exec(text)?.[1]?.toLowerCase();
      if (control === "begin" || control === "start") {
        open = true;
        begin = statement;
        return answered("BEGIN");
      }
      const ends =
        control === "commit" ||
        control === "end" ||
        control === "abort" ||
        (control === "rollback" && !/^\s*rollback\s+to\b/i.test(text));
      if (control === "rollback" || control === "abort") groups = [];
      if (ends) {
        open = false;
        if (begin !== undefined && groups.length === 0) {
          // Nothing was sent since BEGIN: there is no transaction on the server to end.
          begin = undefined;
          return answered(control === "commit" || control === "end" ? "COMMIT" : "ROLLBACK");
        }
      }
      const role = open ? statementOf(text)?.role : undefined;
      if (role === "deferred") {
        assertDeferrable(text); // refused here, where it is written, not where it would have been sent
        join(statement);
        return DEFERRED;
      }
      if (role === "carrier" && groups.length > 0) {
        join(statement);
        return sendAll(takeWaiting());
      }
      return sendAll([...takeWaiting(), statement]);
    },
  };
}

/**
 * What write-behind needs to know of a text: the tables it writes, whether only by INSERT, its parameters, and
 * whether it may be deferred (assertDeferrable).
 */
interface Shape {
  writes: string[];
  inserts: boolean;
  parameters: number;
  deferrable: boolean;
}

const shapes = new Map<string, Shape>();

const WRITE = /(insert\s+into|update|delete\s+from)\s+"?(\w+)"?/gi;

function shapeOf(text: string): Shape {
  let shape = shapes.get(text);
  if (shape === undefined) {
    // Parameters are renumbered by their $n marks: a literal or a comment could hold one, so none is allowed.
    if (/'|\$\$|--|\/\*/.test(text)) throw new Error("write-behind combines only texts without literals");
    const writes = [...text.matchAll(WRITE)];
    const marks = [...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
    shape = {
      writes: writes.map((m) => m[2]!.toLowerCase()),
      inserts: writes.every((m) => m[1]!.toLowerCase().startsWith("insert")),
      parameters: Math.max(0, ...marks),
      deferrable:
        /^\s*(insert|update|delete)\b/i.test(text) &&
        writes.length === 1 &&
        !/\b(returning|on\s+conflict)\b/i.test(text),
    };
    shapes.set(text, shape);
  }
  return shape;
}

/**
 * A deferred write answers nothing and becomes a CTE: one plain INSERT, UPDATE or DELETE, without RETURNING (its
 * rows would be lost), ON CONFLICT (two upserts of one key in one statement fail) or a WITH of its own.
 */
function assertDeferrable(text: string): void {
  if (!shapeOf(text).deferrable) {
    throw new Error("a deferred statement must be one plain INSERT, UPDATE or DELETE");
  }
}

/** Whether `text` may not share a statement with these writes (see the invariants above). */
function clashes(waiting: readonly Statement[], text: string): boolean {
  return waiting.some((w) => pairClashes(w.text)(text));
}

/** Whether a later text may not share a statement with an earlier one: decided once per pair of texts. */
const pairClashes = memo((earlier: string) =>
  memo((later: string) => {
    const [a, b] = [shapeOf(earlier), shapeOf(later)];
    const shared =
      a.writes.some((table) => names(later, table)) || b.writes.some((table) => names(earlier, table));
    return shared && !(a.inserts && b.inserts && sameTables(a, b));
  }),
);

/** Both write the one same table (by plain inserts: they may share a statement). */
function sameTables(a: Shape, b: Shape): boolean {
  return a.writes.length === 1 && b.writes.length === 1 && a.writes[0] === b.writes[0];
}

function names(text: string, table: string): boolean {
  return new RegExp(`\\b${table}\\b`, "i").test(text);
}

/**
 * Combined texts by their parts, so each combination is built (and named) once. Only combinations of a few
 * statements are kept and named (the hot paths': a verify's step, audit row and count); a longer one (a batch
 * that audits a row per tenant) is built each time and sent unnamed, so neither map nor connection grows with it.
 */
const NAMED_PARTS = 4;
const combined = new Map<string, string>();

/** The statements as one: every one but the last as a CTE in front of the last, parameters renumbered. */
function combine(statements: readonly Statement[]): Statement {
  if (statements.length === 1) return statements[0]!;
  const texts = statements.map((s) => s.text);
  let text: string | undefined;
  if (statements.length <= NAMED_PARTS) {
    const key = texts.join("\u0000");
    text = combined.get(key);
    if (text === undefined) {
      text = namedStatement(combinedText(texts));
      combined.set(key, text);
    }
  } else text = combinedText(texts);
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
