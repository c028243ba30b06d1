// `npm run bench [-- --quick] [-- --tsx] [-- --only id,id]`: runs every scenario next to its baseline,
// prints the table, and writes bench/results/<date>.json and bench/results/latest.md. Invariant: ratios of
// same-run medians are the headline numbers; absolute figures are printed beside them only for context.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runAuthhostBench } from "./authhost-bench.js";
import { runCryptoBench } from "./crypto-bench.js";
import { runFloodBench } from "./flood-bench.js";
import { runHttpBench } from "./http-bench.js";
import { runImportBench } from "./import-bench.js";
import { runPkcs11Bench } from "./pkcs11-bench.js";
import { root } from "./processes.js";
import { runRotationBench } from "./rotation-bench.js";
import { fmt, type ScenarioResult } from "./stats.js";
import { runInProcessTelemetryBench, runTelemetryBench } from "./telemetry-bench.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    // serve runs as `npm start` runs it (compiled dist/) unless --tsx asks for the sources through tsx.
    tsx: { type: "boolean", default: false },
    only: { type: "string" },
    "no-postgres": { type: "boolean", default: false },
  },
});
const quick = values.quick;
const only = values.only?.split(",");
const wants = (prefix: string) => !only || only.some((o) => o.startsWith(prefix) || prefix.startsWith(o));
const postgresUrl = values["no-postgres"]
  ? undefined
  : (process.env.CARDVAULT_BENCH_DATABASE_URL ??
    process.env.CARDVAULT_TEST_DATABASE_URL ??
    "postgres://postgres@127.0.0.1:5432/postgres");
if (postgresUrl && !/^postgres(ql)?:\/\/[^/]*@?(127\.0\.0\.1|localhost)(:\d+)?\//.test(postgresUrl)) {
  throw new Error(
    "The bench only talks to 127.0.0.1: point CARDVAULT_BENCH_DATABASE_URL at a local PostgreSQL.",
  );
}
const log = (line: string) => process.stderr.write(`${line}\n`);
const started = Date.now();
/** Runs one phase of the bench, saying how long it took (what `--quick`'s three-minute budget is spent on). */
async function phase<T>(title: string, run: () => Promise<T> | T): Promise<T> {
  log(`${title}…`);
  const phaseStarted = Date.now();
  const result = await run();
  log(`  (${Math.round((Date.now() - phaseStarted) / 1000)} s)`);
  return result;
}

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? "unknown",
  memoryGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
};
const mode = values.tsx ? "tsx" : "compiled";
if (mode === "compiled") {
  await phase("building (npm run build) for a compiled run", () =>
    execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" }),
  );
}

const results: ScenarioResult[] = [];
let peakRssMb = Number.NaN;

