// Webhook rules, pure: which URLs an endpoint may have, which addresses a delivery may reach (no loopback,
// private, link-local, CGNAT, ULA, multicast or unspecified address unless the tenant allows it), which events
// an endpoint receives, and the retry schedule (at least 24 hours of attempts before a delivery fails).
import { isIP } from "node:net";
import { validationFailed } from "./errors.js";

export type DeliveryStatus = "pending" | "succeeded" | "failed" | "canceled";

/**
 * Delays after each failed attempt: the first attempt is immediate, the last one 27 h 35 min after the event
 * (the schedule Standard Webhooks' authors use). 8 attempts in all; after the last failure the delivery fails.
 */
export const RETRY_DELAYS_MS: readonly number[] = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
];

/** When the next attempt falls due after `attempts` failed ones, or null when none is left. */
export function nextAttemptAt(
  attempts: number,
  now: Date,
  delays: readonly number[] = RETRY_DELAYS_MS,
): Date | null {
  const delay = delays[attempts - 1];
  return delay === undefined ? null : new Date(now.getTime() + delay);
}

/** Event types are stored as a JSON array; null means "every type". */
export function endpointWants(eventTypes: string | null, type: string): boolean {
  return eventTypes === null || (JSON.parse(eventTypes) as string[]).includes(type);
}

const MAX_URL_LENGTH = 2048;

/** Parses and checks an endpoint URL; a literal blocked address is refused here already for a strict tenant. */
export function parseWebhookUrl(value: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw validationFailed("url", "url must be an absolute http:// or https:// URL.");
  }
  if (value.length > MAX_URL_LENGTH)
    throw validationFailed("url", `url must be at most ${MAX_URL_LENGTH} characters.`);
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw validationFailed("url", "url must use https:// or http://.");
  }
  if (url.username || url.password) {
    throw validationFailed(
      "url",
      "url must not carry credentials; use the signature to authenticate deliveries.",
    );
  }
  if (url.hash) throw validationFailed("url", "url must not have a #fragment.");
  const host = hostOf(url);
  if (!allowPrivate && (isLocalName(host) || (isIP(host) !== 0 && blockedAddressReason(host) !== null))) {
    throw validationFailed(
      "url",
      "url points to a loopback, private or otherwise internal address, which this tenant may not use.",
    );
  }
  return url;
}

/** The host name or address of a URL, without the brackets of an IPv6 literal. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

function isLocalName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/** Why an address may not receive webhooks by default, or null when it is a public unicast address. */
export function blockedAddressReason(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return ipv4Reason(ipv4ToNumber(address));
  if (family === 6) return ipv6Reason(expandIpv6(address));
  return "not an IP address";
}

const IPV4_RANGES: ReadonlyArray<readonly [string, number, string]> = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-grade NAT"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "reserved"],
  ["192.0.2.0", 24, "documentation"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

function ipv4ToNumber(address: string): number {
  return address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function ipv4Reason(n: number): string | null {
  for (const [base, bits, reason] of IPV4_RANGES) {
    const size = 2 ** (32 - bits);
    if (Math.floor(n / size) === Math.floor(ipv4ToNumber(base) / size)) return reason;
  }
  return null;
}

/** The eight 16-bit groups of an IPv6 address (with "::" and a trailing dotted quad expanded). */
export function expandIpv6(address: string): number[] {
  let text = address.split("%")[0]!.toLowerCase();
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const n = ipv4ToNumber(quad[1]!);
    text = `${text.slice(0, quad.index)}${Math.floor(n / 65536).toString(16)}:${(n % 65536).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const zeros = tail === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...zeros, ...right];
}

function ipv6Reason(g: number[]): string | null {
  const [g0 = 0, g1 = 0, , , , g5 = 0, g6 = 0, g7 = 0] = g;
  const leadingZeros = g.slice(0, 5).every((x) => x === 0);
  if (leadingZeros && g5 === 0 && g6 === 0 && g7 === 0) return "unspecified";
  if (leadingZeros && g5 === 0 && g6 === 0 && g7 === 1) return "loopback";
  // Addresses that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
  if (leadingZeros && g5 === 0xffff) return ipv4Reason(g6 * 65536 + g7);
  if (g0 === 0x64 && g1 === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return ipv4Reason(g6 * 65536 + g7);
  if (g0 === 0x2002) return ipv4Reason(g1 * 65536 + (g[2] ?? 0));
  if (leadingZeros && g5 === 0) return "reserved";
  if ((g0 & 0xfe00) === 0xfc00) return "unique local";
  if ((g0 & 0xffc0) === 0xfe80) return "link-local";
  if ((g0 & 0xffc0) === 0xfec0) return "site-local";
  if ((g0 & 0xff00) === 0xff00) return "multicast";
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation";
  if (g0 === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return "discard";
  return null;
}
