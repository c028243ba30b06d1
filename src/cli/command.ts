// How a CLI command is declared, parsed and explained. Each command is declared once — what it does, its
// positional arguments, its options with their defaults and help, an example — and both the parser and
// `--help` are made from that declaration, so the help can neither miss an option the parser takes nor describe
// one it refuses, and a default is applied where it is shown.
// Invariant: a parse error names only well-formed option names, never a value the user typed (it may be a PIN
// or a key), and points to the command's --help.
import { parseArgs } from "node:util";
import { type CliIo, UsageError } from "./io.js";

export interface OptionSpec {
  type: "string" | "boolean";
  /** What the value is, as the help shows it: `--bin DIGITS`. */
  value?: string;
  /** Repeatable: `--type cvk --type pvk`. */
  multiple?: boolean;
  /** Applied by the parser when the option is absent, and shown in the help. */
  default?: string | readonly string[];
  /** Missing or empty → a usage error (checked after --help, so the help never needs it). */
  required?: boolean;
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<O> = O extends { type: "boolean" }
  ? boolean | undefined
  : O extends { multiple: true }
    ? O extends { default: readonly string[] }
      ? string[]
      : string[] | undefined
    : O extends { required: true } | { default: string }
      ? string
      : string | undefined;

/** The parsed options of a command, typed from its declaration (any command's: a record of unknowns). */
export type Values<O extends OptionSpecs> = string extends keyof O
  ? Record<string, unknown>
  : { -readonly [K in keyof O]: ValueOf<O[K]> };

export interface Command<O extends OptionSpecs = OptionSpecs> {
  summary: string;
  /** Positional arguments, all required, as the usage line names them: ["ID"]. */
  args?: readonly string[];
  options: O;
  /** One complete command line, starting with `cardvault`. */
  example: string;
  /** Exit code; -1 keeps the process running (serve, worker). */
  run(input: { values: Values<O>; args: string[] }, io: CliIo): Promise<number>;
}

export interface Group {
  summary: string;
  commands: Record<string, Command | Group>;
}

/** Identity, so that `run` sees values typed from the options declared beside it. */
export function command<const O extends OptionSpecs>(declaration: Command<O>): Command<O> {
  return declaration;
}

/**
 * Runs the command `argv` names, or prints the help it asks for. A bad command line, and any error `expected`
 * accepts (configuration, keystore…), is one line on stderr and exit code 2; anything else is a bug and throws.
 */
export async function runCommandLine(
  root: Group,
  argv: string[],
  io: CliIo,
  expected: (error: unknown) => Promise<boolean>,
): Promise<number> {
  let path = "cardvault";
  try {
    const request = resolve(root, argv);
    path = request.path;
    if ("help" in request) {
      (request.toStderr ? io.stderr : io.stdout)(request.help);
      return request.toStderr ? 2 : 0;
    }
    return await request.command.run(request, io);
  } catch (error) {
    if (error instanceof CommandLineError) path = error.path;
    if (error instanceof UsageError || (await expected(error))) {
      io.stderr(`${path}: ${(error as Error).message}`);
      return 2;
    }
    throw error;
  }
}

/** What a command line asks for: a command with its parsed input, or the help of a command or group. */
export type Request =
  | { path: string; command: Command; values: Record<string, unknown>; args: string[] }
  | { path: string; help: string; toStderr?: boolean };

/** Resolves `argv` against the declarations: the command it names and its parsed options, or a help text. */
export function resolve(root: Group, argv: string[]): Request {
  let node: Command | Group = root;
  let path = "cardvault";
  let rest = argv;
  while ("commands" in node) {
    const [name, ...more] = rest;
    // No command at all is a usage error too: the help goes to stderr.
    if (name === undefined) return { path, help: helpText(node, path), toStderr: true };
    if (name === "--help" || name === "-h" || name === "help") return { path, help: helpText(node, path) };
    const next: Command | Group | undefined = Object.hasOwn(node.commands, name)
      ? node.commands[name]
      : undefined;
    if (next === undefined) {
      const named = /^[a-z][a-z0-9-]*$/.test(name) ? ` "${name}"` : "";
      throw new CommandLineError(path, `unknown command${named}`);
    }
    node = next;
    path = `${path} ${name}`;
    rest = more;
  }
  const command: Command = node;
  const parserOptions: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, { type, multiple }] of Object.entries(command.options)) {
    parserOptions[name] = multiple ? { type, multiple } : { type };
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: parserOptions, strict: true, allowPositionals: true });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (!code?.startsWith("ERR_PARSE_ARGS_")) throw error; // a bad declaration, not a bad command line
    throw new CommandLineError(path, describeParseError(error as Error, code));
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { path, help: helpText(command, path) };
  delete values.help;
  const declared = command.args ?? [];
  if (positionals.length > declared.length) {
    throw new CommandLineError(path, "unexpected argument (every value must follow its --option)");
  }
  if (positionals.length < declared.length)
    throw new CommandLineError(path, `missing ${declared[positionals.length]}`);
  for (const [name, option] of Object.entries(command.options)) {
    if (values[name] === undefined && option.default !== undefined)
      values[name] = structuredClone(option.default);
    if (option.required && (values[name] === undefined || values[name] === "")) {
      throw new CommandLineError(path, `missing --${name}`);
    }
  }
  return { path, command, values, args: positionals };
}

