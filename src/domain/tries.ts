// Try-counter rules shared by the CVV and the PIN. The counter counts down from the tenant's maximum; at zero
// the secret is Blocked and every verification answers "blocked" (even the right value) until an unblock.
// The counter itself only ever moves in the store, by one atomic statement per step; these functions decide
// which step a comparison takes and what the caller is told. Beside the counter, a rolling budget of wrong
// tries that no unblock restores: the wrong try that spends it leaves the secret compromised (Blocked, and
// unblock refused) until the secret itself changes, so verify + unblock cannot walk through every value.
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

export function counterStepFor(matched: boolean): CounterStep {
  return matched ? "reset" : "decrement";
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
