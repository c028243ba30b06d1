// Hardening II (15): the API documentation page runs under its CSP in a real browser (Debian's Chromium):
// Swagger UI renders the document and the browser reports no Content-Security-Policy violation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumAvailable, launchChromium } from "../helpers/chromium.js";
import { createHarness, type Harness } from "../helpers/harness.js";

describe.skipIf(!chromiumAvailable)("the /docs page in a browser", () => {
  let h: Harness;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let origin: string;

  beforeAll(async () => {
    h = await createHarness();
    await h.app.listen({ host: "127.0.0.1", port: 0 });
    origin = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  it("renders Swagger UI with no CSP violation", async () => {
    const page = await browser!.context.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(`${origin}/docs`);
    expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
    await page.locator(".swagger-ui .info .title").first().waitFor({ timeout: 15_000 });
    await page.locator(".opblock").first().waitFor({ timeout: 15_000 });
    await page.locator(".opblock").first().click();
    await page.waitForTimeout(300);
    expect(violations).toEqual([]);
  });
});
