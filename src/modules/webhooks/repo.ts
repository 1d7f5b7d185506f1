import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, lte, ne, notLike, or } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { outbox, webhookAttempts, webhookDeliveries, webhookEndpoints } from '../../db/schema/index.js';
import type { OutboxRow } from '../events/repo.js';
import type { DeliveryClass } from './domain.js';

export type EndpointRow = typeof webhookEndpoints.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type AttemptRow = typeof webhookAttempts.$inferSelect;

// Endpoints

/** An endpoint the API may show: a deleted one is kept for its deliveries' sake, but gone for the account. */
export async function findEndpoint(db: Db, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(webhookEndpoints).where(and(eq(webhookEndpoints.id, id), ne(webhookEndpoints.status, 'deleted')));
  return row;
}

/** An endpoint whatever its status: a delivery to a deleted or disabled one must still be settled (as failed). */
export async function findEndpointIncludingDeleted(db: Db, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id));
  return row;
}

export async function insertEndpoint(db: Db, row: typeof webhookEndpoints.$inferInsert): Promise<EndpointRow> {
  const [inserted] = await db.insert(webhookEndpoints).values(row).returning();
  return inserted!;
}

/** An account's endpoints but the deleted ones, oldest first. */
export async function listEndpoints(db: Db, accountId: string): Promise<EndpointRow[]> {
  return db
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.accountId, accountId), ne(webhookEndpoints.status, 'deleted')))
    .orderBy(asc(webhookEndpoints.createdAt));
}

/** The endpoints an account's events fan out to; which event types each takes is the caller's filter. */
export async function listEnabledEndpoints(db: Db, accountId: string): Promise<EndpointRow[]> {
  return db.select().from(webhookEndpoints).where(and(eq(webhookEndpoints.accountId, accountId), eq(webhookEndpoints.status, 'enabled')));
}

export type EndpointChanges = Partial<Pick<EndpointRow, 'url' | 'eventTypes' | 'description' | 'status' | 'disabledReason'>> & { updatedAt: Date };

export async function updateEndpoint(db: Db, id: string, changes: EndpointChanges): Promise<EndpointRow | undefined> {
  const [row] = await db.update(webhookEndpoints).set(changes).where(eq(webhookEndpoints.id, id)).returning();
  return row;
}

/** Soft delete: the row stays, since its deliveries and attempts reference it. */
export async function markEndpointDeleted(db: Db, id: string, at: Date): Promise<void> {
  await db.update(webhookEndpoints).set({ status: 'deleted', updatedAt: at }).where(eq(webhookEndpoints.id, id));
}

/**
 * Disables an endpoint only if it is still enabled, so a receiver's answer never re-disables
 * (or overwrites the reason of) an endpoint the account disabled or deleted meanwhile.
 */
export async function disableEnabledEndpoint(db: Db, id: string, reason: string, at: Date): Promise<void> {
  await db
    .update(webhookEndpoints)
    .set({ status: 'disabled', disabledReason: reason, updatedAt: at })
    .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.status, 'enabled')));
}

/** Sealed secrets, already sealed by the caller: this module never sees a key. */
export async function setSecrets(db: Db, id: string, secrets: { secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null; updatedAt: Date }): Promise<void> {
  await db.update(webhookEndpoints).set(secrets).where(eq(webhookEndpoints.id, id));
}

/** `value LIKE pattern`, with the prefix's own `\`, `_` and `%` taken literally. */
const likePrefix = (prefix: string) => `${prefix.replace(/[\\_%]/g, '\\$&')}%`;

/**
 * Endpoints after `after` (by id) holding a secret, current or previous, that does not start
 * with `sealedPrefix` (sealed with the current key): keyset paging, so a batch that reseals
 * nothing (unreadable secrets) still moves on.
 */
