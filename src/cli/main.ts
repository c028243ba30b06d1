#!/usr/bin/env node
// `cardvault <command>`: the one entry point for the server and the operator's tools.
import { ConfigError } from "../config.js";
import { KeystoreError } from "../keys/keystore-file.js";
import { SchemaError } from "../store/db.js";
import { auditCommand } from "./audit.js";
import { cryptoCommand } from "./crypto.js";
import { type CliIo, processIo, UsageError } from "./io.js";
import { keysCommand } from "./keys.js";
import { migrateCommand } from "./migrate.js";
import { serveCommand } from "./serve.js";
import { tenantsCommand } from "./tenants.js";
import { tokenCommand } from "./token.js";
import { workerCommand } from "./worker.js";

const USAGE = `usage: cardvault <command> [options]

commands:
  serve [--host H] [--port N] [--data-dir DIR]   run the HTTP API
  worker [--data-dir DIR]                        run the background jobs without the API
  migrate [--data-dir DIR]                       apply database migrations
  keys init | list | rotate [--type T]           manage the keystore
  tenants add ID [...] | tenants list            manage tenants (card programs)
  token --tenant ID --scope "..." [--ttl 1h]     mint a bearer token for this server
  audit list --operator | --tenant ID [...]      read audit records (the operator's: refused requests)
  crypto <cvv|pvv|ibm3624-offset|pin-block|kcv|dcvv> ...   card cryptography calculator`;

const commands: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  serve: (args) => serveCommand(args),
  worker: (args) => workerCommand(args),
  migrate: migrateCommand,
  keys: keysCommand,
  tenants: tenantsCommand,
  token: tokenCommand,
  audit: auditCommand,
  crypto: cryptoCommand,
};

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "help") {
    (name ? io.stdout : io.stderr)(USAGE);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(args, io);
  } catch (error) {
    if (
      error instanceof UsageError ||
      error instanceof ConfigError ||
      error instanceof KeystoreError ||
      error instanceof SchemaError
    ) {
      io.stderr(`cardvault ${name}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

const code = await main(process.argv.slice(2), processIo);
if (code >= 0) process.exitCode = code;