// --quick keeps every scenario (the PostgreSQL ones included) with fewer and shorter rounds and smaller
// populations, to finish in under three minutes on two cores; the full run is what BENCHMARKS.md quotes.
if (wants("cvv") || wants("pvv") || wants("pin")) {
  await phase("crypto scenarios", () =>
    results.push(...runCryptoBench({ rounds: quick ? 3 : 7, ms: quick ? 100 : 1000 })),
  );
}
if (wants("pkcs11")) {
  await phase("PKCS#11 scenarios (SoftHSM2 beside the local provider)", async () =>
    results.push(...(await runPkcs11Bench({ rounds: quick ? 3 : 7, ms: quick ? 250 : 1000 }, log))),
  );
}
if (wants("http")) {
  await phase("HTTP scenarios (serve + Fastify baseline, autocannon over loopback)", async () => {
    const http = await runHttpBench({
      rounds: quick ? 1 : 5,
      durationSeconds: quick ? 2 : 10,
      connections: 50,
      mode,
      only: only?.filter((o) => o.startsWith("http-")).length ? only : undefined,
      ...(postgresUrl ? { postgresUrl } : {}),
    });
    results.push(...http.results);
    peakRssMb = http.peakRssMb;
  });
}
if (wants("telemetry")) {
  await phase("telemetry scenarios (verify with telemetry off, metrics on, traces on)", async () => {
    results.push(
      ...(await runTelemetryBench({
        rounds: quick ? 2 : 5,
        durationSeconds: quick ? 2 : 10,
        connections: 50,
        mode,
      })),
    );
    results.push(...(await runInProcessTelemetryBench({ rounds: quick ? 3 : 15, batch: quick ? 200 : 500 })));
  });
}
if (wants("flood")) {
  await phase(
    "Get Card Data flood scenarios (serve, probes at a fixed rate, 32 flooding connections)",
    async () =>
      results.push(
        ...(await runFloodBench({ rounds: quick ? 1 : 3, durationSeconds: quick ? 2 : 10, mode })),
      ),
  );
}
if (wants("authhost") && postgresUrl) {
  const cards = quick ? 2_000 : 10_000;
  await phase(
    `authorisation-host load (PostgreSQL, 2 serves, ${cards.toLocaleString("en")} cards, hot-card skew)`,
    async () =>
      results.push(
        ...(await runAuthhostBench({ postgresUrl, cards, durationSeconds: quick ? 5 : 60, mode }, log)),
      ),
  );
}
if (wants("rotation")) {
  await phase("rotation scenarios", async () =>
    results.push(
      ...(await runRotationBench(
        { cards: quick ? 2_000 : 100_000, rounds: quick ? 1 : 3, postgresUrl },
        log,
      )),
    ),
  );
}
if (wants("import")) {
  await phase("card import scenarios", async () =>
    results.push(
      ...(await runImportBench({ cards: quick ? 5_000 : 100_000, rounds: quick ? 1 : 3, postgresUrl }, log)),
    ),
  );
}

const ratioText = (r: ScenarioResult) => `${r.ratio.toFixed(2)}×`;
const targetText = (r: ScenarioResult) =>
  [
    r.target !== undefined ? `≥ ${r.target}×` : r.ceiling !== undefined ? `≤ ${r.ceiling}×` : "report",
    r.p99TargetMs ? `p99 ≤ ${r.p99TargetMs} ms` : "",
  ]
    .filter(Boolean)
    .join(", ");
const metText = (r: ScenarioResult) => (r.met === undefined ? "—" : r.met ? "met" : "NOT met");
const header = "| scenario | value (median) | baseline (median) | ratio | p99 | target | |";
const rows = results.map(
  (r) =>
    `| ${r.title} | ${fmt(r.value)} ${r.unit} | ${fmt(r.baseline)} (${r.baselineLabel}) | ${ratioText(r)} | ${r.p99Ms !== undefined ? `${fmt(r.p99Ms, 1)} ms` : "—"} | ${targetText(r)}${r.notes?.length ? `; ${r.notes.join("; ")}` : ""} | ${metText(r)} |`,
);
if (!Number.isNaN(peakRssMb))
  rows.push(
    `| peak RSS of serve under the HTTP scenarios | ${fmt(peakRssMb, 1)} MB | — | — | — | ≤ 200 MB | ${peakRssMb <= 200 ? "met" : "NOT met"} |`,
  );
const date = new Date().toISOString();
const md = [
  `Run ${date} (${quick ? "--quick" : "full"}, serve run with ${mode === "compiled" ? "compiled dist/" : "tsx from src/"}) in ${Math.round((Date.now() - started) / 1000)} s`,
  `Machine: ${machine.cores} cores, ${machine.cpu}, ${machine.memoryGb} GB, Node ${machine.node}, ${machine.platform}`,
  "",
  header,
  "|---|---|---|---|---|---|---|",
  ...rows,
  "",
].join("\n");
console.log(md);
const dir = join(root, "bench", "results");
mkdirSync(dir, { recursive: true });
writeFileSync(
  join(dir, `${date.slice(0, 19).replace(/:/g, "-")}.json`),
  `${JSON.stringify({ date, quick, mode, machine, peakRssMb, results }, null, 2)}\n`,
);
writeFileSync(join(dir, "latest.md"), `${md}`);
