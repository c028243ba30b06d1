// The time a card lives in: the system clock, or its test clock when it was created on one (sandbox), so
// a 24-hour rotation schedule can be watched in seconds without touching real cards.
import type { Clock } from "../lib/clock.js";
import type { TestClockRepo } from "../store/test-clock-repo.js";

export type CardClock = (card: { tenant_id: string; test_clock_id: string | null }) => Promise<Date>;

export function createCardClock(deps: { clock: Clock; testClocks: TestClockRepo }): CardClock {
  return async (card) => {
    if (card.test_clock_id === null) return deps.clock.now();
    const testClock = await deps.testClocks.find(card.tenant_id, card.test_clock_id);
    return testClock ? new Date(testClock.frozen_time) : deps.clock.now();
  };
}
