// The card reveal page in a real browser: Debian's Chromium, headless, driven by playwright-core. cardvault
// listens on a real 127.0.0.1 port; the example host (web/example) runs on a second local origin and embeds
// the page. Checks: the PAN, expiry and CVV shown are the card's (compared with the native API), the PIN when
// asked for, "already used" / "expired" / "blocked" / network-failure pages with their event codes, and that an embedder on
// another origin neither frames the page nor — with the CSP stripped — hears a single message.
import { mkdirSync } from "node:fs";
import type { BrowserContext, FrameLocator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../../src/lib/clock.js";
import { buildWeb } from "../../web/build.js";
import { type ExampleHost, startExampleHost } from "../../web/example/server.js";
import { panOf } from "../helpers/card-secrets.js";
import { CHROMIUM, chromiumAvailable, launchChromium } from "../helpers/chromium.js";
import { createHarness, type Harness } from "../helpers/harness.js";

// The browser globals the page functions below use (this test project compiles without the DOM library).
declare const window: {
  seenMessages: string[];
  addEventListener(type: "message", listener: (event: { origin: string; data: unknown }) => void): void;
};
declare const document: { querySelectorAll(selector: string): Iterable<{ textContent: string | null }> };

const available = chromiumAvailable;
if (!available) {
  process.stderr.write(
    `\n[cardvault] Browser tests SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CARDVAULT_CHROMIUM).\n\n`,
  );
}

let h: Harness;
let context: BrowserContext;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let cardvaultOrigin: string;
let host: ExampleHost;
let otherHost: ExampleHost;
let offsetMs = 0;
const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
/** The card the example backend mints sessions for, and sessions the test wants it to hand out instead. */
let currentCard = "";
const queued: { url: string }[] = [];

async function mint(publicToken: string, body: Record<string, unknown>) {
  const response = await h.call("POST", `/v1/cards/${publicToken}/reveal-sessions`, body);
  if (response.statusCode !== 201) throw new Error(`mint failed: ${response.statusCode} ${response.body}`);
  const session = response.json() as { url: string };
  // inject() has no real host: point the page URL at the listening server.
  return { url: session.url.replace(/^http:\/\/[^/]+/, cardvaultOrigin) };
}

async function openHost(origin: string): Promise<Page> {
  const page = await context.newPage();
  // Every message any window of this page receives, whatever its origin or source.
  await page.addInitScript(() => {
    const seen: string[] = [];
    window.seenMessages = seen;
    window.addEventListener("message", (event) => seen.push(`${event.origin} ${JSON.stringify(event.data)}`));
  });
  await page.goto(`${origin}/`);
  return page;
}

async function show(page: Page, options: { pin?: boolean } = {}): Promise<FrameLocator> {
  if (options.pin) await page.check("#with-pin");
  await page.click("#show");
  await page.waitForSelector("iframe");
  return page.frameLocator("iframe");
}

async function hostEvents(page: Page): Promise<Record<string, unknown>[]> {
  return page.$$eval("#events li[data-event]", (items) =>
    items.map(
      (item) =>
        JSON.parse((item as unknown as { dataset: { event: string } }).dataset.event) as Record<
          string,
          unknown
        >,
    ),
  );
}

async function waitForEvent(page: Page, type: string) {
  await page.waitForFunction(
    (t) =>
      [...document.querySelectorAll("#events li[data-event]")].some((li) =>
        li.textContent?.includes(`"type":"${t}"`),
      ),
    type,
    { timeout: 10_000 },
  );
}

describe.skipIf(!available)("card reveal page in Chromium", () => {
  beforeAll(async () => {
    const assetDir = await buildWeb();
    h = await createHarness({ clock, secureDataPin: ["acme"] });
    await h.app.listen({ host: "127.0.0.1", port: 0 });
    const address = h.app.server.address() as { port: number };
    cardvaultOrigin = `http://127.0.0.1:${address.port}`;
    const mintSession = async ({ fields, targetOrigin }: { fields: string[]; targetOrigin: string }) =>
      queued.shift() ?? mint(currentCard, { fields, targetOrigin });
    host = await startExampleHost({ assetDir, cardvaultOrigin, mintSession });
    // A second origin whose sessions name the first one: what a page framing someone else's link would get.
    otherHost = await startExampleHost({ assetDir, cardvaultOrigin, mintSession, targetOrigin: host.origin });
    browser = await launchChromium({ viewport: { width: 640, height: 640 } });
    context = browser.context;
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: cardvaultOrigin });
  });

  afterAll(async () => {
    await browser?.close();
    await host?.close();
    await otherHost?.close();
    await h?.close();
  });

  it("the example host embeds the page, which shows the card's PAN in fours, expiry and CVV; copy works", async () => {
    const card = await h.createCard({ type: "virtual", cardholderName: "Ada Lovelace" });
    currentCard = card.publicToken;
    const cvv = (await h.call("GET", `/v1/cards/${card.publicToken}/cvv`)).json().cvv as string;
    const view = (await h.call("GET", `/v1/cards/${card.publicToken}`)).json();
    const pan = await panOf(h, card.publicToken);

    const page = await openHost(host.origin);
    // CSP violations and script errors inside the frame would show up here.
    const frameErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" && message.location().url.startsWith(cardvaultOrigin)) {
        frameErrors.push(message.text());
      }
    });
    page.on("pageerror", (error) => frameErrors.push(String(error)));
    const frame = await show(page);
    await frame.locator("body[data-state=revealed]").waitFor({ timeout: 10_000 });
    expect(frameErrors).toEqual([]);
    expect(await frame.locator("dd[data-field=pan]").textContent()).toBe(
      pan.replace(/(\d{4})(?=\d)/g, "$1 "),
    );
    expect(await frame.locator("dd[data-field=cvv]").textContent()).toBe(cvv);
    const [year, month] = (view.expiryDate as string).split("-");
    expect(await frame.locator("dd[data-field=expiry]").textContent()).toBe(`${month}/${year!.slice(2)}`);
    expect(await frame.locator("dd[data-field=pin]").count()).toBe(0);

    await waitForEvent(page, "revealed");
    await frame.locator("button[data-copy=pan]").click();
    await waitForEvent(page, "copied");
    const events = await hostEvents(page);
    expect(events.map((e) => e.type)).toEqual(["ready", "revealed", "copied"]);
    expect(events.every((e) => e.origin === cardvaultOrigin)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: "copied", field: "pan" });
    // No event carries card data.
    expect(JSON.stringify(events)).not.toContain(pan);
    expect(JSON.stringify(events)).not.toContain(pan.slice(-4) + cvv);

    mkdirSync("test-artifacts", { recursive: true });
    await page.screenshot({ path: "test-artifacts/reveal.png", fullPage: true });
    await page.close();
  });

  it("shows the PIN when the session asks for it", async () => {
    const card = await h.createCard();
    currentCard = card.publicToken;
    await h.call("PUT", `/v1/cards/${card.publicToken}/pin`, { pin: "4821" });
    const page = await openHost(host.origin);
    const frame = await show(page, { pin: true });
    await frame.locator("body[data-state=revealed]").waitFor({ timeout: 10_000 });
    expect(await frame.locator("dd[data-field=pin]").textContent()).toBe("4821");
    await page.screenshot({ path: "test-artifacts/reveal-pin.png", fullPage: true });
    await page.close();
  });

  it('a reused session shows "already used", an expired one "expired", a blocked card "blocked", each with its code', async () => {
    const card = await h.createCard();
    currentCard = card.publicToken;
    const page = await openHost(host.origin);
    const session = await mint(card.publicToken, { fields: ["pan", "cvv"], targetOrigin: host.origin });
    queued.push(session);
    await (await show(page)).locator("body[data-state=revealed]").waitFor({ timeout: 10_000 });

    queued.push(session);
    let frame = await show(page);
    await frame.locator("body[data-error=already_used]").waitFor({ timeout: 10_000 });
    expect(await frame.locator("#problem-title").textContent()).toBe("These details were already shown");
    await page.screenshot({ path: "test-artifacts/reveal-already-used.png" });

    queued.push(await mint(card.publicToken, { fields: ["cvv"], targetOrigin: host.origin, ttlSeconds: 10 }));
    offsetMs = 60_000;
    try {
      frame = await show(page);
      await frame.locator("body[data-error=expired]").waitFor({ timeout: 10_000 });
    } finally {
      offsetMs = 0;
    }
    expect(await frame.locator("#problem-title").textContent()).toBe("This link has expired");

    queued.push(await mint(card.publicToken, { fields: ["cvv"], targetOrigin: host.origin }));
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "suspended" });
    frame = await show(page);
    await frame.locator("body[data-error=card_blocked]").waitFor({ timeout: 10_000 });
    expect(await frame.locator("#problem-title").textContent()).toBe("This card is blocked");

    await waitForEvent(page, "error");
    const errors = (await hostEvents(page)).filter((e) => e.type === "error" || e.type === "expired");
    expect(errors.map((e) => (e.type === "error" ? e.code : e.type))).toEqual([
      "already_used",
      "expired",
      "expired",
      "card_blocked",
    ]);
    await page.close();
  });

  it("a network failure is shown as such and reported as error{code: network_error}", async () => {
    const card = await h.createCard();
    currentCard = card.publicToken;
    const page = await openHost(host.origin);
    await page.route(
      (url) => url.pathname.startsWith("/reveal/api/"),
      (route) => route.abort("internetdisconnected"),
    );
    const frame = await show(page);
    await frame.locator("body[data-error=network_error]").waitFor({ timeout: 10_000 });
    expect(await frame.locator("#problem-title").textContent()).toBe("We couldn't reach the server");
    await waitForEvent(page, "error");
    expect((await hostEvents(page)).map((e) => e.code)).toEqual(["network_error"]);
    await page.close();
  });

  it("messages go only to the target origin: another origin cannot frame the page, nor hear it when it does", async () => {
    const card = await h.createCard();
    currentCard = card.publicToken;

    // As served: frame-ancestors names only the target origin, so the frame never loads on another origin.
    const page = await openHost(otherHost.origin);
    await show(page);
    await page.waitForTimeout(1_000);
    const frames = page.frames().filter((f) => f !== page.mainFrame());
    expect(frames).toHaveLength(1);
    // Chromium replaces a frame refused by frame-ancestors with its own error document.
    expect(frames[0]!.url()).not.toContain(cardvaultOrigin);
    expect(await hostEvents(page)).toEqual([]);

    // With the CSP stripped on the way (an old browser, a proxy): the page reveals, but its messages are
    // addressed to the target origin only, so this window hears nothing.
    await page.route(
      (url) => url.pathname === "/reveal",
      async (route) => {
        const response = await route.fetch();
        const headers = { ...response.headers() };
        delete headers["content-security-policy"];
        await route.fulfill({ response, headers });
      },
    );
    const frame = await show(page);
    await frame.locator("body[data-state=revealed]").waitFor({ timeout: 10_000 });
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => window.seenMessages)).toEqual([]);
    expect(await hostEvents(page)).toEqual([]);

    // The rightful origin, same card, hears ready and revealed (so the listener above was able to hear).
    const rightful = await openHost(host.origin);
    await (await show(rightful)).locator("body[data-state=revealed]").waitFor({ timeout: 10_000 });
    await waitForEvent(rightful, "revealed");
    const seen = await rightful.evaluate(() => window.seenMessages);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((m) => m.startsWith(`${cardvaultOrigin} `))).toBe(true);
    await page.close();
    await rightful.close();
  });
});
