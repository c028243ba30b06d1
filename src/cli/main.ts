#!/usr/bin/env node
// `cardvault <command>`: the one entry point for the server and the operator's tools (declared in commands.ts).
import { main } from "./commands.js";
import { processIo } from "./io.js";

const code = await main(process.argv.slice(2), processIo);
if (code >= 0) process.exitCode = code;
