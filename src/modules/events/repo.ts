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

/** Checks each payload against the catalogue, so what webhooks promise is what is sent. */
export function checkEvents(events: NewEvent[]): void {
  for (const e of events) eventSchemas[e.type].parse(e.payload);
}

/**
 * Outbox ids taken ahead, in order: for a batch that writes its events in more than one
 * statement (renewal waves) yet must keep each account's events in order.
 */
export async function reserveOutboxIds(db: Db, count: number): Promise<number[]> {
  if (count === 0) return [];
  const result = await db.execute<{ id: string }>(sql`select nextval(pg_get_serial_sequence('outbox', 'id')) as id from generate_series(1, ${count})`);
  return (result as unknown as { rows: Array<{ id: string }> }).rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/**
 * Writes events into the outbox; call inside the transaction of the change they report. Each
 * payload is checked against the catalogue. One statement however many events (a column per
 * array); `ids` (from reserveOutboxIds) when their order must span statements.
 */
export async function appendEvents(db: Db, now: Date, events: NewEvent[], ids?: number[]): Promise<void> {
  if (events.length === 0) return;
  checkEvents(events);
  const col = <T>(values: T[]) => sql.param(values);
  await db.execute(sql`
    insert into outbox (id, event_id, type, account_id, payload, created_at)
    select coalesce(e.id, nextval(pg_get_serial_sequence('outbox', 'id'))), e.event_id, e.type, e.account_id, e.payload, ${now.toISOString()}::timestamptz
    from unnest(${col(events.map((_, i) => ids?.[i] ?? null))}::bigint[], ${col(events.map(() => newId('evt', now)))}::text[],
      ${col(events.map((e) => e.type))}::text[], ${col(events.map((e) => e.accountId))}::text[],
      ${col(events.map((e) => JSON.stringify(e.payload)))}::jsonb[]) as e(id, event_id, type, account_id, payload)`);
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
