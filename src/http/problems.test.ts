// Which store failures answer 503 (the transaction rolled back; retry) rather than 500.
import { describe, expect, it } from "vitest";
import { isClientAbort, isStoreUnavailable, toAppError } from "./problems.js";

describe("isStoreUnavailable", () => {
  it("takes SQLite's extended codes as their primary code", () => {
    for (const code of ["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_TIMEOUT", "SQLITE_IOERR_FSYNC"]) {
      expect(isStoreUnavailable({ code }), code).toBe(true);
    }
    for (const code of ["SQLITE_READONLY_DBMOVED", "SQLITE_CANTOPEN_ISDIR", "SQLITE_FULL"]) {
      expect(isStoreUnavailable({ code }), code).toBe(true);
    }
  });

  it("leaves a client's or the program's own faults alone", () => {
    for (const code of ["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_ERROR", "23505", "SQLITE_BUSYX"]) {
      expect(isStoreUnavailable({ code }), code).toBe(false);
    }
  });

  it("does not take a client that closed its socket mid-body for a store outage (Hardening II)", () => {
    // Node's IncomingMessage abort (ECONNRESET "aborted"), and any socket error Fastify's body reader passed on.
    const aborted = Object.assign(new Error("aborted"), { code: "ECONNRESET" });
    const fromBodyReader = Object.assign(new Error("read ECONNRESET"), {
      code: "ECONNRESET",
      statusCode: 400,
    });
    for (const error of [aborted, fromBodyReader]) {
      expect(isClientAbort(error)).toBe(true);
      expect(isStoreUnavailable(error)).toBe(false);
      expect(toAppError(error)).toMatchObject({ unexpected: false, clientAborted: true });
    }
    // The database's own connection resets still are.
    const pgReset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read" });
    expect(isClientAbort(pgReset)).toBe(false);
    expect(isStoreUnavailable(pgReset)).toBe(true);
    expect(toAppError(pgReset)).toMatchObject({
      unexpected: true,
      appError: { code: "service_unavailable" },
    });
  });
});
