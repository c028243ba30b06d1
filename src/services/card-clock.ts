// The time a card lives in: the system clock, or its test clock when it was created on one (sandbox), so
// a 24-hour rotation schedule can be watched in seconds without touching real cards.
import type { Clock } from "../lib/clock.js";
import type { Db } from "../store/db.js";
import type { TestClockRepo } from "../store/test-clock-repo.js";

/** Inside an operation's transaction, pass it: the test clock is then read in that transaction. */
export type CardClock = (card: { tenant_id: string; test_clock_id: string | null }, tx?: Db) => Promise<Date>;

export function createCardClock(deps: { clock: Clock; testClocks: Pick<TestClockRepo, "find"> }): CardClock {
  return async (card, tx) => {
    if (card.test_clock_id === null) return deps.clock.now();
    const testClock = await deps.testClocks.find(card.tenant_id, card.test_clock_id, tx);
    return testClock ? new Date(testClock.frozen_time) : deps.clock.now();
  };
}
