// Cursor pagination shared by every list: ids are UUIDv7 (time-ordered), so "after this id" is a stable
// cursor; fetching one row more than the page tells whether another page exists.
import { validationFailed } from "../domain/errors.js";

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A cursor is a row id (a lower-case UUID); the list routes' schemas publish this pattern. */
export const CURSOR_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
const CURSOR = new RegExp(CURSOR_PATTERN);

export function assertCursor(cursor: string | undefined): void {
  if (cursor !== undefined && !CURSOR.test(cursor)) {
    throw validationFailed("cursor", "cursor must be a value returned as nextCursor.");
  }
}

/** `rows` were fetched with limit + 1. */
export function pageOf<R extends { id: string }, T>(
  rows: R[],
  limit: number,
  toView: (row: R) => T,
): Page<T> {
  const page = rows.slice(0, limit);
  return { items: page.map(toView), nextCursor: rows.length > limit ? page.at(-1)!.id : null };
}
