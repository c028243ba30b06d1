// Webhook rules, pure: which URLs an endpoint may have, which addresses a delivery may reach (no address of the
// IANA special-purpose registries, multicast or IPv6 space outside 2000::/3 unless the tenant allows it; held
// as node:net BlockLists, the IPv4 blocks also in their IPv4-mapped, NAT64 and 6to4 forms), which events
// an endpoint receives, the retry schedule (at least 24 hours of attempts before a delivery fails), and the
// limits that keep one tenant's endpoints from holding back another's deliveries; and the Pismo rendering of a
// CVV change for endpoints in Pismo's format, which never carries a PAN, a PAN hash or a CVV.
import { createHash } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { type CardStatus, expiryToDate } from "./card.js";
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

/**
 * Delivery limits (CARDVAULT_WEBHOOK_*). A tenant has at most `tenantConcurrency` attempts in flight across
 * every sender process, so of a process's `concurrency` slots the rest stay free for other tenants however
 * slow its receivers are; an endpoint that failed `breakerFailures` attempts in a row is not tried for
 * `breakerCooldownMs` (its deliveries wait, then one probe decides whether it is tried again).
 */
export interface WebhookLimits {
  /** Live endpoints a tenant may have. */
  endpointsPerTenant: number;
  /** Per attempt, from its start to the response headers. */
  timeoutMs: number;
  /** Per attempt, to have the connection ready (TCP, and TLS for https): a dead address fails fast. */
  connectTimeoutMs: number;
  /** Attempts one sender process makes at once. */
  concurrency: number;
  /** Attempts one tenant may have in flight at once, over every sender process. */
  tenantConcurrency: number;
  breakerFailures: number;
  breakerCooldownMs: number;
}

export const WEBHOOK_DEFAULTS: WebhookLimits = {
  endpointsPerTenant: 16,
  timeoutMs: 10_000,
  connectTimeoutMs: 3_000,
  concurrency: 50,
  tenantConcurrency: 10,
  breakerFailures: 5,
  breakerCooldownMs: 60_000,
};

/** A due delivery a claim may take; `probe`: its endpoint's cool-down is over but its circuit is not closed. */
export interface ClaimCandidate {
  id: string;
  endpointId: string;
  probe: boolean;
}

/** A tenant with deliveries due: its next ones in due order, and how many more attempts it may have in flight. */
export interface TenantQueue {
  room: number;
  candidates: readonly ClaimCandidate[];
}

/**
 * What one claim takes, at most `limit`: round after round, the next delivery of each tenant in the order given
 * (the fewest in flight first), each tenant up to its room; of an endpoint that is probed, one delivery only.
 * A tenant's backlog thus never takes the slots another tenant's due deliveries could use.
 */
export function fairPick(queues: readonly TenantQueue[], limit: number): ClaimCandidate[] {
  const lanes = queues.map(({ room, candidates }) => {
    const probed = new Set<string>();
    const lane = candidates.filter((c) => {
      if (!c.probe) return true;
      if (probed.has(c.endpointId)) return false;
      probed.add(c.endpointId);
      return true;
    });
    return lane.slice(0, Math.max(0, room));
  });
  const picked: ClaimCandidate[] = [];
  for (let round = 0; picked.length < limit && lanes.some((lane) => round < lane.length); round++) {
    for (const lane of lanes) {
      if (round < lane.length && picked.length < limit) picked.push(lane[round]!);
    }
  }
  return picked;
}

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
  // A zone index (fe80::1%eth0) names an interface, not a different address.
  const bare = address.split("%")[0]!;
  const family = isIP(bare);
  if (family === 0) return "not an IP address";
  const type = family === 4 ? "ipv4" : "ipv6";
  for (const [reason, list] of BLOCKED) if (list.check(bare, type)) return reason;
  if (family === 4) return null;
  // An IPv6 address that only carries an IPv4 address was judged above by that address.
  if (TRANSLATED.check(bare, "ipv6")) return null;
  // Everything outside 2000::/3, the only global unicast space allocated, is reserved by the IETF.
  return GLOBAL_UNICAST_V6.check(bare, "ipv6") ? null : "reserved";
}

/**
 * The IANA IPv4 Special-Purpose Address Registry
 * (https://www.iana.org/assignments/iana-ipv4-special-registry, as updated 2024-03), every block, and the
 * multicast space (RFC 5771). Blocks the registry marks globally reachable (AS112, AMT, PCP/TURN anycast) are
 * refused too: none of them is a webhook receiver. The first matching row names the reason.
 */
