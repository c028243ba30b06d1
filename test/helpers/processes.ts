// Real cardvault processes for multi-process tests: `serve` and `worker` spawned from the sources with tsx,
// sharing one data directory (keystore, JWT secret) and one database.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface CardvaultProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** The command line that runs the CLI from the sources, under `umask` when given (through sh: a test's own
 * process.umask() would change it for every test in the worker). */
export function cardvaultCommand(args: string[], options: { umask?: number } = {}): [string, string[]] {
  const node = [process.execPath, "--import", "tsx", "src/cli/main.ts", ...args];
  if (options.umask === undefined) return [node[0]!, node.slice(1)];
  const umask = options.umask.toString(8).padStart(3, "0");
  return ["/bin/sh", ["-c", `umask ${umask} && exec "$0" "$@"`, ...node]];
}

export function spawnCardvault(
  args: string[],
  env: Record<string, string>,
  options: { umask?: number } = {},
): CardvaultProcess {
  const [command, commandArgs] = cardvaultCommand(args, options);
  const child = spawn(command, commandArgs, {
    cwd: root,
    env: { ...process.env, NODE_ENV: "development", CARDVAULT_LOG_LEVEL: "warn", ...env },
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return { child, output: () => output, exited };
}

/** Waits until the process has printed `text` (e.g. its "running" log line). */
export async function waitForOutput(
  process: CardvaultProcess,
  text: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!process.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in the output: ${process.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}
