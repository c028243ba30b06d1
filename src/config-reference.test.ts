// The configuration reference, docs/configuration.md, names every environment variable the code reads (the
// service in src/config.ts, and the tests, bench and example) and only those; every other table of variables
// in the README and docs/ gives the same defaults. A variable read without documentation fails here by name.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** Set by the tools themselves, not settings of ours. */
const NOT_OURS = new Set(["VITEST_WORKER_ID"]);

/** Every TypeScript file of the project (src, test, bench, web, the Vitest configuration). */
function sourceFiles(): string[] {
  const files = ["vitest.config.ts"];
  for (const dir of ["src", "test", "bench", "web"]) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })) {
      if (entry.endsWith(".ts") && !entry.split("/").includes("node_modules")) files.push(`${dir}/${entry}`);
    }
  }
  return files;
}

/** variable → the files that read it: an upper-case property of `env` (process.env or an env parameter). */
function environmentReads(): Map<string, string[]> {
  const reads = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    for (const [, name] of read(file).matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) {
      if (NOT_OURS.has(name!)) continue;
      reads.set(name!, [...new Set([...(reads.get(name!) ?? []), file])]);
    }
  }
  return reads;
}

/** The rows of the tables headed `| variable | default |`: variable → default, backticks and spaces trimmed. */
function variableTables(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  let inTable = false;
  for (const line of markdown.split("\n")) {
    if (/^\|\s*variable\s*\|\s*default\s*\|/i.test(line)) inTable = true;
    else if (!line.startsWith("|")) inTable = false;
    else if (inTable) {
      const [name, fallback] = line
        .split("|")
        .slice(1, 3)
        .map((cell) => cell.replaceAll("`", "").trim());
      if (!/^[-: ]*$/.test(name!)) rows.set(name!, fallback!); // one variable a row; not the |---| line
    }
  }
  return rows;
}

const reference = variableTables(read("docs/configuration.md"));

describe("the configuration reference (docs/configuration.md)", () => {
  it("src/ reads the environment only in src/config.ts, the one place settings are read and validated", () => {
    const elsewhere = [...environmentReads()].flatMap(([name, files]) =>
      files
        .filter((f) => f.startsWith("src/") && f !== "src/config.ts" && !f.endsWith(".test.ts"))
        .map((f) => `${f} reads ${name}: read it in loadConfig (src/config.ts) and pass the value on`),
    );
    expect(elsewhere).toEqual([]);
  });

  it("documents every variable the code reads, and no variable nothing reads", () => {
    const reads = environmentReads();
    const undocumented = [...reads]
      .filter(([name]) => !reference.has(name))
      .map(
        ([name, files]) =>
          `${name} (read by ${files.join(", ")}) is not in docs/configuration.md: add its row (variable, default, valid values, meaning)`,
      );
    expect(undocumented).toEqual([]);
    const unread = [...reference.keys()]
      .filter((name) => !reads.has(name))
      .map((name) => `${name} is documented in docs/configuration.md but nothing reads it`);
    expect(unread).toEqual([]);
  });

  it("every other table of variables (README, docs/) agrees with it on each default", () => {
    const pages = ["README.md", ...readdirSync(join(root, "docs")).map((f) => `docs/${f}`)].filter(
      (page) => page.endsWith(".md") && page !== "docs/configuration.md",
    );
    const disagreements = pages.flatMap((page) =>
      [...variableTables(read(page))]
        .filter(([name, fallback]) => reference.get(name) !== fallback)
        .map(([name, fallback]) =>
          reference.has(name)
            ? `${page}: ${name} defaults to "${fallback}", docs/configuration.md says "${reference.get(name)}"`
            : `${page}: ${name} is not in docs/configuration.md`,
        ),
    );
    expect(disagreements).toEqual([]);
    expect(variableTables(read("README.md")).size).toBeGreaterThan(0);
    expect(read("README.md")).toContain("(docs/configuration.md)");
  });
});
