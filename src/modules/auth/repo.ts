import { and, eq, isNull, ne } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { apiKeys } from '../../db/schema/index.js';

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export async function findActiveKeyByHash(db: Db, hash: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
    .limit(1);
  return row;
}

export async function insertKey(db: Db, row: typeof apiKeys.$inferInsert): Promise<boolean> {
  const inserted = await db.insert(apiKeys).values(row).onConflictDoNothing({ target: apiKeys.hash }).returning({ id: apiKeys.id });
  return inserted.length > 0;
}

export async function countKeys(db: Db): Promise<number> {
  return db.$count(apiKeys);
}

/** Revokes the keys of this name other than the one with this hash. */
export async function revokeOthersNamed(db: Db, name: string, keepHash: string, at: Date): Promise<number> {
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt: at })
    .where(and(eq(apiKeys.name, name), ne(apiKeys.hash, keepHash), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return revoked.length;
}