const IPV4_SPECIAL: ReadonlyArray<readonly [base: string, prefix: number, reason: string]> = [
  ["0.0.0.0", 8, "unspecified"], // RFC 791: "this network" (0.0.0.0/32: this host)
  ["10.0.0.0", 8, "private"], // RFC 1918
  ["100.64.0.0", 10, "carrier-grade NAT"], // RFC 6598: shared address space
  ["127.0.0.0", 8, "loopback"], // RFC 1122
  ["169.254.0.0", 16, "link-local"], // RFC 3927
  ["172.16.0.0", 12, "private"], // RFC 1918
  ["192.0.0.0", 24, "reserved"], // RFC 6890: IETF protocol assignments (with 192.0.0.0/29, .8, .9, .10, .170, .171)
  ["192.0.2.0", 24, "documentation"], // RFC 5737: TEST-NET-1
  ["192.31.196.0", 24, "AS112"], // RFC 7535
  ["192.52.193.0", 24, "AMT"], // RFC 7450
  ["192.88.99.0", 24, "6to4 relay anycast"], // RFC 7526 (deprecated), 192.88.99.2/32: 6a44 relay (RFC 6751)
  ["192.168.0.0", 16, "private"], // RFC 1918
  ["192.175.48.0", 24, "AS112"], // RFC 7534: direct delegation AS112 service
  ["198.18.0.0", 15, "benchmarking"], // RFC 2544
  ["198.51.100.0", 24, "documentation"], // RFC 5737: TEST-NET-2
  ["203.0.113.0", 24, "documentation"], // RFC 5737: TEST-NET-3
  ["224.0.0.0", 4, "multicast"], // RFC 5771 (IPv4 multicast address space registry)
  ["240.0.0.0", 4, "reserved"], // RFC 1112, with 255.255.255.255/32, limited broadcast (RFC 919)
];

/**
 * The IANA IPv6 Special-Purpose Address Registry
 * (https://www.iana.org/assignments/iana-ipv6-special-registry, as updated 2025-02), every block except the
 * three that carry an IPv4 address, plus the rest of the IPv6 address space registry that is not global
 * unicast (https://www.iana.org/assignments/ipv6-address-space: ULA, link-local, site-local, multicast).
 * Blocks the registry marks globally reachable inside 2001::/23 (PCP/TURN/SRP anycast, AMT, AS112, ORCHIDv2,
 * DRIP) are refused too. More specific rows come first: the first match names the reason.
 */
const IPV6_SPECIAL: ReadonlyArray<readonly [base: string, prefix: number, reason: string]> = [
  ["::", 128, "unspecified"], // RFC 4291
  ["::1", 128, "loopback"], // RFC 4291
  ["64:ff9b:1::", 48, "local-use NAT64"], // RFC 8215: translates to any network, internal ones included
  ["100::", 64, "discard"], // RFC 6666: discard-only
  ["100:0:0:1::", 64, "reserved"], // RFC 9780: dummy IPv6 prefix
  ["2001::", 32, "Teredo"], // RFC 4380, RFC 8190
  ["2001:db8::", 32, "documentation"], // RFC 3849
  ["2001::", 23, "reserved"], // RFC 2928: IETF protocol assignments (benchmarking 2001:2::/48, ORCHID, …)
  ["2620:4f:8000::", 48, "AS112"], // RFC 7534: direct delegation AS112 service
  ["3fff::", 20, "documentation"], // RFC 9637
  ["5f00::", 16, "reserved"], // RFC 9602: segment routing (SRv6) SIDs
  ["fc00::", 7, "unique local"], // RFC 4193
  ["fe80::", 10, "link-local"], // RFC 4291
  ["fec0::", 10, "site-local"], // RFC 3879: deprecated, not global
  ["ff00::", 8, "multicast"], // RFC 4291
];

/**
 * The registry's IPv6 blocks that carry an IPv4 address, judged by that address: IPv4-mapped ::ffff:0:0/96
 * (RFC 4291), the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056).
 */
function embeddedForms(base: string, prefix: number): [string, number][] {
  const [a = 0, b = 0, c = 0, d = 0] = base.split(".").map(Number);
  const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  return [
    [`::ffff:${base}`, 96 + prefix],
    [`64:ff9b::${base}`, 96 + prefix],
    [`2002:${hex(a, b)}:${hex(c, d)}::`, 16 + prefix],
  ];
}

