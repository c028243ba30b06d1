import { describe, expect, it } from "vitest";
import {
  acceptedSecretHashes,
  claimedClientId,
  grantedScopes,
  OAuthError,
  parseTokenRequest,
} from "./oauth.js";

const basic = (raw: string) => `Basic ${Buffer.from(raw).toString("base64")}`;
const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    if (error instanceof OAuthError) return { code: error.code, status: error.status, basic: error.basic };
    throw error;
  }
  throw new Error("expected a refusal");
};

describe("parseTokenRequest (RFC 6749 §4.4.2, §2.3.1)", () => {
  it("form-decodes Basic credentials: %3A is a colon inside an id, + a space", () => {
    const request = parseTokenRequest({ grant_type: "client_credentials" }, basic("my%3Aclient:s+e%2Bc:ret"));
    expect(request).toEqual({ clientId: "my:client", clientSecret: "s e+c:ret", basic: true });
    expect(claimedClientId({}, basic("my%3Aclient:x"))).toBe("my:client");
  });

  it("takes body credentials and an optional scope list (deduplicated)", () => {
    expect(
      parseTokenRequest(
        { grant_type: "client_credentials", client_id: "c", client_secret: "s", scope: "a b a" },
        undefined,
      ),
    ).toEqual({ clientId: "c", clientSecret: "s", basic: false, scope: ["a", "b"] });
  });

  it("refuses with the RFC's codes and statuses", () => {
    const ok = { grant_type: "client_credentials" };
    expect(refusal(() => parseTokenRequest("grant_type=x", undefined))).toMatchObject({
      code: "invalid_request",
    });
    expect(refusal(() => parseTokenRequest({}, basic("c:s")))).toMatchObject({
      code: "invalid_request",
      status: 400,
    });
    expect(refusal(() => parseTokenRequest({ grant_type: "password" }, basic("c:s")))).toMatchObject({
      code: "unsupported_grant_type",
    });
    expect(refusal(() => parseTokenRequest({ ...ok, scope: ["a", "b"] }, basic("c:s")))).toMatchObject({
      code: "invalid_request",
    });
    expect(refusal(() => parseTokenRequest({ ...ok, client_id: "other" }, basic("c:s")))).toMatchObject({
      code: "invalid_request",
    });
    expect(refusal(() => parseTokenRequest(ok, basic(":s")))).toMatchObject({
      code: "invalid_client",
      basic: true,
    });
    expect(refusal(() => parseTokenRequest(ok, basic("c:")))).toMatchObject({
      code: "invalid_client",
      status: 401,
    });
    expect(refusal(() => parseTokenRequest({ ...ok, client_id: "c" }, undefined))).toMatchObject({
      code: "invalid_client",
      basic: false,
    });
    expect(refusal(() => parseTokenRequest({ ...ok, scope: "" }, basic("c:s")))).toMatchObject({
      code: "invalid_scope",
    });
  });
});

describe("grantedScopes (§3.3)", () => {
  it("grants all of the client's scopes, or exactly a subset asked for", () => {
    expect(grantedScopes(["a", "b"], undefined)).toEqual(["a", "b"]);
    expect(grantedScopes(["a", "b"], ["b"])).toEqual(["b"]);
    expect(refusal(() => grantedScopes(["a"], ["a", "c"]))).toMatchObject({ code: "invalid_scope" });
  });
});

describe("acceptedSecretHashes", () => {
  it("accepts the previous secret strictly before its overlap ends", () => {
    const client = {
      secret_hash: "new",
      previous_secret_hash: "old",
      previous_valid_until: "2026-03-01T11:00:00.000Z",
    };
    expect(acceptedSecretHashes(client, new Date("2026-03-01T10:59:59.999Z"))).toEqual(["new", "old"]);
    expect(acceptedSecretHashes(client, new Date("2026-03-01T11:00:00.000Z"))).toEqual(["new"]);
    expect(acceptedSecretHashes({ ...client, previous_secret_hash: null }, new Date(0))).toEqual(["new"]);
  });
});