export async function listStaleSecrets(
  db: Db,
  sealedPrefix: string,
  after: string,
  limit: number,
): Promise<Array<Pick<EndpointRow, 'id' | 'secret' | 'previousSecret'>>> {
  const current = likePrefix(sealedPrefix);
  const stale = or(notLike(webhookEndpoints.secret, current), and(isNotNull(webhookEndpoints.previousSecret), notLike(webhookEndpoints.previousSecret, current)));
  return db
    .select({ id: webhookEndpoints.id, secret: webhookEndpoints.secret, previousSecret: webhookEndpoints.previousSecret })
    .from(webhookEndpoints)
    .where(and(gt(webhookEndpoints.id, after), stale))
    .orderBy(asc(webhookEndpoints.id))
    .limit(limit);
}

/**
 * Writes resealed secrets only if the row still holds the ones read (compare and set), so a
 * rotation that happened meanwhile keeps its new value. Whether it wrote.
 */
export async function replaceSecretsIfUnchanged(
  db: Db,
  read: Pick<EndpointRow, 'id' | 'secret' | 'previousSecret'>,
  set: { secret: string; previousSecret: string | null },
): Promise<boolean> {
  const unchanged = and(
    eq(webhookEndpoints.id, read.id),
    eq(webhookEndpoints.secret, read.secret),
    read.previousSecret === null ? isNull(webhookEndpoints.previousSecret) : eq(webhookEndpoints.previousSecret, read.previousSecret),
  );
  return (await db.update(webhookEndpoints).set(set).where(unchanged).returning({ id: webhookEndpoints.id })).length > 0;
}

// Deliveries

/**
 * Inserts deliveries, skipping any whose (endpoint, event) pair exists: an event relayed twice
 * is delivered once. How many were new.
 */
export async function insertDeliveries(db: Db, rows: Array<typeof webhookDeliveries.$inferInsert>): Promise<number> {
  const inserted = await db.insert(webhookDeliveries).values(rows).onConflictDoNothing().returning({ id: webhookDeliveries.id });
  return inserted.length;
}

/**
 * Leases up to `limit` due, pending deliveries of these classes until `leasedUntil`, oldest
 * due first, and returns them. SKIP LOCKED lets two sweeps run side by side without waiting on
 * or taking each other's rows; an unexpired lease means a job is already queued or running.
 */
export async function leaseDueDeliveries(
  db: Db,
  classes: DeliveryClass[],
  now: Date,
  leasedUntil: Date,
  limit: number,
): Promise<Array<Pick<DeliveryRow, 'id' | 'attempts' | 'deliveryClass'>>> {
  const due = db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(
      and(
        eq(webhookDeliveries.status, 'pending'),
        inArray(webhookDeliveries.deliveryClass, classes),
        lte(webhookDeliveries.nextAttemptAt, now),
        or(isNull(webhookDeliveries.leasedUntil), lt(webhookDeliveries.leasedUntil, now)),
      ),
    )
    .orderBy(asc(webhookDeliveries.nextAttemptAt))
    .limit(limit)
    .for('update', { skipLocked: true });
  return db
    .update(webhookDeliveries)
    .set({ leasedUntil })
    .where(inArray(webhookDeliveries.id, due))
    .returning({ id: webhookDeliveries.id, attempts: webhookDeliveries.attempts, deliveryClass: webhookDeliveries.deliveryClass });
}

/**
 * The delivery, locked for the caller's transaction; undefined when missing or when another
 * worker holds it (SKIP LOCKED): a job run twice at once attempts once.
 */
export async function lockDelivery(tx: Db, id: string): Promise<DeliveryRow | undefined> {
  const [row] = await tx.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id)).for('update', { skipLocked: true });
  return row;
}

/** Counts the attempt as started and holds the lease while it runs, so the sweep leaves it alone. */
export async function startAttempt(tx: Db, id: string, attempt: number, leasedUntil: Date): Promise<void> {
  await tx.update(webhookDeliveries).set({ attempts: attempt, leasedUntil }).where(eq(webhookDeliveries.id, id));
}

export interface Settlement {
  status: DeliveryRow['status'];
  nextAttemptAt: Date | null;
  statusCode: number | null;
  error: string | null;
  deliveredAt: Date | null;
}

/**
 * Records an attempt's result on its delivery and releases the lease, only if the delivery is
 * still pending at that attempt. False: a redelivery or another attempt settled it meanwhile.
 */
