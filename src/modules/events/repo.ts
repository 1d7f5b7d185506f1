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

/**
 * Marks rows relayed, on the database's clock (how long a job has been out is real time, even
 * for accounts on a test clock). `handled`: those among them with no job to wait for.
 */
export async function markRelayed(db: Db, ids: number[], handled: number[] = []): Promise<void> {
  if (ids.length === 0) return;
  const done = handled.length ? sql`case when ${outbox.id} = any(${sql.param(handled)}::bigint[]) then now() end` : sql`null`;
  await db
    .update(outbox)
    .set({ relayedAt: sql`now()`, handledAt: done })
    .where(and(inArray(outbox.id, ids), isNull(outbox.relayedAt)));
}

/** The event's job finished: nothing is owed for it any more. */
export async function markHandled(db: Db, id: number): Promise<void> {
  await db.update(outbox).set({ handledAt: sql`now()` }).where(and(sql`${outbox.id} = ${id}`, isNull(outbox.handledAt)));
}

/**
 * Relayed rows whose job has not finished after `olderThanMs`, oldest first from `afterId`:
 * their job may be waiting in a backlog, or lost with Redis's data.
 */
export async function listUnhandled(db: Db, olderThanMs: number, afterId: number, limit: number): Promise<Array<Pick<OutboxRow, 'id' | 'eventId' | 'type'>>> {
  return db
    .select({ id: outbox.id, eventId: outbox.eventId, type: outbox.type })
    .from(outbox)
    .where(
      and(
        sql`${outbox.relayedAt} is not null and ${outbox.handledAt} is null`,
        sql`${outbox.relayedAt} < now() - ${`${olderThanMs} milliseconds`}::interval`,
        sql`${outbox.id} > ${afterId}`,
      ),
    )
    .orderBy(asc(outbox.id))
    .limit(limit);
}

export async function listEventsOfAccount(db: Db, accountId: string): Promise<OutboxRow[]> {
  return db.select().from(outbox).where(sql`${outbox.accountId} = ${accountId}`).orderBy(asc(outbox.id));
}
