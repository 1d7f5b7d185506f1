import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { migrationsFolder } from './client.js';

/** The migrations this build knows, from the journal drizzle-kit writes beside them. */
let known: Array<{ tag: string; when: number }> | undefined;
function journal(): Array<{ tag: string; when: number }> {
  return (known ??= (JSON.parse(readFileSync(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ tag: string; when: number }> }).entries);
}

export interface SchemaVersion {
  /** Migrations this build expects, and how many of them the database has. */
  expected: number;
  applied: number;
  /** The first migration the database lacks, if any. */
  missing: string | null;
}

/**
 * How far the database's schema is from this build's: drizzle records each applied
 * migration's timestamp in drizzle.__drizzle_migrations. A database ahead of the build (a
 * newer release migrated it) is fine; one behind it cannot serve this build.
 */
export async function schemaVersion(db: Db): Promise<SchemaVersion> {
  const entries = journal();
  let latest = 0;
  try {
    const result = (await db.execute(sql`select coalesce(max(created_at), 0)::bigint as latest from drizzle.__drizzle_migrations`)) as unknown as { rows: Array<{ latest: string | number }> };
    latest = Number(result.rows[0]?.latest ?? 0);
  } catch (err) {
    // No migration table: nothing was ever applied. Anything else (a lost connection) is the caller's to report.
    if ((err as { code?: string }).code !== '42P01' && (err as { cause?: { code?: string } }).cause?.code !== '42P01') throw err;
  }
  const applied = entries.filter((e) => e.when <= latest).length;
  const missing = entries.find((e) => e.when > latest);
  return { expected: entries.length, applied, missing: missing?.tag ?? null };
}

/** The one line a process says when it cannot start on this schema. */
export function schemaBehindMessage(v: SchemaVersion): string {
  return `The database schema is behind this build (${v.applied} of ${v.expected} migrations applied; first missing: ${v.missing}): run \`npm run migrate\` (node dist/migrate.js) against it, then start again.`;
}
