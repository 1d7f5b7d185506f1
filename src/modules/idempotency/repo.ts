import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { idempotencyKeys } from '../../db/schema/index.js';

export type IdempotencyRow = typeof idempotencyKeys.$inferSelect;
type Id = { apiKeyId: string; key: string };

/** A claimed key: who holds it since when, and whether the response is already recorded. */
export interface IdempotencyHandle extends Id {
  lockedAt: Date;
  completed: boolean;
}

/** Only the holder of the lock may write the outcome: a request taken over cannot overwrite its successor. */
const held = (h: IdempotencyHandle) => and(byId(h), eq(idempotencyKeys.lockedAt, h.lockedAt));

const byId = (id: Id) => and(eq(idempotencyKeys.apiKeyId, id.apiKeyId), eq(idempotencyKeys.key, id.key));

/** True when this request made the record, false when one was there already. */
export async function claim(db: Db, row: typeof idempotencyKeys.$inferInsert): Promise<boolean> {
  const inserted = await db.insert(idempotencyKeys).values(row).onConflictDoNothing().returning({ key: idempotencyKeys.key });
  return inserted.length > 0;
}

export async function find(db: Db, id: Id): Promise<IdempotencyRow | undefined> {
  const [row] = await db.select().from(idempotencyKeys).where(byId(id));
  return row;
}

/** Takes over a stale or expired record; only one of several racing retries wins. */
export async function takeOver(
  db: Db,
  id: Id,
  seen: Pick<IdempotencyRow, 'lockedAt' | 'heartbeatAt'>,
  row: Pick<IdempotencyRow, 'requestHash' | 'method' | 'path' | 'createdAt' | 'lockedAt'>,
): Promise<boolean> {
  // As seen: neither taken by another retry nor renewed by a holder that turned out alive.
  const unchanged = and(
    eq(idempotencyKeys.lockedAt, seen.lockedAt),
    seen.heartbeatAt ? eq(idempotencyKeys.heartbeatAt, seen.heartbeatAt) : isNull(idempotencyKeys.heartbeatAt),
  );
  const updated = await db
    .update(idempotencyKeys)
    .set({ ...row, state: 'in_progress', responseStatus: null, responseBody: null, heartbeatAt: null })
    .where(and(byId(id), unchanged))
    .returning({ key: idempotencyKeys.key });
  return updated.length > 0;
}

/** The holder is still running: renews the record without touching its ownership token. */
export async function heartbeat(db: Db, handle: IdempotencyHandle, at: Date): Promise<void> {
  await db.update(idempotencyKeys).set({ heartbeatAt: at }).where(and(held(handle), eq(idempotencyKeys.state, 'in_progress')));
}

export async function complete(db: Db, handle: IdempotencyHandle, status: number, body: unknown): Promise<void> {
  await db.update(idempotencyKeys).set({ state: 'completed', responseStatus: status, responseBody: body }).where(held(handle));
}

export async function release(db: Db, handle: IdempotencyHandle): Promise<void> {
  await db.delete(idempotencyKeys).where(held(handle));
}

/**
 * Deletes records made before `before`, `batch` at a time (each its own short statement, found
 * through the created_at index), so a day's worth of keys never holds one long transaction or
 * comes back into memory. How many went.
 */
export async function purgeOlderThan(db: Db, before: Date, batch = 5_000): Promise<number> {
  let purged = 0;
  for (;;) {
    const result = (await db.execute(sql`
      with gone as (
        delete from idempotency_keys where ctid = any(array(select ctid from idempotency_keys where created_at < ${before.toISOString()}::timestamptz limit ${batch}))
        returning 1)
      select count(*)::int as n from gone`)) as unknown as { rows: Array<{ n: number }> };
    const n = result.rows[0]!.n;
    purged += n;
    if (n < batch) return purged;
  }
}

/** Keeps the record (and its fingerprint) but lets the next retry with the same body take it at once. */
export async function unlock(db: Db, handle: IdempotencyHandle): Promise<void> {
  await db.update(idempotencyKeys).set({ lockedAt: new Date(0), heartbeatAt: null }).where(held(handle));
}
