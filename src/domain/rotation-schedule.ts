// The dynamic-CVV rotation schedule, to the letter of Pismo's "Rotate virtual card CVV"
// (https://developers.pismo.io/pismo-docs/reference/post-v2-reset-cvv):
// every rotation rotates; a rotation at time T schedules the next automatic rotation at T + interval only
// if no scheduling took place in the two minutes before T. Setting an interval is a scheduling request too.
// An automatic rotation that runs late (the service was down) rotates once and keeps the cadence: its T is
// the due time, and the next one is the first due time after now. Pure; time comes in as an argument.
export const SCHEDULING_WINDOW_MS = 2 * 60_000;
const HOUR_MS = 3_600_000;

export type RotationType = "MANUAL" | "AUTOMATIC";

export interface RotationSchedule {
  intervalHours: number | null;
  nextRotationAt: Date | null;
  /** When the schedule was last set: by an interval change or by a rotation that rescheduled. */
  lastScheduledAt: Date | null;
}

export interface RotationDecision {
  schedule: RotationSchedule;
  rescheduled: boolean;
}

export function isValidInterval(hours: unknown): hours is number {
  return typeof hours === "number" && Number.isInteger(hours) && hours >= 1 && hours <= 24 * 366;
}

/** True when a scheduling took place in the two minutes before `now`. */
export function scheduledRecently(schedule: RotationSchedule, now: Date): boolean {
  if (!schedule.lastScheduledAt) return false;
  const since = now.getTime() - schedule.lastScheduledAt.getTime();
  return since >= 0 && since < SCHEDULING_WINDOW_MS;
}

/** Setting (or changing) the interval schedules the next rotation at now + interval. */
export function scheduleEvery(now: Date, intervalHours: number): RotationSchedule {
  return {
    intervalHours,
    nextRotationAt: new Date(now.getTime() + intervalHours * HOUR_MS),
    lastScheduledAt: now,
  };
}

/** Deleting the interval stops automatic rotation; forced rotations still work. */
export function unschedule(schedule: RotationSchedule): RotationSchedule {
  return { ...schedule, intervalHours: null, nextRotationAt: null };
}

/** Whether an automatic rotation is due. */
export function isDue(schedule: RotationSchedule, now: Date): boolean {
  return schedule.nextRotationAt !== null && schedule.nextRotationAt.getTime() <= now.getTime();
}

/** What a rotation of the given type at `now` does to the schedule. */
export function applyRotation(schedule: RotationSchedule, now: Date, type: RotationType): RotationDecision {
  if (schedule.intervalHours === null) return { schedule, rescheduled: false };
  const interval = schedule.intervalHours * HOUR_MS;

  if (scheduledRecently(schedule, now)) {
    // No new scheduling. An automatic rotation must still not fall due again for the time it just served.
    if (type === "AUTOMATIC" && isDue(schedule, now)) {
      return {
        schedule: { ...schedule, nextRotationAt: nextOnCadence(schedule.nextRotationAt!, interval, now) },
        rescheduled: false,
      };
    }
    return { schedule, rescheduled: false };
  }

  const next =
    type === "AUTOMATIC" && schedule.nextRotationAt !== null
      ? nextOnCadence(schedule.nextRotationAt, interval, now)
      : new Date(now.getTime() + interval);
  return { schedule: { ...schedule, nextRotationAt: next, lastScheduledAt: now }, rescheduled: true };
}

/** The first time after `now` on the cadence due, due + interval, due + 2·interval, … */
function nextOnCadence(due: Date, interval: number, now: Date): Date {
  const missed = Math.floor((now.getTime() - due.getTime()) / interval) + 1;
  return new Date(due.getTime() + Math.max(1, missed) * interval);
}
