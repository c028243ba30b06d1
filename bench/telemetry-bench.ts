// What telemetry costs on the authorisation path: the same right-CVV verify load (as http-cvv-verify) against
// three `serve` processes on copies of one seeded data directory, interleaved round by round: telemetry off
// (the default: no CARDVAULT_METRICS_LISTEN, no OTLP endpoint, so nothing is wrapped), metrics on (scraped every
// 5 s during the load, as Prometheus would), and traces on (exported over OTLP/HTTP to a sink in this process
// that discards them). Invariant: each ratio is a median over the off process's median in the same run. Beside
// throughput, each round reads the serve process's CPU time (/proc/<pid>/stat): CPU per request is what
// telemetry adds, and unlike req/s it holds on a machine other work keeps busy.
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type autocannon from "autocannon";
import { loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { createTokenVerifier } from "../src/http/auth.js";
import { openRuntime } from "../src/runtime.js";
import { BENCH_ENV, load, seed } from "./http-bench.js";
import { type Child, freePort, type RunMode, startServe, stop, waitForHttp } from "./processes.js";
import { finish, median, type ScenarioResult } from "./stats.js";

/** CPU seconds (user + system) a process has used so far; NaN where /proc is not available. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

export interface TelemetryBenchOptions {
  rounds: number;
  durationSeconds: number;
  connections: number;
  mode: RunMode;
}

export async function runTelemetryBench(options: TelemetryBenchOptions): Promise<ScenarioResult[]> {
  const seeded = mkdtempSync(join(tmpdir(), "cardvault-bench-telemetry-"));
  const dirs: string[] = [seeded];
  const children: Child[] = [];
  // The OTLP/HTTP sink: reads each export and answers 200 (an empty ExportTraceServiceResponse).
  let exported = 0;
  const sink = createServer((req, res) => {
    req.resume().on("end", () => {
      exported++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  sink.listen(0, "127.0.0.1");
  try {
    const { cards, token } = await seed(seeded);
    const variants = [
      { id: "off", env: {} as Record<string, string> },
      { id: "metrics", env: { CARDVAULT_METRICS_LISTEN: `127.0.0.1:${await freePort()}` } },
      {
        id: "tracing",
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` },
      },
    ];
    const servers: { id: string; env: Record<string, string>; url: string; child: Child }[] = [];
    for (const variant of variants) {
      const dataDir =
        variant.id === "off" ? seeded : join(tmpdir(), `${seeded.split("/").pop()}-${variant.id}`);
      if (dataDir !== seeded) {
        cpSync(seeded, dataDir, { recursive: true });
        dirs.push(dataDir);
      }
      const port = await freePort();
      const child = startServe(options, port, dataDir, { ...BENCH_ENV, ...variant.env });
      children.push(child);
      servers.push({ ...variant, url: `http://127.0.0.1:${port}`, child });
    }
    // Generous: three processes start at once on a shared machine.
    await Promise.all(servers.map((s) => waitForHttp(`${s.url}/healthz`, s.child, 240_000)));

    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    let next = 0;
    const requests: autocannon.Request[] = [
      {
        method: "POST",
        setupRequest: (req) => {
          const card = cards[next++ % cards.length]!;
          return { ...req, path: `/v1/cards/${card.token}/cvv/verify`, body: `{"cvv":"${card.cvv}"}` };
        },
      },
    ];
    const metricsUrl = `http://${servers[1]!.env.CARDVAULT_METRICS_LISTEN}/metrics`;
    const measure = async (server: (typeof servers)[number], seconds: number) => {
      const scraping =
        server.id === "metrics"
          ? setInterval(
              () =>
                fetch(metricsUrl).then(
                  (r) => r.text(),
                  () => "",
                ),
              5000,
            )
          : undefined;
      const cpuBefore = cpuSeconds(server.child.child.pid);
      try {
        const result = await load(server.url, options.connections, seconds, requests, auth);
        const cpu = cpuSeconds(server.child.child.pid) - cpuBefore;
        // Requests per CPU second: higher is cheaper.
        return { ...result, perCpuSecond: result.total / cpu };
      } finally {
        clearInterval(scraping);
      }
    };
    for (const server of servers) await measure(server, 1); // warm-up
    const rounds = new Map(servers.map((s) => [s.id, [] as Awaited<ReturnType<typeof measure>>[]]));
    for (let r = 0; r < options.rounds; r++) {
      for (const server of servers)
        rounds.get(server.id)!.push(await measure(server, options.durationSeconds));
    }
    const scraped = await (await fetch(metricsUrl)).text();
    const off = rounds.get("off")!;
    const offValue = median(off.map((l) => l.requests));
    const offPerCpu = median(off.map((l) => l.perCpuSecond));
    const result = (id: string, title: string, target: number | undefined, notes: string[]) => {
      const subject = rounds.get(id)!;
      const failures = subject.reduce((n, l) => n + l.non2xx + l.errors, 0);
      const perCpu = median(subject.map((l) => l.perCpuSecond));
      const throughput = median(subject.map((l) => l.requests));
      notes.unshift(
        `throughput ${Math.round(throughput)} req/s vs ${Math.round(offValue)} off: ${(throughput / offValue).toFixed(3)}×`,
      );
      // The judged figure: requests per CPU second of serve (what telemetry costs), throughput beside it.
      return finish({
        id: `telemetry-${id}-verify`,
        title: `POST …/cvv/verify (right CVV), ${title}, ${options.connections} connections`,
        unit: "req per CPU s",
        value: perCpu,
        baseline: offPerCpu,
        baselineLabel: "same, telemetry off (default)",
        rounds: { value: subject.map((l) => l.perCpuSecond), baseline: off.map((l) => l.perCpuSecond) },
        ...(target === undefined ? {} : { target }),
        p99Ms: median(subject.map((l) => l.p99)),
        notes: [...notes, ...(failures > 0 ? [`${failures} non-2xx/errors`] : [])],
      });
    };
    return [
      result("metrics", "metrics on (scraped every 5 s)", 0.95, [
        `off p99 ${median(off.map((l) => l.p99))} ms`,
        `${scraped.includes("cardvault_verify_total") ? "verify counted" : "NO verify counted"}`,
      ]),
      result("tracing", "traces on (OTLP/HTTP to a local sink)", undefined, [`${exported} OTLP exports`]),
    ];
  } finally {
    for (const c of children) await stop(c);
    sink.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The same comparison in one process, where the machine's other load falls on every variant alike: the app of
 * each variant (buildApp over openRuntime, as serve builds it) answers batches of verifies through inject(),
 * the variants interleaved batch by batch, each batch's CPU time read with process.cpuUsage(). No sockets: this
 * isolates what the instrumentation itself costs per request.
 */
export async function runInProcessTelemetryBench(options: {
  rounds: number;
  batch: number;
}): Promise<ScenarioResult[]> {
  const seeded = mkdtempSync(join(tmpdir(), "cardvault-bench-telemetry-inproc-"));
  const dirs = [seeded];
  const sink = createServer((req, res) => {
    req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  sink.listen(0, "127.0.0.1");
  const apps: {
    id: string;
    inject: Awaited<ReturnType<typeof buildApp>>;
    scrape?: () => Promise<string>;
    close(): Promise<void>;
  }[] = [];
  try {
    const { cards, token } = await seed(seeded);
    const variants: [string, Record<string, string>][] = [
      ["off", {}],
      ["metrics", { CARDVAULT_METRICS_LISTEN: "127.0.0.1:0" }],
      [
        "tracing",
        { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` },
      ],
    ];
    for (const [id, env] of variants) {
      const dataDir = `${seeded}-${id}`;
      cpSync(seeded, dataDir, { recursive: true });
      dirs.push(dataDir);
      // The OTLP exporter reads its endpoint from the process's environment, as it does in serve.
      Object.assign(process.env, env);
      const config = loadConfig({ ...BENCH_ENV, CARDVAULT_JOBS: "off", ...env }, { dataDir });
      const runtime = await openRuntime(config, { warn: () => {} });
      const app = await buildApp({
        services: runtime.services,
        idempotency: runtime.repos.idempotency,
        verifier: createTokenVerifier({ ...config.auth, hs256Secret: runtime.jwtSecret }, runtime.clock),
        store: runtime.store,
        keys: runtime.keys,
        clock: runtime.clock,
        bodyLimitBytes: config.bodyLimitBytes,
        idempotencyTtlHours: config.idempotencyTtlHours,
        apiDocs: false,
        publicUrl: config.publicUrl,
        logger: false,
        telemetry: runtime.telemetry,
      });
      apps.push({
        id,
        inject: app,
        scrape: runtime.telemetry.metrics?.scrape,
        close: async () => {
          await app.close();
          await runtime.close();
        },
      });
    }
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    let next = 0;
    /** One batch of verifies, 10 at a time (so group commits form as under load); its CPU µs per request. */
    const batch = async (app: (typeof apps)[number]["inject"]) => {
      const started = process.cpuUsage();
      for (let done = 0; done < options.batch; done += 10) {
        await Promise.all(
          Array.from({ length: 10 }, () => {
            const card = cards[next++ % cards.length]!;
            return app.inject({
              method: "POST",
              url: `/v1/cards/${card.token}/cvv/verify`,
              headers,
              payload: `{"cvv":"${card.cvv}"}`,
            });
          }),
        );
      }
      const used = process.cpuUsage(started);
      return (used.user + used.system) / options.batch;
    };
    for (const app of apps) await batch(app.inject); // warm-up
    const rounds = new Map(apps.map((a) => [a.id, [] as number[]]));
    for (let r = 0; r < options.rounds; r++) {
      for (const app of apps) rounds.get(app.id)!.push(await batch(app.inject));
    }
    const off = rounds.get("off")!;
    const offUs = median(off);
    // How the group commit fared with metrics on (its own figures): units per COMMIT.
    const text = (await apps.find((a) => a.id === "metrics")?.scrape?.()) ?? "";
    const sample = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    const unitsPerCommit =
      sample("cardvault_store_commit_group_size_sum") / sample("cardvault_store_commit_group_size_count");
    // Requests per CPU second, so that higher is better like every other bench ratio.
    const perCpuSecond = (us: number[]) => us.map((u) => 1e6 / u);
    return (["metrics", "tracing"] as const).map((id) =>
      finish({
        id: `telemetry-${id}-inject`,
        title: `verify through inject(), ${id === "metrics" ? "metrics on" : "traces on (OTLP to a local sink)"}, in one process`,
        unit: "req per CPU s",
        value: median(perCpuSecond(rounds.get(id)!)),
        baseline: median(perCpuSecond(off)),
        baselineLabel: "same, telemetry off (default)",
        rounds: { value: perCpuSecond(rounds.get(id)!), baseline: perCpuSecond(off) },
        ...(id === "metrics" ? { target: 0.95 } : {}),
        notes: [
          `${median(rounds.get(id)!).toFixed(0)} µs vs ${offUs.toFixed(0)} µs CPU per verify`,
          ...(id === "metrics" ? [`${unitsPerCommit.toFixed(1)} units per commit`] : []),
        ],
      }),
    );
  } finally {
    for (const app of apps) await app.close();
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.CARDVAULT_METRICS_LISTEN;
    sink.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
