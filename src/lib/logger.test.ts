import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { censorSecrets, createLogger } from "./logger.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, logger: createLogger("trace", sink) };
}

describe("logger", () => {
  it("censors secret-named fields at the top of a log object and one level down", () => {
    const { lines, logger } = capture();
    logger.info({ pan: "4000001234567899", card: { cvv: "123", last4: "7899" }, pin: "1234" }, "x");
    logger.info({ details: { pinBlock: "0412AC89ABCDEF67", token: "eyJ…", key: "00ff" } }, "y");
    expect(lines[0]).toMatchObject({
      pan: "[redacted]",
      card: { cvv: "[redacted]", last4: "7899" },
      pin: "[redacted]",
    });
    expect(lines[1]).toMatchObject({
      details: { pinBlock: "[redacted]", token: "[redacted]", key: "[redacted]" },
    });
    expect(JSON.stringify(lines)).not.toMatch(/4000001234567899|"123"|1234|0412AC89ABCDEF67|00ff/);
  });

  it("censors credential headers of a request and logs only id, method and url of it", () => {
    const { lines, logger } = capture();
    logger.info(
      { req: { id: "r1", method: "POST", url: "/v1/cards", headers: { authorization: "Bearer abc" } } },
      "z",
    );
    expect(lines[0]!.req).toEqual({ id: "r1", method: "POST", url: "/v1/cards" });
    logger.info({ headers: { authorization: "Bearer abc", "idempotency-key": "k1", accept: "*/*" } }, "h");
    expect(lines[1]!.headers).toEqual({
      authorization: "[redacted]",
      "idempotency-key": "[redacted]",
      accept: "*/*",
    });
  });

  it("censors an error's own secret-named fields and a child logger's bindings", () => {
    const { lines, logger } = capture();
    const error = Object.assign(new Error("boom"), { key: "00ff00ff", code: "E_X" });
    logger.error({ err: error }, "failed");
    logger.child({ token: "eyJhbGciOi" }).info("bound");
    expect(lines[0]!.err).toMatchObject({ message: "boom", key: "[redacted]", code: "E_X" });
    expect(lines[1]!.token).toBe("[redacted]");
    expect(JSON.stringify(lines)).not.toMatch(/00ff00ff|eyJhbGciOi/);
  });

  it("leaves an object without secrets as it is, and never changes the caller's object", () => {
    const plain = { res: { statusCode: 200 }, responseTime: 1.5 };
    expect(censorSecrets(plain)).toBe(plain);
    const withSecret = { card: { cvv: "123" } };
    expect(censorSecrets(withSecret)).toEqual({ card: { cvv: "[redacted]" } });
    expect(withSecret.card.cvv).toBe("123");
  });
});
