import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Db } from './client.js';

const dialect = new PgDialect();

/**
 * Runs a statement as a named prepared statement, so each connection parses and plans it
 * once instead of on every call: for the usage path's statements, planning cost more than
 * running them. The text must be the same on every call for one name (only the values vary).
 */
export async function executePrepared<T>(db: Db, name: string, query: SQL): Promise<T[]> {
  const result = await db._.session.prepareQuery(dialect.sqlToQuery(query), undefined, name, false).execute();
  return (result as { rows: T[] }).rows;
}