function blockLists(): [reason: string, list: BlockList][] {
  const row = (reason: string, subnets: [string, number, "ipv4" | "ipv6"][]): [string, BlockList] => {
    const list = new BlockList();
    for (const [base, prefix, type] of subnets) list.addSubnet(base, prefix, type);
    return [reason, list];
  };
  return [
    ...IPV4_SPECIAL.map(([base, prefix, reason]) =>
      row(reason, [
        [base, prefix, "ipv4"],
        ...embeddedForms(base, prefix).map(([v6, bits]): [string, number, "ipv6"] => [v6, bits, "ipv6"]),
      ]),
    ),
    ...IPV6_SPECIAL.map(([base, prefix, reason]) => row(reason, [[base, prefix, "ipv6"]])),
  ];
}

/** One BlockList per registry row, checked in the tables' order (the more specific rows first). */
const BLOCKED: ReadonlyArray<readonly [string, BlockList]> = blockLists();

const TRANSLATED = new BlockList();
TRANSLATED.addSubnet("::ffff:0:0", 96, "ipv6");
TRANSLATED.addSubnet("64:ff9b::", 96, "ipv6");
TRANSLATED.addSubnet("2002::", 16, "ipv6");

const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet("2000::", 3, "ipv6");

/** In whose schema an endpoint receives events: cardvault's own, or Pismo's (CVV changes only). */
export const WEBHOOK_FORMATS = ["cardvault", "pismo"] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** An event in a Pismo schema, without the envelope the publisher adds. */
export interface PismoEvent {
  domain: string;
  eventType: string;
  schemaVersion: number;
  data: Record<string, unknown>;
}

/**
 * Our card life cycle on Pismo's card_status: an active card is NORMAL; an inactive one is issued but not in
 * use yet, CREATED; a suspended one BLOCKED (it may come back, as Pismo's BLOCKED may); a closed one CANCELED
 * (final, as ours is).
 */
export const PISMO_CARD_STATUS: Record<CardStatus, string> = {
  active: "NORMAL",
  inactive: "CREATED",
  suspended: "BLOCKED",
  closed: "CANCELED",
};

/** What Pismo's "Card CVV changed" event is made of: the card as changed, never its PAN or CVV. */
export interface CvvChange {
  card: {
    id: string;
    publicToken: string;
    last4: string;
    /** YYMM. */
    expiry: string;
    status: CardStatus;
    cardholderName: string | null;
    customerReference: string | null;
  };
  rotationType: "MANUAL" | "AUTOMATIC";
  operationType: string;
  nextRotationAt: string | null;
}

/**
 * Pismo's "Card CVV changed" event (domain cards, rotate_cvv, version 1). `card_id` is the public token as an
 * integer (cardvault has no Pismo ids). `card_hash` is not a PAN hash, which anyone holding the BIN could
 * brute-force: it is the SHA-256 of the card's internal id, random and never derived from the PAN, so it
 * is stable per card and reveals nothing. `account_id` is the customer reference when that is a whole number,
 * else null (cardvault has no accounts). cardvault has no display name and no contactless cards: both names
 * are the cardholder's ("" when none), and contactless_enabled is false.
 */
export function pismoCvvChanged(change: CvvChange): PismoEvent {
  const { card } = change;
  const name = card.cardholderName ?? "";
  const account = card.customerReference !== null && /^[0-9]{1,15}$/.test(card.customerReference);
  return {
    domain: "cards",
    eventType: "rotate_cvv",
    schemaVersion: 1,
    data: {
      account_id: account ? Number(card.customerReference) : null,
      card_id: Number(card.publicToken),
      card_hash: createHash("sha256").update(`cardvault-card:${card.id}`).digest("base64"),
      card_last_four_numbers: card.last4,
      card_name: name,
      card_printed_name: name,
      card_status: PISMO_CARD_STATUS[card.status],
      contactless_enabled: false,
      cvv_next_rotation_date: change.nextRotationAt,
      cvv_rotation_type: change.rotationType,
      operation_type: change.operationType,
      // A card is valid to the end of its expiry month.
      expiration_date: `${expiryToDate(card.expiry)}T23:59:59Z`,
    },
  };
}

/**
 * Pismo's envelope (its "common event fields"): event_type carries the schema version as its suffix, as
 * Pismo's own types do (rotate_cvv-1); org_id is the tenant; the correlation id is the event's own id.
 */
export function pismoEnvelope(
  event: PismoEvent,
  meta: { id: string; tenantId: string; occurredAt: string },
): string {
  return JSON.stringify({
    event_id: meta.id,
    domain: event.domain,
    event_type: `${event.eventType}-${event.schemaVersion}`,
    schema_version: event.schemaVersion,
    org_id: meta.tenantId,
    cid: meta.id,
    timestamp: meta.occurredAt,
    data: event.data,
  });
}
