// The operator's commands, run as a user would run them: through the same main() the binary runs, in process
// (environment and umask as a process would get them), and as real processes from the repository root where
// the process is the point (main.ts's exit code; serve answering, auditing and stopping on SIGTERM; the files a
// fresh serve creates).
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { cardvaultCommand, runCardvault, waitForHttp } from "./helpers/processes.js";

const root = join(import.meta.dirname, "..");
const dataDir = mkdtempSync(join(tmpdir(), "cardvault-cli-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/**
 * How long a `serve` from the sources may take to answer, and a test of real processes to finish: generous, as
 * the suite runs two files at a time on two cores (a fresh data directory generates RSA keys, through tsx).
 */
const SERVE_START_MS = 60_000;
vi.setConfig({ testTimeout: 120_000 });

const baseEnv = {
  ...process.env,
  NODE_ENV: "development",
  CARDVAULT_MASTER_KEY: "",
  CARDVAULT_JWT_SECRET: "",
};

/** The command as a real process from the sources (through tsx): for what only a process shows (main.ts, exit). */
function cliProcess(args: string[], env: Record<string, string> = {}) {
  const [command, commandArgs] = cardvaultCommand(args);
  const result = spawnSync(command, commandArgs, {
    cwd: root,
    env: { ...baseEnv, ...env },
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout.trim(), stderr: result.stderr.trim() };
}

/** The command in process, through the same main() the binary runs (see runCardvault): no tsx start-up. */
async function cli(args: string[], env: Record<string, string> = {}, options: { umask?: number } = {}) {
  const result = await runCardvault(args, { ...baseEnv, ...env }, options);
  return { code: result.code, stdout: result.stdout.trim(), stderr: result.stderr.trim() };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

describe("cardvault CLI", () => {
  it("creates development keys on first use, with a warning, and lists them with check values only", async () => {
    const init = await cli(["keys", "init", "--data-dir", dataDir]);
    expect(init.code).toBe(0);
    expect(init.stderr).toMatch(/DEVELOPMENT KEY/);
    const list = await cli(["keys", "list", "--data-dir", dataDir]);
    expect(list.code).toBe(0);
    const lines = list.stdout.split("\n");
    expect(lines.map((l) => l.split("\t")[0])).toEqual([
      "cvk-v1",
      "pvk-v1",
      "pin-storage-v1",
      "pan-data-v1",
      "fingerprint-v1",
      "pek-tdes-v1",
      "pek-aes-v1",
      "webhook-secret-v1",
      "secure-data-wrap-v1",
      "secure-data-sign-v1",
      "access-token-sign-v1",
    ]);
    for (const line of lines) expect(line).toMatch(/kcv=[0-9A-F]{6}\tactive/);
    const keystore = readFileSync(join(dataDir, "keystore.json"), "utf8");
    const master = readFileSync(join(dataDir, "dev-master.key"), "utf8").trim();
    expect(keystore).not.toContain(master);
  });

  it("rotates data keys to a new version, keeping the old ones listed as retired", async () => {
    const rotate = await cli(["keys", "rotate", "--data-dir", dataDir]);
    expect(rotate.code).toBe(0);
    expect(rotate.stdout).toContain("pan-data-v2");
    const list = (await cli(["keys", "list", "--data-dir", dataDir])).stdout;
    expect(list).toMatch(/pan-data-v1\t.*retired/);
    expect(list).toMatch(/pan-data-v2\t.*active/);
  });

  it("refuses a wrong master key with a clear message", async () => {
    const wrong = await cli(["keys", "list", "--data-dir", dataDir], {
      CARDVAULT_MASTER_KEY: "ab".repeat(32),
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/master key does not open the keystore/);
  });

  it("adds and lists tenants, refusing bad values", async () => {
    expect(
      (
        await cli([
          "tenants",
          "add",
          "acme",
          "--bin",
          "412345",
          "--max-cvv-tries",
          "5",
          "--data-dir",
          dataDir,
        ])
      ).code,
    ).toBe(0);
    const list = await cli(["tenants", "list", "--data-dir", dataDir]);
    expect(list.stdout).toContain("acme\tbin=412345\tpanLength=16\tmaxCvvTries=5\tmaxPinTries=3");
    const bad = await cli(["tenants", "add", "bad", "--bin", "12", "--data-dir", dataDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bin must be 6 to 11 digits/);
    expect((await cli(["tenants", "add", "acme", "--data-dir", dataDir])).stderr).toMatch(/already exists/);
  });

  it("`clients add | rotate-secret | list | revoke`: a secret printed once, never listed, never stored in clear", async () => {
    expect((await cli(["tenants", "add", "oauthco", "--data-dir", dataDir])).code).toBe(0);
    const added = await cli([
      "clients",
      "add",
      "--tenant",
      "oauthco",
      "--scope",
      "cards:read cvv:read",
      "--data-dir",
      dataDir,
    ]);
    expect(added.code, added.stderr).toBe(0);
    const id = /^client_id=(cvc_\S+)$/m.exec(added.stdout)![1]!;
    const secret = /^client_secret=(cvs_\S+)$/m.exec(added.stdout)![1]!;
    expect(added.stderr).toMatch(/shown once/);
    const rotated = await cli(["clients", "rotate-secret", id, "--overlap", "2h", "--data-dir", dataDir]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const newSecret = /^client_secret=(cvs_\S+)$/m.exec(rotated.stdout)![1]!;
    expect(newSecret).not.toBe(secret);
    expect(rotated.stderr).toMatch(/previous secret is accepted until 20\d\d-/);
    expect((await cli(["clients", "revoke", id, "--data-dir", dataDir])).stdout).toMatch(/^revoked cvc_/);
    const listed = await cli(["clients", "list", "--tenant", "oauthco", "--data-dir", dataDir]);
    expect(listed.stdout).toMatch(
      new RegExp(`^${id}\ttenant=oauthco\tscope="cards:read cvv:read"\trevoked=`, "m"),
    );
    const everything = readdirSync(dataDir)
      .map((f) => {
        try {
          return readFileSync(join(dataDir, f)).toString("latin1");
        } catch {
          return "";
        }
      })
      .join("");
    for (const s of [secret, newSecret]) expect(everything).not.toContain(s);
  }, 120_000);

  it("adds a tenant that accepts format-1 PIN blocks only when asked (--allow-pin-block-format-1)", async () => {
    expect(
      (await cli(["tenants", "add", "legacy", "--allow-pin-block-format-1", "--data-dir", dataDir])).code,
    ).toBe(0);
    expect((await cli(["tenants", "add", "strict", "--data-dir", dataDir])).code).toBe(0);
    const lines = (await cli(["tenants", "list", "--data-dir", dataDir])).stdout.split("\n");
    expect(lines.find((l) => l.startsWith("legacy\t"))).toMatch(/\tallowPinBlockFormat1/);
    expect(lines.find((l) => l.startsWith("strict\t"))).not.toMatch(/allowPinBlockFormat1/);
  });

  it("stops in production without a master key", async () => {
    const result = await cli(["serve", "--data-dir", dataDir, "--port", "0"], { NODE_ENV: "production" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/CARDVAULT_MASTER_KEY is required/);
  });

  it("serves the API with a token minted by `cardvault token`, metrics on their own listener, and stops cleanly on SIGTERM", async () => {
    const token = await cli([
      "token",
      "--tenant",
      "acme",
      "--scope",
      "cards:write cvv:read",
      "--data-dir",
      dataDir,
    ]);
    expect(token.code).toBe(0);
    expect(token.stdout.split(".")).toHaveLength(3);

    const port = await freePort();
    const metricsPort = await freePort();
    const server = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--port", String(port), "--data-dir", dataDir],
      {
        cwd: root,
        env: { ...baseEnv, CARDVAULT_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
      },
    );
    let output = "";
    server.stdout.on("data", (d) => {
      output += d;
    });
    server.stderr.on("data", (d) => {
      output += d;
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/healthz`, SERVE_START_MS);
      const headers = { authorization: `Bearer ${token.stdout}`, "content-type": "application/json" };
      const created = await fetch(`${base}/v1/cards`, {
        method: "POST",
        headers,
        body: JSON.stringify({ type: "virtual" }),
      });
      expect(created.status).toBe(201);
      const card = (await created.json()) as { publicToken: string; maskedPan: string };
      expect(card.maskedPan).toMatch(/^412345/);
      const cvv = await fetch(`${base}/v1/cards/${card.publicToken}/cvv`, { headers });
      expect((await cvv.json()) as object).toEqual({ cvv: expect.stringMatching(/^[0-9]{3}$/) });
      const forbidden = await fetch(`${base}/v1/cards/${card.publicToken}/pin`, { headers });
      expect(forbidden.status).toBe(403);
      expect((await fetch(`${base}/metrics`)).status).toBe(404);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toContain(
        'cardvault_http_request_duration_seconds_count{route="/v1/cards",method="POST",status_code="201"} 1',
      );
      expect(metrics).not.toContain(card.publicToken);
    } finally {
      server.kill("SIGTERM");
      const code = await new Promise((resolve) => server.on("exit", resolve));
      expect(code).toBe(0);
    }
    expect(output).toMatch(/DEVELOPMENT KEY/);
    expect(output).toMatch(/shutting down/);
    expect(output).toContain(`metrics on http://127.0.0.1:${metricsPort}/metrics`);
  });

  it("audits refused requests of a running serve, written when it stops; `audit list` reads them (Hardening II)", async () => {
    const token = await cli([
      "token",
      "--tenant",
      "acme",
      "--scope",
      "cards:read",
      "--subject",
      "cli-auditor",
      "--data-dir",
      dataDir,
    ]);
    expect(token.code).toBe(0);
    const port = await freePort();
    const server = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "serve", "--port", String(port), "--data-dir", dataDir],
      { cwd: root, env: baseEnv },
    );
    const exited = new Promise((resolve) => server.on("exit", resolve));
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/healthz`, SERVE_START_MS);
      for (let i = 0; i < 2; i++) expect((await fetch(`${base}/v1/cards/123456789`)).status).toBe(401);
      const headers = { authorization: `Bearer ${token.stdout}` };
      for (let i = 0; i < 3; i++) {
        expect((await fetch(`${base}/v1/cards/123456789/cvv`, { headers })).status).toBe(403);
      }
    } finally {
      server.kill("SIGTERM");
    }
    expect(await exited).toBe(0);

    const records = async (args: string[]) =>
      (await cli(["audit", "list", ...args, "--data-dir", dataDir])).stdout
        .split("\n")
        .filter(Boolean)
        .map(
          (line) => JSON.parse(line) as { action: string; actor: string; outcome: string; details: object },
        );
    expect((await records(["--operator"])).filter((r) => r.action === "auth.refused")).toEqual([
      expect.objectContaining({
        actor: "client:127.0.0.1",
        outcome: "unauthorized",
        details: expect.objectContaining({ count: 2, reason: "no_token" }),
      }),
    ]);
    expect((await records(["--tenant", "acme"])).filter((r) => r.actor === "cli-auditor")).toEqual([
      expect.objectContaining({
        action: "auth.refused",
        outcome: "forbidden",
        details: expect.objectContaining({ count: 3, scope: "cvv:read" }),
      }),
    ]);
    expect((await cli(["audit", "list", "--data-dir", dataDir])).code).toBe(2);
  }); // a server, and four CLI commands in process

  it("prints usage and exits non-zero on an unknown command", () => {
    const result = cliProcess(["frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown command/);
  });
});

describe("--help", () => {
  it("`tenants add --help` prints the usage, every option with its default and an example, on stdout", async () => {
    const help = await cli(["tenants", "add", "--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: cardvault tenants add ID \[options\]/);
    expect(help.stdout).toMatch(/--max-cvv-tries N .*\(default: 3\)/);
    expect(help.stdout).toMatch(/--allow-pin-block-format-1 /);
    expect(help.stdout).toMatch(/\nexample:\n {2}cardvault tenants add /);
  });

  it("answers an unknown option with exit code 2 and a pointer to the command's --help", async () => {
    for (const args of [
      ["serve", "--frobnicate"],
      ["tenants", "add", "acme", "--frobnicate"],
      ["crypto", "kcv", "--frobnicate"],
    ]) {
      const path = args.filter((a) => !a.startsWith("-") && a !== "acme").join(" ");
      const result = await cli(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(/unknown option --frobnicate/);
      expect(result.stderr).toContain(`cardvault ${path} --help`);
      expect(result.stdout).toBe("");
    }
  });

  it("every command and subcommand, as declared, answers --help with its usage, options, defaults and example", async () => {
    // Walks the declarations the parser uses: a command added without help text or example fails here.
    const { cardvault } = await import("../src/cli/commands.js");
    const { resolve } = await import("../src/cli/command.js");
    type Node = (typeof cardvault.commands)[string];
    const nodes: [string, Node][] = [];
    const walk = (path: string, node: Node) => {
      nodes.push([path, node]);
      if ("commands" in node)
        for (const [name, child] of Object.entries(node.commands)) walk(`${path} ${name}`, child);
    };
    walk("cardvault", cardvault);
    expect(nodes.length).toBeGreaterThan(20);

    // In process, through the same main() the binary runs (one real process is checked above): ~30 spawned
    // processes through tsx cost a minute of CPU on two cores.
    const { main } = await import("../src/cli/commands.js");
    const answers: { code: number; stdout: string; stderr: string }[] = [];
    for (const [path] of nodes) {
      let stdout = "";
      let stderr = "";
      const io = {
        stdout: (t: string) => (stdout += t.endsWith("\n") ? t : `${t}\n`),
        stderr: (t: string) => (stderr += t),
      };
      const code = await main([...path.split(" ").slice(1), "--help"], io);
      answers.push({ code, stdout: stdout.trim(), stderr });
    }
    nodes.forEach(([path, node], i) => {
      const { code, stdout, stderr } = answers[i]!;
      expect({ path, code, stderr }).toEqual({ path, code: 0, stderr: "" });
      expect(stdout.startsWith(`usage: ${path} `), stdout).toBe(true);
      expect(stdout).toContain(node.summary);
      const lines = stdout.split("\n");
      if ("commands" in node) {
        for (const [name, child] of Object.entries(node.commands)) {
          const listed = lines.some((l) => l.startsWith(`  ${name} `) && l.endsWith(` ${child.summary}`));
          expect(listed, `${path} lists ${name}`).toBe(true);
        }
        return;
      }
      for (const [name, option] of Object.entries(node.options)) {
        expect(option.help, `${path} --${name}`).not.toBe("");
        const line = lines.find((l) => l.startsWith(`  --${name} `) || l === `  --${name}`);
        expect(line, `${path} --${name}`).toBeDefined();
        expect(line).toContain(option.help);
        if (option.default !== undefined)
          expect(line).toContain(`(default: ${[option.default].flat().join(" ")})`);
      }
      expect(stdout).toMatch(/\n {2}-h, --help +show this help\n/);
      expect(stdout).toContain(`\nexample:\n  ${path}`);
      // The example is a command line its own declaration accepts.
      const words = node.example.match(/"[^"]*"|\S+/g)!.map((word) => word.replace(/^"(.*)"$/, "$1"));
      expect(resolve(cardvault, words.slice(1))).toMatchObject({ path, command: node });
    });
  }, 180_000);
});

describe("files the commands create, under umask 000", () => {
  const open = { umask: 0o000 };
  const fresh = () => join(mkdtempSync(join(dataDir, "files-")), "missing", "data");
  /** The directory's mode and each file's in it, as octal strings. */
  const modes = (dir: string) => ({
    dir: (statSync(dir).mode & 0o777).toString(8),
    files: Object.fromEntries(
      readdirSync(dir).map((name) => [name, (statSync(join(dir, name)).mode & 0o777).toString(8)]),
    ),
  });
  const privately = (names: string[]) => ({
    dir: "700",
    files: Object.fromEntries(names.map((name) => [name, "600"])),
  });

  it("`keys init` creates a missing nested data directory 0700, and the keystore 0600", async () => {
    const dir = fresh();
    const init = await cli(
      ["keys", "init", "--data-dir", dir],
      { CARDVAULT_MASTER_KEY: "33".repeat(32) },
      open,
    );
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(modes(dir)).toEqual(privately(["keystore.json", "keystore.json.lock"]));
    expect((statSync(join(dir, "..")).mode & 0o777).toString(8)).toBe("700");
    // With the development master key, which is created too.
    const dev = fresh();
    expect((await cli(["keys", "init", "--data-dir", dev], {}, open)).code).toBe(0);
    expect(modes(dev)).toEqual(privately(["dev-master.key", "keystore.json", "keystore.json.lock"]));
  });

  it("`migrate`, `tenants add` and `token` create their files 0600 in a 0700 directory", async () => {
    const migrated = fresh();
    expect((await cli(["migrate", "--data-dir", migrated], {}, open)).code).toBe(0);
    expect(modes(migrated)).toEqual(privately(["cardvault.db"]));
    const tenants = fresh();
    expect((await cli(["tenants", "add", "acme", "--data-dir", tenants], {}, open)).code).toBe(0);
    expect(modes(tenants)).toEqual(privately(["cardvault.db"]));
    const token = fresh();
    expect(
      (await cli(["token", "--tenant", "acme", "--scope", "cvv:read", "--data-dir", token], {}, open)).code,
    ).toBe(0);
    expect(modes(token)).toEqual(privately(["dev-jwt-secret"]));
  });

  it("tightens a database, -wal and -shm an older build left readable by others", async () => {
    const dir = fresh();
    expect((await cli(["migrate", "--data-dir", dir])).code).toBe(0);
    chmodSync(dir, 0o700);
    const db = join(dir, "cardvault.db");
    chmodSync(db, 0o644);
    // Empty -wal and -shm, as a process that was killed leaves them (SQLite reads both as empty).
    for (const suffix of ["-wal", "-shm"]) writeFileSync(`${db}${suffix}`, "", { mode: 0o644 });
    expect((await cli(["tenants", "list", "--data-dir", dir], {}, open)).code).toBe(0);
    const { files } = modes(dir);
    expect(files["cardvault.db"]).toBe("600");
    for (const [name, mode] of Object.entries(files)) expect([name, mode]).toEqual([name, "600"]);
  });

  it("`serve` on a fresh data directory: the database, its -wal and -shm, keys and secrets are 0600", async () => {
    const dir = fresh();
    const port = await freePort();
    const [command, commandArgs] = cardvaultCommand(
      ["serve", "--port", String(port), "--data-dir", dir],
      open,
    );
    const server = spawn(command, commandArgs, { cwd: root, env: baseEnv, stdio: "ignore" });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/readyz`, SERVE_START_MS);
      expect(modes(dir)).toEqual(
        privately([
          "cardvault.db",
          "cardvault.db-shm",
          "cardvault.db-wal",
          "dev-jwt-secret",
          "dev-master.key",
          "keystore.json",
          "keystore.json.lock",
        ]),
      );
    } finally {
      server.kill("SIGTERM");
      await new Promise((resolve) => server.on("exit", resolve));
    }
  });
});
