// Child processes for the bench: the server under test (`cardvault serve`), the Fastify baseline and the
// rotation workers, on 127.0.0.1 only. Invariant: every child is started here and stopped by its own pid,
// and its peak RSS (VmHWM) is read from /proc before it exits.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const root = join(import.meta.dirname, "..");

export { freePort } from "../test/helpers/processes.js";

/** How the service runs: compiled JavaScript (after `npm run build`) or the TypeScript sources through tsx. */
export type RunMode = "compiled" | "tsx";

export function nodeArgs(mode: RunMode, entry: { ts: string; js: string }, extra: string[] = []): string[] {
  return mode === "compiled"
    ? [...extra, join(root, entry.js)]
    : [...extra, "--import", "tsx", join(root, entry.ts)];
}

/**
 * `cardvault serve` on a port and a data directory, background jobs off, with `env` (the bench's settings and
 * the scenario's) over the parent's environment: the one way every scenario starts the server under test.
 */
export function startServe(
  run: { mode: RunMode; nodeFlags?: string[] },
  port: number,
  dataDir: string,
  env: Record<string, string | undefined>,
): Child {
  return start(
    nodeArgs(run.mode, { ts: "src/cli/main.ts", js: "dist/cli/main.js" }, run.nodeFlags ?? []).concat([
      "serve",
      "--port",
      String(port),
      "--data-dir",
      dataDir,
    ]),
    { CARDVAULT_JOBS: "off", NODE_ENV: "development", ...env },
  );
}

export interface Child {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | string>;
}

export function start(args: string[], env: Record<string, string | undefined> = {}): Child {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let output = "";
  child.stderr?.on("data", (d) => {
    output = (output + d).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, output: () => output, exited };
}

export async function waitForHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.child.exitCode !== null)
      throw new Error(`process exited before ${url} came up:\n${child.output()}`);
    const ok = await fetch(url).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up:\n${child.output()}`);
}

/** Peak resident set size in MB (Linux VmHWM), or NaN where /proc is not available. */
export function peakRssMb(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export async function stop(child: Child): Promise<void> {
  if (child.child.exitCode === null) child.child.kill("SIGTERM");
  const timer = setTimeout(() => child.child.kill("SIGKILL"), 10_000);
  await child.exited;
  clearTimeout(timer);
}
