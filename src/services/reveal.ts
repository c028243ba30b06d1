// Card reveal sessions: the program's backend mints a single-use, card-scoped, short-lived session; the reveal
// page presents its token once to receive the card data through Get Card Data, encrypted to a key the browser
// made. Only a SHA-256 digest of the token is stored; the token is never logged, audited or returned again.
// A session is consumed by one guarded UPDATE, so a token delivers at most once across every process. It
// delivers exactly the fields it was minted for. Minting and spending are limited attempts of the "reveal"
// class (counted in the card's and the tenant's buckets, like a CVV read), and a card may have at most
// `sessionsPerCardHour` sessions minted in any hour. The page URL is built on the configured public URL.
import { createHash, randomBytes } from "node:crypto";
import { AppError } from "../domain/errors.js";
import {
  assertSessionUsable,
  normaliseFields,
  parseTargetOrigin,
  type RevealField,
  SESSION_CAP_WINDOW_MS,
  sessionCapRetryAfter,
  sessionExpiry,
} from "../domain/reveal.js";
import type { CardDataField, SealedCardData, SecureDataPublicKey } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { CardRepo } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { RevealSessionRepo } from "../store/reveal-session-repo.js";
import type { RevealSessionRow } from "../store/schema.js";
import type { Actor, AuditRecorder } from "./audit.js";
import { type CardTransaction, findCard, usable } from "./card-transaction.js";
import { RateLimitedError } from "./rate-limits.js";
import { replayed, type SecureDataAnswer, type SecureDataService } from "./secure-data.js";

export interface RevealServiceDeps {
  store: Pick<Store, "transaction">;
  withCard: CardTransaction;
  cards: Pick<CardRepo, "findByToken">;
  sessions: Pick<RevealSessionRepo, "insert" | "findByTokenHash" | "findById" | "consume" | "createdSince">;
  secureData: Pick<SecureDataService, "deviceSession" | "deliverIn" | "answer" | "publicKeys">;
  record: AuditRecorder;
  clock: Clock;
  /** Production refuses http target origins, even on loopback (config.production). */
  production: boolean;
  /** The base the page URL is built on (config.publicUrl, no trailing slash); never a request's Host. */
  publicUrl: string;
  /** Sessions a card may have minted in any hour (config.revealSessionsPerCardHour). */
  sessionsPerCardHour: number;
}

/** `rvs_` and 32 random bytes, base64url: what the page presents in `Authorization: RevealSession …`. */
export const REVEAL_TOKEN_PATTERN = /^rvs_[A-Za-z0-9_-]{43}$/;

export interface NewRevealSession {
  id: string;
  token: string;
  /** The page to embed: <publicUrl>/reveal?session=<id>#<token>. */
  url: string;
  fields: RevealField[];
  targetOrigin: string;
  expiresAt: string;
}

export interface RevealSessionView {
  id: string;
  fields: RevealField[];
  targetOrigin: string;
  expiresAt: string;
  keys: SecureDataPublicKey[];
}

