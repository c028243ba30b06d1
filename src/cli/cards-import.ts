// `cardvault cards import FILE --tenant ID`: a card program's cards from another processor, read line by line
// (NDJSON, or CSV with a header) and imported by the card import service in batches. Safe to run again: cards
// already imported are counted as already present, so an import that stopped half-way (killed, a lost
// connection) finishes when run again. Progress goes to stderr — a bar with cards/s and ETA on a terminal,
// plain lines otherwise — and the summary to stdout. A rejected line goes to the rejects file as its number and
// reason, never its content: nothing here prints a PAN, PIN block or PVV.
import { createReadStream, createWriteStream, statSync, type WriteStream } from "node:fs";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { parseCsvHeader, parseCsvLine, parseNdjsonLine } from "../domain/card-import.js";
import { AppError } from "../domain/errors.js";
import { openRuntime } from "../runtime.js";
import type { ImportCounts, LineParser, SourceLine } from "../services/card-import.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, configFrom, integerOption } from "./options.js";

export interface CardsImportFlags extends ConfigFlags {
  tenant: string;
  format?: string;
  "dry-run"?: boolean;
  rejects?: string;
  "batch-size": string;
  "skip-luhn-check"?: boolean;
}

/**
 * The file's lines, numbered from 1, and how many bytes of it were read (for the ETA). The stream opens on the
 * first line asked for: readline emits lines as soon as it reads, and lines emitted before the consumer
 * iterates would be lost (the import service reads the tenant first).
 */
async function* readLines(file: string, read: { bytes: number }): AsyncIterable<SourceLine> {
  const stream = createReadStream(file);
  stream.on("data", (chunk) => {
    read.bytes += chunk.length;
  });
  let number = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    yield { number: ++number, text };
  }
}

/** The CSV form: the first line is the header (not a card); the lines after it are parsed under it. */
function withCsvHeader(lines: AsyncIterable<SourceLine>, setHeader: (names: string[]) => void) {
  return (async function* () {
    let first = true;
    for await (const line of lines) {
      if (first) {
        first = false;
        setHeader(parseCsvHeader(line.text));
        continue;
      }
      yield line;
    }
  })();
}

/** A progress bar on a terminal (redrawn in place), plain lines elsewhere: counts, cards/s, ETA by bytes read. */
function progressReporter(io: CliIo, total: number, read: { bytes: number }) {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  return {
    report(counts: ImportCounts, done = false) {
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? counts.lines / seconds : 0;
      const fraction = total > 0 ? Math.min(1, read.bytes / total) : 1;
      const eta = fraction > 0 && !done ? Math.max(0, seconds / fraction - seconds) : 0;
      const text = `${counts.lines} lines: ${counts.imported} imported, ${counts.alreadyPresent} already present, ${counts.rejected} rejected — ${Math.round(rate)} cards/s${done ? "" : `, ETA ${Math.ceil(eta)} s`}`;
      if (tty) {
        const width = 24;
        const filled = Math.round((done ? 1 : fraction) * width);
        process.stderr.write(
          `\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.round((done ? 1 : fraction) * 100)}% ${text}\u001b[K${done ? "\n" : ""}`,
        );
      } else if (!done) {
        io.stderr(`progress: ${text}`);
      }
    },
  };
}

export async function cardsImportCommand(
  values: CardsImportFlags,
  file: string | undefined,
  io: CliIo,
): Promise<number> {
  if (!file) throw new UsageError("missing FILE");
  const size = statSync(file, { throwIfNoEntry: false })?.size;
  if (size === undefined) throw new UsageError(`no file ${file}`);
  const format = values.format ?? (extname(file).toLowerCase() === ".csv" ? "csv" : "ndjson");
  if (format !== "ndjson" && format !== "csv") throw new UsageError("--format must be ndjson or csv");
  const batchSize = integerOption(values["batch-size"], "batch-size") ?? 500;
  if (batchSize < 1 || batchSize > 5000) throw new UsageError("--batch-size must be from 1 to 5000");

  const config = configFrom(values);
  const runtime = await openRuntime(config, { warn: (message) => io.stderr(`warning: ${message}`) });
  let rejects: WriteStream | undefined;
  try {
    if (values.rejects) {
      rejects = createWriteStream(values.rejects, { mode: 0o600 });
      rejects.write("line\treason\n");
    }
    const read = { bytes: 0 };
    let lines = readLines(file, read);
    let parse: LineParser = parseNdjsonLine;
    if (format === "csv") {
      let header: string[] = [];
      lines = withCsvHeader(lines, (names) => {
        header = names;
      });
      parse = (text, rules) => parseCsvLine(header, text, rules);
    }
    const progress = progressReporter(io, size, read);
    const counts = await runtime.services.cardImport.run(
      { tenantId: values.tenant, subject: "cardvault:cli:cards-import" },
      lines,
      {
        parse,
        dryRun: values["dry-run"] === true,
        luhn: values["skip-luhn-check"] !== true,
        batchSize,
        onRejected: (r) => {
          rejects?.write(`${r.line}\t${r.reason.replace(/[\t\n]/g, " ")}\n`);
        },
        onProgress: (c) => progress.report(c),
      },
    );
    progress.report(counts, true);
    io.stdout(
      `${values["dry-run"] ? "dry run (nothing written): " : ""}${counts.lines} lines: ${counts.imported} ${values["dry-run"] ? "would be imported" : "imported"}, ${counts.alreadyPresent} already present, ${counts.rejected} rejected${counts.rejected > 0 && values.rejects ? ` (see ${values.rejects})` : ""}`,
    );
    return counts.rejected > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof AppError) throw new UsageError(error.message);
    throw error;
  } finally {
    if (rejects) await new Promise<void>((resolve) => rejects!.end(resolve));
    await runtime.close();
  }
}
