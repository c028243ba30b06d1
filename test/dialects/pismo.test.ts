// The Pismo dialect: a Pismo client pointed at /pismo rotates CVVs and manages the interval as before.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardRow } from "../helpers/card-secrets.js";
import { createHarness, type Harness } from "../helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const cvvOf = async (t: string) => (await h.call("GET", `/v1/cards/${t}/cvv`)).json().cvv as string;

describe("Pismo dialect", () => {
  it("POST /pismo/v2/cards/{cardId}/reset-cvv rotates the CVV and answers {success: true}", async () => {
    const { publicToken } = await h.createCard({ type: "virtual" });
    const before = await cvvOf(publicToken);
    const response = await h.call("POST", `/pismo/v2/cards/${publicToken}/reset-cvv`, {});
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ success: true });
    expect(await cvvOf(publicToken)).not.toBe(before);

    const given = await h.call("POST", `/pismo/v2/cards/${publicToken}/reset-cvv`, { service_code: "201" });
    expect(given.statusCode).toBe(200);
    expect((await cardRow(h, publicToken)).cvv_service_code).toBe("201");
  });

  it("PATCH and DELETE /cvv-rotation manage the interval", async () => {
    const { publicToken } = await h.createCard({ type: "virtual" });
    const patch = await h.call("PATCH", `/pismo/v2/cards/${publicToken}/cvv-rotation`, {
      cvv_rotation_interval_hours: 12,
    });
    expect(patch.statusCode).toBe(200);
    expect(patch.json()).toEqual({ id: Number(publicToken), cvv_rotation_interval_hours: 12 });
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/rotation`)).json()).toMatchObject({
      intervalHours: 12,
    });
    const del = await h.call("DELETE", `/pismo/v2/cards/${publicToken}/cvv-rotation`);
    expect(del.statusCode).toBe(204);
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/rotation`)).json()).toMatchObject({
      intervalHours: null,
      nextRotationAt: null,
    });
    const events = (await h.call("GET", "/v1/events?type=card.cvv.changed"))
      .json()
      .items.filter((e: { data: { publicToken: string } }) => e.data.publicToken === publicToken);
    expect(events.map((e: { data: { operationType: string } }) => e.data.operationType)).toEqual([
      "CHANGE_CVV_ROTATION",
      "DELETE_CVV_ROTATION",
    ]);
  });

  it("answers in Pismo's error shape: 400, 401, 403, 404, 409", async () => {
    const { publicToken } = await h.createCard({ type: "virtual" });
    const bad = await h.call("POST", `/pismo/v2/cards/${publicToken}/reset-cvv`, { service_code: "12" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({
      error_code: "VALIDATION_FAILED",
      message: expect.stringContaining("service_code"),
    });
    const badInterval = await h.call("PATCH", `/pismo/v2/cards/${publicToken}/cvv-rotation`, {
      cvv_rotation_interval_hours: 0,
    });
    expect(badInterval.statusCode).toBe(400);

    const noToken = await h.call("POST", `/pismo/v2/cards/${publicToken}/reset-cvv`, {}, { token: null });
    expect(noToken.statusCode).toBe(401);
    expect(noToken.json()).toMatchObject({ error_code: "UNAUTHORIZED" });

    const readOnly = await h.token(["cards:read"]);
    const forbidden = await h.call(
      "POST",
      `/pismo/v2/cards/${publicToken}/reset-cvv`,
      {},
      { token: readOnly },
    );
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ error_code: "FORBIDDEN" });

    const missing = await h.call("POST", "/pismo/v2/cards/999999999/reset-cvv", {});
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error_code: "CARD_NOT_FOUND" });
    const otherTenant = await h.call(
      "POST",
      `/pismo/v2/cards/${publicToken}/reset-cvv`,
      {},
      { token: await h.token(undefined, "globex") },
    );
    expect(otherTenant.json()).toEqual(missing.json());

    const physical = await h.createCard({ type: "physical" });
    const conflict = await h.call("POST", `/pismo/v2/cards/${physical.publicToken}/reset-cvv`, {});
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ error_code: "CARD_NOT_VIRTUAL" });

    const unknownRoute = await h.call("GET", "/pismo/v2/nothing");
    expect(unknownRoute.statusCode).toBe(404);
    expect(unknownRoute.json()).toMatchObject({ error_code: "NOT_FOUND" });
  });
});
