import { and, arrayContains, asc, desc, eq, gt, inArray, isNull, lt, ne, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { apiKeys } from '../../db/schema/index.js';
import type { Scope } from './domain.js';

export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** The active key stored under any of these hashes (the forms one key may take): one index lookup. */
export async function findActiveKeyByHash(db: Db, hashes: string[]): Promise<ApiKeyRow | undefined> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(and(inArray(apiKeys.hash, hashes), isNull(apiKeys.revokedAt)))
    .limit(1);
  return row;
}

/** Replaces a key's hash with another form of it, unless another process did so first. */
export async function rehashKey(db: Db, id: string, fromHash: string, to: { hash: string; hashKid: string }): Promise<boolean> {
  const updated = await db.update(apiKeys).set(to).where(and(eq(apiKeys.id, id), eq(apiKeys.hash, fromHash))).returning({ id: apiKeys.id });
  return updated.length > 0;
}

/** Keys still stored as plain SHA-256, in id order after `after`. */
export async function listLegacyHashes(db: Db, after: string, limit: number): Promise<Array<{ id: string; hash: string }>> {
  return db
    .select({ id: apiKeys.id, hash: apiKeys.hash })
    .from(apiKeys)
    .where(and(isNull(apiKeys.hashKid), gt(apiKeys.id, after)))
    .orderBy(asc(apiKeys.id))
    .limit(limit);
}

/** How many keys each hash form holds (null: legacy SHA-256); revoked keys count too. */
export async function countByHashKid(db: Db): Promise<Array<{ hashKid: string | null; keys: number }>> {
  return db
    .select({ hashKid: apiKeys.hashKid, keys: sql<number>`count(*)::int` })
    .from(apiKeys)
    .groupBy(apiKeys.hashKid);
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

/** A key as it may be shown: never its hash. */
const shown = {
  id: apiKeys.id,
  name: apiKeys.name,
  prefix: apiKeys.prefix,
  scopes: apiKeys.scopes,
  accountId: apiKeys.accountId,
  createdAt: apiKeys.createdAt,
  revokedAt: apiKeys.revokedAt,
};
export type ShownKey = { id: string; name: string; prefix: string; scopes: Scope[]; accountId: string | null; createdAt: Date; revokedAt: Date | null };

/** Keys newest first, before the id `before`, revoked ones included. */
export async function listKeys(db: Db, opts: { accountId?: string; before?: string; limit: number }): Promise<ShownKey[]> {
  return db
    .select(shown)
    .from(apiKeys)
    .where(and(opts.accountId ? eq(apiKeys.accountId, opts.accountId) : undefined, opts.before ? lt(apiKeys.id, opts.before) : undefined))
    .orderBy(desc(apiKeys.id))
    .limit(opts.limit) as Promise<ShownKey[]>;
}

export async function findKey(db: Db, id: string): Promise<ShownKey | undefined> {
  const [row] = await db.select(shown).from(apiKeys).where(eq(apiKeys.id, id));
  return row as ShownKey | undefined;
}

/**
 * The active operator keys (unbound, with the ops scope), locked in id order: revocations
 * that check "not the last one" take them first, so two of them cannot both pass the check.
 */
export async function lockActiveOpsKeys(db: Db): Promise<string[]> {
  const rows = await db
    .select({ id: apiKeys.id })
    .from(apiKeys)
    .where(and(isNull(apiKeys.revokedAt), isNull(apiKeys.accountId), arrayContains(apiKeys.scopes, ['ops'])))
    .orderBy(asc(apiKeys.id))
    .for('update');
  return rows.map((r) => r.id);
}

/** Revokes an active key; undefined when there is no such active key. */
export async function revokeKey(db: Db, id: string, at: Date): Promise<ShownKey | undefined> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: at })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning(shown);
  return row as ShownKey | undefined;
}