function digest(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function fieldsOf(session: RevealSessionRow): RevealField[] {
  return session.fields.split(",") as RevealField[];
}

/** Where the session is presented: the page call's route, for the limiter's audit record. */
export interface PresentedAt {
  requestId?: string;
  route: string;
}

/**
 * The session acts on its own behalf (its id, never its token), in the tenant that minted it; its spend is a
 * limited attempt of the "reveal" class on its card.
 */
function sessionActor(session: RevealSessionRow, at?: PresentedAt): Actor {
  return {
    tenantId: session.tenant_id,
    subject: `reveal-session:${session.id}`,
    requestId: at?.requestId,
    ...(at ? { attempt: { kind: "reveal", route: at.route, publicToken: session.public_token } } : {}),
  };
}

const invalidSession = () =>
  new AppError(
    "reveal_session_invalid",
    "This reveal link is not valid; ask the card program for a new one.",
  );

export function createRevealService(deps: RevealServiceDeps) {
  async function presented(token: string): Promise<RevealSessionRow> {
    if (!REVEAL_TOKEN_PATTERN.test(token)) throw invalidSession();
    const session = await deps.sessions.findByTokenHash(digest(token));
    if (!session) throw invalidSession();
    return session;
  }

  /** Checks a presented session and its card; a refusal is audited against the card, with its reason. */
  async function check(session: RevealSessionRow, audit: PresentedAt | false) {
    const actor = sessionActor(session, audit || undefined);
    try {
      assertSessionUsable(session, deps.clock.now());
      const card = usable(await findCard(deps.cards, actor, session.public_token), "reveal");
      return { actor, card };
    } catch (error) {
      if (error instanceof AppError && audit) await refused(session, actor, error);
      throw error;
    }
  }

  async function refused(session: RevealSessionRow, actor: Actor, error: AppError) {
    await deps.store.transaction((tx) =>
      deps.record(tx, actor, {
        action: "reveal_session.used",
        outcome: error.code,
        card: { id: session.card_id, public_token: session.public_token },
        details: { sessionId: session.id },
      }),
    );
  }

  return {
    async create(
      actor: Actor,
      publicToken: string,
      input: { fields: string[]; targetOrigin: string; ttlSeconds?: number },
    ): Promise<NewRevealSession> {
      const fields = normaliseFields(input.fields);
      const targetOrigin = parseTargetOrigin(input.targetOrigin, { production: deps.production });
      const now = deps.clock.now();
      const expiresAt = sessionExpiry(now, input.ttlSeconds).toISOString();
      const token = `rvs_${randomBytes(32).toString("base64url")}`;
      const id = uuidv7(deps.clock);
      await deps.withCard(actor, publicToken, async (tx, card) => {
        usable(card, "reveal");
        if (fields.includes("pin")) {
          if (card.secure_data_pin !== 1) {
            throw new AppError(
              "reveal_pin_not_allowed",
              "This card program does not deliver PINs (enable it with `cardvault tenants add … --secure-data-pin`).",
            );
          }
        }
        const recent = await deps.sessions.createdSince(
          actor.tenantId,
          card.id,
          new Date(now.getTime() - SESSION_CAP_WINDOW_MS).toISOString(),
          tx,
        );
        const retryAfterSeconds = sessionCapRetryAfter(recent, now, deps.sessionsPerCardHour);
        if (retryAfterSeconds !== undefined) {
          throw new RateLimitedError(
            { scope: "card", limit: deps.sessionsPerCardHour, retryAfterSeconds, windowSeconds: 3600 },
            "reveal sessions this hour",
          );
        }
        await deps.sessions.insert(
          {
            id,
            tenant_id: actor.tenantId,
            card_id: card.id,
            public_token: card.public_token,
            token_hash: digest(token),
            fields: fields.join(","),
            target_origin: targetOrigin,
            created_by: actor.subject,
            created_at: now.toISOString(),
            expires_at: expiresAt,
            used_at: null,
          },
          tx,
        );
        await deps.record(tx, actor, {
          action: "reveal_session.created",
          outcome: "success",
          card,
          details: { sessionId: id, fields: fields.join(","), targetOrigin, expiresAt },
        });
      });
      const url = `${deps.publicUrl}/reveal?session=${id}#${token}`;
      return { id, token, url, fields, targetOrigin, expiresAt };
    },

    /** What GET /reveal needs to frame the page: the session's origin, whatever its state (no token needed). */
    async frameOrigin(id: string): Promise<string | undefined> {
      return (await deps.sessions.findById(id))?.target_origin;
    },

    /** The page's first call: the session's state and the keys to use, without spending it. */
    async describe(token: string): Promise<RevealSessionView> {
      const session = await presented(token);
      await check(session, false);
      return {
        id: session.id,
        fields: fieldsOf(session),
        targetOrigin: session.target_origin,
        expiresAt: session.expires_at,
        keys: deps.secureData.publicKeys(),
      };
    },

    /**
     * Spends the session and delivers the card data encrypted to the page's session key, in one transaction
     * on the card as it is then: a card suspended or closed since the session was checked shows nothing, and a
     * delivery that fails (a key that does not unwrap, a replayed key) leaves the session unspent. Every
     * refusal is audited against the card, with its reason. The session key is unwrapped before that
     * transaction and the answer signed after it (secure-data.ts); a delivery the key provider has no room for
     * is refused (503 overloaded) before anything is done: the session stays unspent and unaudited.
     */
    async reveal(
      token: string,
      request: { wrappedKey: Buffer; keyId?: string },
      at: PresentedAt,
    ): Promise<{ fields: RevealField[]; answer: SecureDataAnswer }> {
      const session = await presented(token);
      const { actor } = await check(session, at);
      const now = deps.clock.now().toISOString();
      const device = deps.secureData.deviceSession(request);
      try {
        let revealed: { fields: RevealField[]; sealed: SealedCardData } | undefined;
        try {
          revealed = await deps.withCard(
            actor,
            session.public_token,
            async (tx, card) => {
              usable(card, "reveal");
              const consumed = await deps.sessions.consume(session.token_hash, now, tx);
              if (!consumed) return undefined;
              const fields = fieldsOf(consumed);
              // Reveal fields are the key provider's card-data fields by name; the compiler holds them together.
              const cardData: readonly CardDataField[] = fields;
              const sealed =
                (await deps.secureData.deliverIn(tx, actor, card, device, { fields: cardData })) ??
                replayed();
              await deps.record(tx, actor, {
                action: "reveal_session.used",
                outcome: "success",
                card,
                details: { sessionId: session.id, fields: session.fields },
              });
              return { fields, sealed };
            },
            () => device.open(),
          );
        } catch (error) {
          if (error instanceof AppError) await refused(session, actor, error);
          throw error;
        }
        if (!revealed) {
          // Another presentation won the race, or the session ran out between the check and the update.
          const latest = (await deps.sessions.findById(session.id)) ?? session;
          await check(latest, at);
          throw invalidSession();
        }
        return { fields: revealed.fields, answer: await deps.secureData.answer(device, revealed.sealed) };
      } finally {
        device.close();
      }
    },
  };
}

export type RevealService = ReturnType<typeof createRevealService>;
