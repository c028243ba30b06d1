// The seed's rules (Pismo "Rotate virtual card CVV"), one test per scenario, plus the edges.
import { describe, expect, it } from "vitest";
import {
  applyRotation,
  isDue,
  isValidInterval,
  type RotationSchedule,
  SCHEDULING_WINDOW_MS,
  scheduleEvery,
  unschedule,
} from "./rotation-schedule.js";

const at = (iso: string) => new Date(`2026-03-01T${iso}Z`);
const day = (n: number, time: string) => new Date(`2026-03-${String(n).padStart(2, "0")}T${time}Z`);
const H = 3_600_000;

/** A card whose 24 h interval was set long ago and whose next automatic rotation is at `next`. */
function daily(next: Date, lastScheduledAt = new Date(next.getTime() - 24 * H)): RotationSchedule {
  return { intervalHours: 24, nextRotationAt: next, lastScheduledAt };
}

describe("rotation schedule", () => {
  it("a forced rotation resets the schedule: forced at 15:00 with 24 h → next at 15:00 tomorrow, and daily after", () => {
    const forced = applyRotation(daily(day(1, "09:00:00")), at("15:00:00"), "MANUAL");
    expect(forced.rescheduled).toBe(true);
    expect(forced.schedule.nextRotationAt).toEqual(day(2, "15:00:00"));
    const auto = applyRotation(forced.schedule, day(2, "15:00:00"), "AUTOMATIC");
    expect(auto.rescheduled).toBe(true);
    expect(auto.schedule.nextRotationAt).toEqual(day(3, "15:00:00"));
  });

  it("a forced rotation less than 2 minutes after an automatic one rotates and does not reschedule", () => {
    const auto = applyRotation(daily(at("15:00:00")), at("15:00:00"), "AUTOMATIC");
    expect(auto.schedule.nextRotationAt).toEqual(day(2, "15:00:00"));
    const forced = applyRotation(auto.schedule, at("15:01:59"), "MANUAL");
    expect(forced.rescheduled).toBe(false);
    expect(forced.schedule).toEqual(auto.schedule);
  });

  it("an automatic rotation less than 2 minutes after a forced one rotates and does not reschedule", () => {
    // The forced rotation at 14:59:30 rescheduled; the automatic one for 15:00 (already claimed) still runs.
    const forced = applyRotation(daily(at("15:00:00")), at("14:59:30"), "MANUAL");
    expect(forced.rescheduled).toBe(true);
    const auto = applyRotation(
      { ...forced.schedule, nextRotationAt: at("15:00:00") },
      at("15:00:00"),
      "AUTOMATIC",
    );
    expect(auto.rescheduled).toBe(false);
    expect(auto.schedule.lastScheduledAt).toEqual(at("14:59:30"));
    // It must not fall due again for the time it just served.
    expect(isDue(auto.schedule, at("15:00:00"))).toBe(false);
  });

  it("several forced rotations within 2 minutes each rotate, and only the first reschedules", () => {
    let schedule = daily(day(2, "09:00:00"));
    const results = ["15:00:00", "15:00:40", "15:01:30"].map((time) => {
      const decision = applyRotation(schedule, at(time), "MANUAL");
      schedule = decision.schedule;
      return decision.rescheduled;
    });
    expect(results).toEqual([true, false, false]);
    expect(schedule.nextRotationAt).toEqual(day(2, "15:00:00"));
  });

  it("exactly 2:00 after a scheduling is outside the window", () => {
    const first = applyRotation(daily(day(2, "09:00:00")), at("15:00:00"), "MANUAL");
    const edge = applyRotation(
      first.schedule,
      new Date(at("15:00:00").getTime() + SCHEDULING_WINDOW_MS),
      "MANUAL",
    );
    expect(edge.rescheduled).toBe(true);
    const inside = applyRotation(
      first.schedule,
      new Date(at("15:00:00").getTime() + SCHEDULING_WINDOW_MS - 1),
      "MANUAL",
    );
    expect(inside.rescheduled).toBe(false);
  });

  it("setting an interval is a scheduling: next at now + interval, and a forced rotation right after does not reschedule", () => {
    const set = scheduleEvery(at("10:00:00"), 6);
    expect(set).toEqual({
      intervalHours: 6,
      nextRotationAt: at("16:00:00"),
      lastScheduledAt: at("10:00:00"),
    });
    const forced = applyRotation(set, at("10:01:00"), "MANUAL");
    expect(forced.rescheduled).toBe(false);
    expect(forced.schedule.nextRotationAt).toEqual(at("16:00:00"));
  });

  it("changing the interval reschedules from now", () => {
    const changed = scheduleEvery(at("12:00:00"), 48);
    expect(changed.nextRotationAt).toEqual(day(3, "12:00:00"));
  });

  it("a deleted schedule never falls due; forced rotations still rotate without scheduling", () => {
    const cleared = unschedule(daily(at("15:00:00")));
    expect(cleared.nextRotationAt).toBeNull();
    expect(isDue(cleared, day(9, "00:00:00"))).toBe(false);
    const forced = applyRotation(cleared, at("16:00:00"), "MANUAL");
    expect(forced.rescheduled).toBe(false);
    expect(forced.schedule.nextRotationAt).toBeNull();
  });

  it("after downtime an automatic rotation runs once and keeps the cadence", () => {
    // Due 2026-03-01 15:00; the service was down until 2026-03-04 09:30.
    const late = applyRotation(daily(at("15:00:00")), day(4, "09:30:00"), "AUTOMATIC");
    expect(late.rescheduled).toBe(true);
    expect(late.schedule.nextRotationAt).toEqual(day(4, "15:00:00"));
    expect(isDue(late.schedule, day(4, "09:30:00"))).toBe(false);
  });

  it("an automatic rotation that runs a little late keeps the cadence instead of drifting", () => {
    const late = applyRotation(daily(at("15:00:00")), at("15:00:07"), "AUTOMATIC");
    expect(late.schedule.nextRotationAt).toEqual(day(2, "15:00:00"));
  });

  it("accepts whole hours ≥ 1 only", () => {
    expect([1, 24, 8784].every(isValidInterval)).toBe(true);
    expect([0, -1, 1.5, Number.NaN, "24", null].some(isValidInterval)).toBe(false);
  });
});
