// Multi-row inserts in bounded chunks: one statement per chunk keeps a large batch fast, and the bound keeps
// each statement under the bind-parameter limits of SQLite (32 766) and PostgreSQL (65 535).
export const ROWS_PER_INSERT = 500;

export function chunksOf<T>(rows: readonly T[], size = ROWS_PER_INSERT): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
  return chunks;
}
