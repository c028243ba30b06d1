// Redocly CLI's lint (the committed redocly.yaml: recommended-strict, every rule an error) on the document a live
// server serves over HTTP: no errors, no warnings. Redocly is a third-party tool no one here wrote, so a document
// it accepts is one other tools (generators, gateways, portals) will read as we mean it.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createHarness, type Harness } from "./helpers/harness.js";

const root = fileURLToPath(new URL("..", import.meta.url));
let h: Harness;
let dir: string;

beforeAll(async () => {
  h = await createHarness({ env: { CARDVAULT_PUBLIC_URL: "https://cards.example.test" } });
  dir = mkdtempSync(join(tmpdir(), "cardvault-lint-"));
});
afterAll(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
}

it("passes Redocly CLI's lint with no problems, on the document fetched from a live server", async () => {
  const base = await h.app.listen({ host: "127.0.0.1", port: 0 });
  const served = await fetch(`${base}/openapi.json`);
  expect(served.status).toBe(200);
  const file = join(dir, "openapi.json");
  writeFileSync(file, await served.text());

  const run = await promisify(execFile)(
    join(root, "node_modules/.bin/redocly"),
    ["lint", file, "--config", join(root, "redocly.yaml"), "--format=json"],
    {
      cwd: dir,
      // No telemetry and no update check: the test talks to nothing but the loopback server.
      env: {
        ...process.env,
        REDOCLY_TELEMETRY: "off",
        REDOCLY_SUPPRESS_UPDATE_NOTICE: "true",
        NO_COLOR: "1",
      },
      maxBuffer: 16 * 1024 * 1024,
    },
  ).catch((error: { stdout?: string; stderr?: string }) => ({
    stdout: error.stdout ?? "",
    stderr: error.stderr ?? "",
  }));
  // The report is the JSON object on stdout (Redocly may print a notice before it).
  const start = run.stdout.indexOf("{");
  expect(start, run.stderr).toBeGreaterThanOrEqual(0);
  const report = JSON.parse(run.stdout.slice(start)) as LintReport;
  const problems = report.problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`);
  expect(problems).toEqual([]);
  expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
}, 60_000);
