import { and, asc, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { outbox } from '../../db/schema/index.js';
import { newId } from '../../lib/ids.js';
import { eventSchemas, type EventType } from './catalogue.js';

export interface NewEvent {
  type: EventType;
  accountId: string | null;
  payload: Record<string, unknown>;
}

export type OutboxRow = typeof outbox.$inferSelect;

/**
 * Writes events into the outbox; call inside the transaction of the change they report. Each
 * payload is checked against the catalogue, so what webhooks promise is what is sent.
 */
export async function appendEvents(db: Db, now: Date, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  for (const e of events) eventSchemas[e.type].parse(e.payload);
  await db.insert(outbox).values(
    events.map((e) => ({ eventId: newId('evt', now), type: e.type, accountId: e.accountId, payload: e.payload, createdAt: now })),
  );
}

/** Claims the oldest unrelayed rows; SKIP LOCKED lets several relays run side by side. */
export async function claimUnrelayed(db: Db, limit: number): Promise<OutboxRow[]> {
  return db
    .select()
    .from(outbox)
    .where(isNull(outbox.relayedAt))
    .orderBy(asc(outbox.id))
    .limit(limit)
    .for('update', { skipLocked: true });
}

export async function markRelayed(db: Db, ids: number[], at: Date): Promise<void> {
  if (ids.length === 0) return;
  await db.update(outbox).set({ relayedAt: at }).where(and(inArray(outbox.id, ids), isNull(outbox.relayedAt)));
}

export async function listEventsOfAccount(db: Db, accountId: string): Promise<OutboxRow[]> {
  return db.select().from(outbox).where(sql`${outbox.accountId} = ${accountId}`).orderBy(asc(outbox.id));
}
