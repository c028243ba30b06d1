// Which store failures answer 503 (the transaction rolled back; retry) rather than 500.
import { describe, expect, it } from "vitest";
import { isStoreUnavailable } from "./problems.js";

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
});
