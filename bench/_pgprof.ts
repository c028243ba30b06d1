// Profiles serve under the HTTP bench's verify and card-creation scenarios (SQLite and PostgreSQL).
import { execFileSync } from "node:child_process";
import { runHttpBench } from "./http-bench.js";

execFileSync("npm", ["run", "build", "--silent"], { stdio: "ignore" });
const dir = process.env.PROFDIR ?? "/tmp/pgprof";
const r = await runHttpBench({
  rounds: 2,
  durationSeconds: 5,
  connections: 50,
  mode: "compiled",
  only: (process.env.ONLY ?? "http-cvv-verify").split(","),
  postgresUrl: "postgres://postgres@127.0.0.1:5432/postgres",
  nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
});
for (const x of r.results)
  console.log(
    x.id,
    Math.round(x.value),
    x.unit,
    "ratio",
    x.ratio.toFixed(2),
    "p99",
    x.p99Ms,
    (x.notes ?? []).join("; "),
  );
