// The cross-process lock: a live holder in another process keeps others out, and a holder that is killed while
// holding it frees it at once (no stale lock to wedge the next start). Also: createFileOnce has one winner.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LockTimeoutError, withFileLock } from "./file-lock.js";
import { createFileOnce } from "./private-files.js";

const dir = mkdtempSync(join(tmpdir(), "cardvault-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lockModule = join(import.meta.dirname, "file-lock.ts");

/** Another process that takes the lock, says so, and then holds it until it is killed. */
function holder(lockFile: string) {
  const script = `
    const { withFileLock } = await import(${JSON.stringify(lockModule)});
    withFileLock(${JSON.stringify(lockFile)}, () => {
      process.stdout.write("locked\\n");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    });`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d) => String(d).includes("locked") && resolve());
    child.on("exit", (code) => reject(new Error(`holder exited (${code}) before taking the lock`)));
  });
  const exited = new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  return { child, locked, exited };
}

describe("withFileLock", () => {
  it("keeps others out while another process holds it, and is free as soon as that process is killed", async () => {
    const lockFile = join(dir, "a.lock");
    const other = holder(lockFile);
    await other.locked;
    expect(() => withFileLock(lockFile, () => "mine", { waitMs: 200 })).toThrow(LockTimeoutError);
    other.child.kill("SIGKILL");
    expect(await other.exited).toBe("SIGKILL");
    const started = Date.now();
    expect(withFileLock(lockFile, () => "mine", { waitMs: 5000 })).toBe("mine");
    expect(Date.now() - started).toBeLessThan(1000);
  }, 15_000);

  it("is released when the function throws", () => {
    const lockFile = join(dir, "b.lock");
    expect(() =>
      withFileLock(lockFile, () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(withFileLock(lockFile, () => 1, { waitMs: 100 })).toBe(1);
  });
});

describe("createFileOnce", () => {
  it("publishes the first content and keeps it; later callers lose and leave no temporary file", () => {
    const file = join(dir, "nested", "secret");
    expect(createFileOnce(file, "first\n")).toBe(true);
    expect(createFileOnce(file, "second\n")).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("first\n");
    expect(readdirSync(join(dir, "nested"))).toEqual(["secret"]);
  });
});
