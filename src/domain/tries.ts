// Try-counter rules shared by the CVV and the PIN. The counter counts down from the tenant's maximum; at zero
// the secret is Blocked and every verification answers "blocked" (even the right value) until an unblock.
// The counter itself only ever moves in the store, by one relative statement per step (so concurrent steps
// are all counted); these functions decide which step a comparison takes and, from the counter as read by the
// transaction that holds the card, what it leaves and what the caller is told. Beside the counter, a rolling
// budget of wrong tries that no unblock restores: the wrong try that spends it leaves the secret compromised
// (Blocked, and unblock refused) until the secret itself changes, so verify + unblock cannot walk through every
// value.
export type SecretStatus = "Unblocked" | "Blocked";
export type VerifyResult = "match" | "mismatch" | "blocked";

export interface TryState {
  status: SecretStatus;
  remainingTries: number;
  maxTries: number;
}

export function tryState(remaining: number, max: number): TryState {
  const clamped = Math.max(0, Math.min(remaining, max));
  return { status: clamped === 0 ? "Blocked" : "Unblocked", remainingTries: clamped, maxTries: max };
}

/** A right value while unblocked restores the counter; a wrong one uses up a try. */
export type CounterStep = "reset" | "decrement";

/** What a comparison leaves on a counter: the count, and the times of the last wrong tries (oldest first). */
export interface CounterAfterStep {
  remaining: number;
  wrongTries: string[];
}

/**
 * The step a comparison takes on the counter as read (by the transaction holding the card), and what it leaves:
 * "blocked" at zero (nothing moves, even for the right value); a match resets the count (no step when it is
 * already full); a wrong try uses one up and is recorded at `at`, keeping the last `keep` wrong tries.
 */
export function counterStep(
  counter: { remaining: number; max: number; wrongTries: readonly string[] },
  matched: boolean,
  wrongTry: { at: string; keep: number },
): { step: CounterStep | undefined; after: CounterAfterStep } | "blocked" {
  if (counter.remaining <= 0) return "blocked";
  if (matched) {
    const step = counter.remaining === counter.max ? undefined : "reset";
    return { step, after: { remaining: counter.max, wrongTries: [...counter.wrongTries] } };
  }
  const wrongTries = [...counter.wrongTries, wrongTry.at].slice(-wrongTry.keep);
  return { step: "decrement", after: { remaining: counter.remaining - 1, wrongTries } };
}

export interface VerifyOutcome extends TryState {
  result: VerifyResult;
}

/**
 * What a verification answers, given whether the value matched and what the atomic step returned:
 * the remaining count after the step, or null when the step found the counter already at zero.
 */
export function verifyOutcome(matched: boolean, remainingAfter: number | null, max: number): VerifyOutcome {
  if (remainingAfter === null) return { result: "blocked", ...tryState(0, max) };
  return { result: matched ? "match" : "mismatch", ...tryState(remainingAfter, max) };
}

/** At most `tries` wrong tries of one secret in any `windowHours` (rolling: the hours before now, any day). */
export interface WrongTryBudget {
  tries: number;
  windowHours: number;
}

/**
 * Whether the recorded wrong tries (ISO times, the one just made included) spend the budget: `tries` of them
 * fall within the window that ends now (a try exactly `windowHours` old has left it).
 */
export function budgetSpent(wrongTries: readonly string[], now: Date, budget: WrongTryBudget): boolean {
  const since = now.getTime() - budget.windowHours * 3_600_000;
  return wrongTries.filter((at) => Date.parse(at) > since).length >= budget.tries;
}
