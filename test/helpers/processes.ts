// Real cardvault processes for multi-process tests: `serve` and `worker` spawned from the sources with tsx,
// sharing one data directory (keystore, JWT secret) and one database; and runCardvault, a command run in the
// test's process through the same main() the binary runs, where a separate process is not what is tested.
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
    env: cardvaultEnv(env),
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

export interface CardvaultRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in this process through the same main() the binary runs (src/cli/main.ts), with `env` as the
 * whole environment and `umask` as a process would get them, both restored when it returns: a command spawned
 * through tsx costs one to two seconds of CPU, and the suite runs on two cores. The worker is a forked process
 * running one test at a time, so nothing else sees the environment or umask meanwhile. Not for `serve` or
 * `worker`, which keep running.
 */
export async function runCardvault(
  args: string[],
  env: Record<string, string | undefined>,
  options: { umask?: number } = {},
): Promise<CardvaultRun> {
  let stdout = "";
  let stderr = "";
  // As processIo writes them: a newline after every text that lacks one.
  const io = {
    stdout: (t: string) => {
      stdout += t.endsWith("\n") ? t : `${t}\n`;
    },
    stderr: (t: string) => {
      stderr += t.endsWith("\n") ? t : `${t}\n`;
    },
  };
  const { main } = await import("../../src/cli/commands.js");
  const savedEnv = { ...process.env };
  const replaceEnv = (next: Record<string, string | undefined>) => {
    for (const name of Object.keys(process.env)) delete process.env[name];
    for (const [name, value] of Object.entries(next)) if (value !== undefined) process.env[name] = value;
  };
  const savedUmask = options.umask === undefined ? undefined : process.umask(options.umask);
  replaceEnv(env);
  try {
    const code = await main(args, io);
    return { code, stdout, stderr };
  } finally {
    if (savedUmask !== undefined) process.umask(savedUmask);
    replaceEnv(savedEnv);
  }
}

/** The environment a spawned command gets (spawnCardvault's), for runCardvault. */
export function cardvaultEnv(env: Record<string, string>): Record<string, string | undefined> {
  return { ...process.env, NODE_ENV: "development", CARDVAULT_LOG_LEVEL: "warn", ...env };
}
