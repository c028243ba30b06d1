// Try-counter rules shared by the CVV and the PIN. The counter counts down from the tenant's maximum; at zero
// the secret is Blocked and every verification answers "blocked" (even the right value) until an unblock.
// The counter itself only ever moves in the store, by one atomic statement per step; these functions decide
// which step a comparison takes and what the caller is told.
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
