import { sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { DELIVERY_TABLES, HISTORY_TABLES, type HistoryTable, type Retention } from './retention.js';

export { DEFAULT_RETENTION, HISTORY_TABLES, parseRetention, type HistoryTable, type Retention } from './retention.js';

/**
 * Partitioned history (migrations 0026, 0027): the tables that grow with traffic are
 * range-partitioned by calendar month (UTC) of their time column (a delivery by its event's).
 * The workers make the months ahead and drop whole months past retention; nothing deletes rows
 * one by one.
 */

/** An expired month kept, and why: its own rows still owed, its outbox month still there, or webhook deliveries of its events pending. */
export interface HeldMonth {
  partition: string;
  reason: 'rows_still_owed' | 'outbox_month_kept' | 'webhook_deliveries_pending';
  /** How many rows hold it (null for outbox_month_kept). */
  rows: number | null;
  detail: string;
}

/**
 * Rows that keep their month from being dropped however old it is: an event not yet relayed or
 * whose job has not finished (something is still owed for it), a webhook delivery still being
 * retried (and its event's outbox month with it: dropExpiredHistory).
 */
const STILL_OWED: Partial<Record<HistoryTable, ReturnType<typeof sql>>> = {
  outbox: sql`relayed_at is null or handled_at is null`,
  webhook_deliveries: sql`status = 'pending'`,
};

/** The first row of a raw statement's answer. */
async function firstRow<T>(db: Db, query: ReturnType<typeof sql>): Promise<T> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows[0]!;
}

/** The first instant of the UTC month `offset` months from the one holding `at`. */
export function monthStart(at: Date, offset = 0): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + offset, 1));
}

/** Makes the month holding `now` and `ahead` months after it for every history table. Returns the partitions made or found. */
export async function ensureHistoryPartitions(db: Db, now: Date, ahead = 2, tables: readonly HistoryTable[] = HISTORY_TABLES): Promise<string[]> {
  const made: string[] = [];
  for (const table of tables) {
    for (let i = 0; i <= ahead; i++) {
      made.push(
        await db.transaction(async (tx) => {
          // Attaching waits for a lock on the table, and traffic queues behind a waiting lock:
          // give up after a second and try again on the next pass.
          await tx.execute(sql`set local lock_timeout = '1s'`);
          return (await firstRow<{ name: string }>(tx, sql`select billing_history_partition(${table}, ${monthStart(now, i).toISOString()}::timestamptz) as name`)).name;
        }),
      );
    }
  }
  return made;
}

/** The month partitions of a table, oldest first, with their bounds read from their names. */
export async function historyPartitions(db: Db, table: HistoryTable): Promise<Array<{ name: string; from: Date; to: Date }>> {
  const rows = (await db.execute(sql`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = ${table}::regclass`)) as unknown as { rows: Array<{ name: string }> };
  return rows.rows
    .flatMap(({ name }) => {
      const m = /_p(\d{4})_(\d{2})$/.exec(name);
      if (!m || !name.startsWith(`${table}_p`)) return [];
      const from = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
      return [{ name, from, to: monthStart(from, 1) }];
    })
    .sort((a, b) => a.from.getTime() - b.from.getTime());
}

/**
 * Drops every month that ended before retention's cutoff (the start of the month `keep`
 * months before the one holding `now`). A ledger month is summed per account into
 * credit_ledger_carried in the same transaction, so balance = carried + kept entries holds. A
 * month with rows still owed (STILL_OWED) is held, and so is a delivery month whose outbox
 * month is still there: its events could be dispatched again.
 */