export async function settleDelivery(tx: Db, id: string, attempt: number, s: Settlement): Promise<boolean> {
  const updated = await tx
    .update(webhookDeliveries)
    .set({ status: s.status, nextAttemptAt: s.nextAttemptAt, leasedUntil: null, lastStatusCode: s.statusCode, lastError: s.error, deliveredAt: s.deliveredAt })
    .where(and(eq(webhookDeliveries.id, id), eq(webhookDeliveries.attempts, attempt), eq(webhookDeliveries.status, 'pending')))
    .returning({ id: webhookDeliveries.id });
  return updated.length > 0;
}

export async function insertAttempt(tx: Db, row: typeof webhookAttempts.$inferInsert): Promise<void> {
  await tx.insert(webhookAttempts).values(row);
}

/** Pending deliveries of an endpoint given up, so none is attempted after the endpoint is gone. */
export async function failPendingDeliveries(tx: Db, endpointId: string, reason: string): Promise<void> {
  await tx
    .update(webhookDeliveries)
    .set({ status: 'failed', nextAttemptAt: null, lastError: reason })
    .where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.status, 'pending')));
}

/** A delivery, only if it belongs to this endpoint: the endpoint is what the viewer was checked against. */
export async function findDeliveryOfEndpoint(db: Db, endpointId: string, deliveryId: string): Promise<DeliveryRow | undefined> {
  const [row] = await db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.endpointId, endpointId)));
  return row;
}

/**
 * Makes a delivery pending again from `now` with a new give-up time, unless an attempt is
 * queued or running (an unexpired lease): that would send it twice at once. Undefined then.
 */
export async function rearmDelivery(db: Db, id: string, now: Date, giveUpAt: Date): Promise<DeliveryRow | undefined> {
  const [row] = await db
    .update(webhookDeliveries)
    .set({ status: 'pending', nextAttemptAt: now, leasedUntil: null, giveUpAt, deliveredAt: null })
    .where(and(eq(webhookDeliveries.id, id), or(isNull(webhookDeliveries.leasedUntil), lt(webhookDeliveries.leasedUntil, now))))
    .returning();
  return row;
}

/** An endpoint's deliveries, newest first, `limit` of them from before the cursor. */
export async function listDeliveriesOfEndpoint(db: Db, endpointId: string, opts: { before?: string; limit: number }): Promise<DeliveryRow[]> {
  return db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.endpointId, endpointId), opts.before ? lt(webhookDeliveries.id, opts.before) : undefined))
    .orderBy(desc(webhookDeliveries.id))
    .limit(opts.limit);
}

/** The attempts of these deliveries, in the order they were made. */
export async function listAttempts(db: Db, deliveryIds: string[]): Promise<AttemptRow[]> {
  return db.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, deliveryIds)).orderBy(asc(webhookAttempts.id));
}

// Events (the outbox), as webhooks send them

/**
 * The event a delivery sends: its body is built from the outbox row at each attempt. Looked up
 * in its own month only: the delivery keeps the event's time (to the millisecond, hence the
 * range). Undefined once the month is past retention and dropped.
 */
export async function findEvent(db: Db, eventId: string, createdAt: Date): Promise<OutboxRow | undefined> {
  const [row] = await db
    .select()
    .from(outbox)
    .where(and(eq(outbox.eventId, eventId), gte(outbox.createdAt, createdAt), lt(outbox.createdAt, new Date(createdAt.getTime() + 1))));
  return row;
}

/** An account's events, newest first, `limit` of them from before the cursor, of one type if given. */
export async function listAccountEvents(db: Db, accountId: string, opts: { before?: number; limit: number; type?: string }): Promise<OutboxRow[]> {
  return db
    .select()
    .from(outbox)
    .where(and(eq(outbox.accountId, accountId), opts.before ? lt(outbox.id, opts.before) : undefined, opts.type ? eq(outbox.type, opts.type) : undefined))
    .orderBy(desc(outbox.id))
    .limit(opts.limit);
}
