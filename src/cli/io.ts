// What a CLI command writes to: injected so commands can be tested without spawning a process.
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  stderr: (text) => process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
};

/** A bad command line: main prints the message on stderr and exits 2. */
export class UsageError extends Error {}