export async function dropExpiredHistory(
  db: Db,
  now: Date,
  retention: Retention,
  tables: readonly HistoryTable[] = HISTORY_TABLES,
): Promise<{ dropped: string[]; held: HeldMonth[] }> {
  const dropped: string[] = [];
  const held: HeldMonth[] = [];
  for (const table of tables) {
    const keep = retention[table];
    if (keep === null) continue;
    const cutoff = monthStart(now, -keep);
    for (const part of await historyPartitions(db, table)) {
      if (part.to.getTime() > cutoff.getTime()) break;
      const done = await db.transaction(async (tx): Promise<HeldMonth | 'gone' | 'dropped'> => {
        await tx.execute(sql`set local lock_timeout = '1s'`);
        // One dropper per table at a time (the same lock as making months); another worker may have dropped it already.
        await tx.execute(sql`select pg_advisory_xact_lock(hashtext('billing_history_partition'), hashtext(${table}))`);
        if (!(await firstRow<{ exists: boolean }>(tx, sql`select to_regclass(${part.name}) is not null as exists`)).exists) return 'gone';
        if ((DELIVERY_TABLES as readonly string[]).includes(table)) {
          const outboxMonth = `outbox${part.name.slice(table.length)}`;
          if ((await firstRow<{ exists: boolean }>(tx, sql`select to_regclass(${outboxMonth}) is not null as exists`)).exists) return { partition: part.name, reason: 'outbox_month_kept', rows: null, detail: `${outboxMonth} is still kept` };
        }
        // The DROP needs this lock anyway; taken first, no row can reach the month between its sum (or its check) and its drop.
        await tx.execute(sql`lock table ${sql.identifier(table)} in access exclusive mode`);
        const owed = STILL_OWED[table];
        if (owed) {
          const { n } = await firstRow<{ n: number }>(tx, sql`select count(*)::int as n from ${sql.identifier(part.name)} where ${owed}`);
          if (n > 0) return { partition: part.name, reason: 'rows_still_owed', rows: n, detail: `${n} row(s) still owed` };
        }
        if (table === 'outbox') {
          // A webhook delivery still being retried builds its body from its event at each attempt.
          const { n } = await firstRow<{ n: number }>(
            tx,
            sql`select count(*)::int as n from webhook_deliveries
              where event_created_at >= ${part.from.toISOString()}::timestamptz and event_created_at < ${part.to.toISOString()}::timestamptz and status = 'pending'`,
          );
          if (n > 0) return { partition: part.name, reason: 'webhook_deliveries_pending', rows: n, detail: `${n} webhook delivery(ies) of its events still pending` };
        }
        if (table === 'credit_ledger') {
          await tx.execute(sql`
            insert into credit_ledger_carried (account_id, through, amount, entries)
            select account_id, ${part.to.toISOString()}::timestamptz, sum(amount), count(*) from ${sql.identifier(part.name)} group by account_id
            on conflict (account_id) do update set amount = credit_ledger_carried.amount + excluded.amount,
              entries = credit_ledger_carried.entries + excluded.entries, through = greatest(credit_ledger_carried.through, excluded.through)`);
        }
        await tx.execute(sql`drop table ${sql.identifier(part.name)}`);
        return 'dropped';
      });
      if (done === 'dropped') dropped.push(part.name);
      else if (done !== 'gone') held.push(done);
    }
  }
  return { dropped, held };
}

/**
 * One maintenance pass: months ahead made, expired months dropped (wall-clock months) or held
 * (why, in `held`), each table on its own: a table whose lock was not had in time does not hold the others back. Any
 * failure is thrown at the end, after every table had its turn.
 */
export async function maintainHistory(db: Db, now: Date, retention: Retention) {
  let partitions = 0;
  const dropped: string[] = [];
  const held: HeldMonth[] = [];
  const failed: string[] = [];
  for (const table of HISTORY_TABLES) {
    try {
      partitions += (await ensureHistoryPartitions(db, now, 2, [table])).length;
      const result = await dropExpiredHistory(db, now, retention, [table]);
      dropped.push(...result.dropped);
      held.push(...result.held);
    } catch (err) {
      failed.push(`${table}: ${(err as Error).message}`);
    }
  }
  if (failed.length) throw new Error(`history maintenance failed for ${failed.join('; ')} (dropped ${dropped.join(', ') || 'nothing'}); the next pass tries again`);
  return { partitions, dropped, held };
}