/** A bad command line: the message says where to read how to write it. */
export class CommandLineError extends UsageError {
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${problem}; see \`${path} --help\``);
    this.path = path;
  }
}

/** parseArgs messages can quote what the user typed (maybe a PIN): keep only well-formed option names. */
function describeParseError(error: Error, code: string): string {
  const message = error.message;
  const name = /'(?:-[a-z], )?(--?[a-z][a-z0-9-]*)/.exec(message)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return name ? `unknown option ${name}` : "unknown option";
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (message.includes("does not take an argument")) return `option ${name ?? ""} takes no value`;
      return name ? `option ${name} needs a value` : "an option is missing its value";
    default:
      return "invalid arguments";
  }
}

/** The help of a group (its commands) or of a command (usage, every option with its default, an example). */
export function helpText(node: Command | Group, path: string): string {
  if ("commands" in node) {
    const names = Object.keys(node.commands);
    const width = Math.max(...names.map((n) => n.length));
    return [
      `usage: ${path} <command> [options]`,
      "",
      node.summary,
      "",
      "commands:",
      ...names.map((name) => `  ${name.padEnd(width)}  ${node.commands[name]!.summary}`),
      "",
      `\`${path} <command> --help\` shows a command's options and an example.`,
    ].join("\n");
  }
  const flag = (name: string, option: OptionSpec) =>
    option.type === "string" ? `--${name} ${option.value ?? "VALUE"}` : `--${name}`;
  const options: [string, string][] = Object.entries(node.options).map(([name, option]) => {
    const notes = [
      option.required ? " (required)" : "",
      option.multiple ? " (repeatable)" : "",
      option.default !== undefined ? ` (default: ${[option.default].flat().join(" ")})` : "",
    ];
    return [flag(name, option), `${option.help}${notes.join("")}`];
  });
  options.push(["-h, --help", "show this help"]);
  const width = Math.max(...options.map(([label]) => label.length));
  const required = Object.entries(node.options)
    .filter(([, option]) => option.required)
    .map(([name, option]) => ` ${flag(name, option)}`);
  return [
    `usage: ${path}${(node.args ?? []).map((a) => ` ${a}`).join("")}${required.join("")} [options]`,
    "",
    node.summary,
    "",
    "options:",
    ...options.map(([label, text]) => `  ${label.padEnd(width)}  ${text}`),
    "",
    "example:",
    `  ${node.example}`,
  ].join("\n");
}
