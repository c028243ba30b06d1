import { describe, expect, it } from "vitest";
import { AppError } from "./errors.js";
import {
  blockedAddressReason,
  type ClaimCandidate,
  endpointWants,
  fairPick,
  nextAttemptAt,
  parseWebhookUrl,
  RETRY_DELAYS_MS,
} from "./webhooks.js";

describe("blockedAddressReason", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.1.2", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["100.127.255.255", "carrier-grade NAT"],
    ["169.254.169.254", "link-local"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["fc00::1", "unique local"],
    ["fd12:3456::1", "unique local"],
    ["fe80::1%eth0", "link-local"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["2002:c0a8:0101::1", "private"],
    ["2001:db8::1", "documentation"],
  ])("refuses %s (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "11.0.0.1",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
  ])("lets the public address %s through", (address) => {
    expect(blockedAddressReason(address)).toBeNull();
  });

  // Hardening II: blocks of the IANA special-purpose registries the hand-written check let through.
  it.each([
    ["64:ff9b:1::1", "local-use NAT64"],
    ["64:ff9b:1:ffff::a00:1", "local-use NAT64"],
    ["2001::1", "Teredo"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"],
    ["192.88.99.1", "6to4 relay anycast"],
    ["192.88.99.2", "6to4 relay anycast"],
    ["::ffff:192.88.99.1", "6to4 relay anycast"],
    ["64:ff9b::192.88.99.1", "6to4 relay anycast"],
    ["2002:c058:6301::1", "6to4 relay anycast"],
    ["192.31.196.1", "AS112"],
    ["192.52.193.1", "AMT"],
    ["192.175.48.1", "AS112"],
    ["192.0.0.170", "reserved"],
    ["2001:2::1", "reserved"],
    ["2001:20::1", "reserved"],
    ["2620:4f:8000::1", "AS112"],
    ["3fff::1", "documentation"],
    ["5f00::1", "reserved"],
    ["100:0:0:1::1", "reserved"],
    ["::8.8.8.8", "reserved"],
    ["4000::1", "reserved"],
    ["fec0::1", "site-local"],
    ["64:ff9b::ffff:ffff", "reserved"],
    ["::ffff:255.255.255.255", "reserved"],
  ])("refuses the special-purpose address %s (%s)", (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each(["64:ff9b::8.8.8.8", "2002:808:808::1", "2a00:1450:4001::1", "2620:4f:8001::1"])(
    "lets a public address carried or routed as %s through",
    (address) => {
      expect(blockedAddressReason(address)).toBeNull();
    },
  );
});

describe("parseWebhookUrl", () => {
  const refused = (url: string, allowPrivate = false) => {
    try {
      parseWebhookUrl(url, allowPrivate);
    } catch (error) {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).fields?.url).toBeDefined();
      return (error as AppError).message;
    }
    throw new Error(`${url} was accepted`);
  };

  it("accepts https and http URLs with a public host", () => {
    expect(parseWebhookUrl("https://hooks.example.invalid/cardvault?x=1", false).href).toBe(
      "https://hooks.example.invalid/cardvault?x=1",
    );
    expect(parseWebhookUrl("http://hooks.example.invalid:8080/", false).port).toBe("8080");
  });

  it("refuses other schemes, credentials, fragments and non-URLs", () => {
    expect(refused("ftp://example.invalid/")).toMatch(/https/);
    expect(refused("file:///etc/passwd")).toMatch(/https/);
    expect(refused("not a url")).toMatch(/absolute/);
    expect(refused("https://user:pw@example.invalid/")).toMatch(/credentials/);
    expect(refused("https://example.invalid/#frag")).toMatch(/fragment/);
    expect(refused(`https://example.invalid/${"a".repeat(2100)}`)).toMatch(/2048/);
  });

  it("refuses internal literals and localhost names unless the tenant allows private addresses", () => {
    for (const url of [
      "http://127.0.0.1:9000/",
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://0x7f.1/",
      "http://2130706433/",
      "http://localhost:8080/",
      "http://api.localhost/",
      "http://169.254.169.254/latest/meta-data",
      "http://[64:ff9b:1::a00:1]/",
      "http://[2001::1]/",
      "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
      "http://192.88.99.1/",
      "http://[::ffff:192.88.99.1]/",
    ]) {
      expect(refused(url)).toMatch(/internal address/);
      expect(parseWebhookUrl(url, true)).toBeInstanceOf(URL);
    }
  });
});

describe("retry schedule", () => {
  it("spans more than 24 hours over 8 attempts, then stops", () => {
    const start = new Date("2026-01-01T00:00:00Z");
    let at = start;
    let attempts = 1;
    for (;;) {
      const next = nextAttemptAt(attempts, at);
      if (!next) break;
      at = next;
      attempts++;
    }
    expect(attempts).toBe(RETRY_DELAYS_MS.length + 1);
    expect(attempts).toBe(8);
    expect(at.getTime() - start.getTime()).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(RETRY_DELAYS_MS.every((d, i) => i === 0 || d >= RETRY_DELAYS_MS[i - 1]!)).toBe(true);
  });
});

describe("endpointWants", () => {
  it("matches every type when no filter is set, else only the listed ones", () => {
    expect(endpointWants(null, "card.created")).toBe(true);
    expect(endpointWants('["pin.changed"]', "pin.changed")).toBe(true);
    expect(endpointWants('["pin.changed"]', "card.created")).toBe(false);
  });
});

describe("fairPick (Hardening II)", () => {
  const queue = (tenant: string, count: number, endpoint = `${tenant}-e`, probe = false): ClaimCandidate[] =>
    Array.from({ length: count }, (_, i) => ({ id: `${tenant}${i}`, endpointId: endpoint, probe }));

  it("takes one delivery of each tenant per round, in the tenants' order, up to the limit", () => {
    const picked = fairPick(
      [
        { room: 10, candidates: queue("a", 10) },
        { room: 10, candidates: queue("b", 2) },
        { room: 10, candidates: queue("c", 1) },
      ],
      6,
    );
    expect(picked.map((c) => c.id)).toEqual(["a0", "b0", "c0", "a1", "b1", "a2"]);
  });

  it("gives no tenant more than its room: a backlog leaves the other slots free", () => {
    const picked = fairPick([{ room: 3, candidates: queue("a", 100) }], 50);
    expect(picked.map((c) => c.id)).toEqual(["a0", "a1", "a2"]);
    expect(fairPick([{ room: 0, candidates: queue("a", 5) }], 50)).toEqual([]);
  });

  it("takes one delivery of a probed endpoint, and the tenant's other endpoints as usual", () => {
    const candidates = [...queue("p", 3, "half-open", true), ...queue("a", 2)];
    expect(fairPick([{ room: 10, candidates }], 10).map((c) => c.id)).toEqual(["p0", "a0", "a1"]);
  });
});
