import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "./verify-webhook.js";

// The example of the Standard Webhooks specification (and its reference libraries' tests).
const SPEC = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const at = (seconds: number) => () => new Date(seconds * 1000);
const headersFor = (signature = SPEC.signature, timestamp = SPEC.timestamp) => ({
  "webhook-id": SPEC.id,
  "webhook-timestamp": String(timestamp),
  "webhook-signature": signature,
});

describe("signWebhook", () => {
  it("matches the Standard Webhooks example signature", () => {
    expect(signWebhook({ id: SPEC.id, timestamp: SPEC.timestamp, payload: SPEC.payload }, SPEC.secret)).toBe(
      SPEC.signature,
    );
  });
});

describe("verifyWebhook", () => {
  const verify = (
    payload: string,
    headers: Record<string, string>,
    secret = SPEC.secret,
    now = SPEC.timestamp,
  ) => verifyWebhook(payload, headers, secret, { now: at(now) });

  it("returns the parsed payload when the signature and timestamp hold", () => {
    expect(verify(SPEC.payload, headersFor())).toEqual({ test: 2432232314 });
  });

  it("reads headers case-insensitively and accepts one match among several signatures", () => {
    const headers = {
      "Webhook-Id": SPEC.id,
      "WEBHOOK-TIMESTAMP": String(SPEC.timestamp),
      "Webhook-Signature": `v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ${SPEC.signature}`,
    };
    expect(verify(SPEC.payload, headers)).toEqual({ test: 2432232314 });
  });

  it("refuses a changed payload, a wrong secret, a changed id and a missing signature", () => {
    expect(() => verify('{"test": 2432232315}', headersFor())).toThrow(WebhookVerificationError);
    expect(() => verify(SPEC.payload, headersFor(), "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).toThrow(
      /No webhook-signature matches/,
    );
    expect(() => verify(SPEC.payload, { ...headersFor(), "webhook-id": "msg_other" })).toThrow(
      WebhookVerificationError,
    );
    const { "webhook-signature": _dropped, ...unsigned } = headersFor();
    expect(() => verify(SPEC.payload, unsigned)).toThrow(/webhook-signature header is missing/);
  });

  it("refuses a timestamp outside the tolerance either way, and accepts one at its edge", () => {
    expect(() => verify(SPEC.payload, headersFor(), SPEC.secret, SPEC.timestamp + 301)).toThrow(/tolerance/);
    expect(() => verify(SPEC.payload, headersFor(), SPEC.secret, SPEC.timestamp - 301)).toThrow(/tolerance/);
    expect(verify(SPEC.payload, headersFor(), SPEC.secret, SPEC.timestamp + 300)).toEqual({
      test: 2432232314,
    });
    expect(() =>
      verifyWebhook(SPEC.payload, headersFor(), SPEC.secret, {
        now: at(SPEC.timestamp + 60),
        toleranceSeconds: 30,
      }),
    ).toThrow(/tolerance/);
  });

  it("refuses a timestamp that is not a number and a signature of another version", () => {
    expect(() => verify(SPEC.payload, { ...headersFor(), "webhook-timestamp": "1614265330.5" })).toThrow(
      /number/,
    );
    expect(() => verify(SPEC.payload, headersFor(SPEC.signature.replace("v1,", "v2,")))).toThrow(
      WebhookVerificationError,
    );
  });
});
