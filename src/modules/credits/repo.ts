import { and, eq, isNotNull, lte, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { accounts, autoRechargeSettings, creditAlerts, creditBalances, creditLedger, testClocks } from '../../db/schema/index.js';
import type { Currency } from '../../lib/money.js';
import { appendEvents } from '../events/repo.js';

export interface CreditEntry {
  accountId: string;
  currency: Currency;
  amount: number;
  kind: (typeof creditLedger.$inferInsert)['kind'];
  sourceKey: string;
  description: string;
  at: Date;
}

/**
 * Applies one ledger entry and moves the balance with it, in the caller's transaction. The
 * unique source key makes a second application fail rather than count twice; the balance
 * check keeps it from going below zero.
 */
export async function applyEntry(db: Db, entry: CreditEntry): Promise<{ balanceAfter: number }> {
  // Postgres checks the proposed row of an upsert before it sees the conflict, so a debit
  // (which needs an existing balance anyway) is a plain update.
  const [balance] =
    entry.amount < 0
      ? await db
          .update(creditBalances)
          .set({ balance: sql`${creditBalances.balance} + ${entry.amount}`, updatedAt: entry.at })
          .where(eq(creditBalances.accountId, entry.accountId))
          .returning({ balance: creditBalances.balance, held: creditBalances.held })
      : await db
          .insert(creditBalances)
          .values({ accountId: entry.accountId, currency: entry.currency, balance: entry.amount, updatedAt: entry.at })
          .onConflictDoUpdate({
            target: creditBalances.accountId,
            set: { balance: sql`${creditBalances.balance} + ${entry.amount}`, updatedAt: entry.at },
          })
          .returning({ balance: creditBalances.balance, held: creditBalances.held });
  if (!balance) throw new Error(`account ${entry.accountId} has no credit balance to debit`);
  await db.insert(creditLedger).values({
    accountId: entry.accountId,
    kind: entry.kind,
    amount: entry.amount,
    currency: entry.currency,
    balanceAfter: balance.balance,
    sourceKey: entry.sourceKey,
    description: entry.description,
    createdAt: entry.at,
  });
  if (entry.amount > 0) {
    // Credits arm the alerts again: the low-balance one once available is back at its line,
    // the depletion forecast at once (the next sweep forecasts afresh).
    const available = balance.balance - balance.held;
    await db
      .update(creditAlerts)
      .set({
        lowBalanceAlertedAt: sql`case when ${creditAlerts.lowBalanceAlertThreshold} <= ${available} then null else ${creditAlerts.lowBalanceAlertedAt} end`,
        forecastAlertedAt: null,
        updatedAt: entry.at,
      })
      .where(and(eq(creditAlerts.accountId, entry.accountId), or(isNotNull(creditAlerts.lowBalanceAlertedAt), isNotNull(creditAlerts.forecastAlertedAt))));
  }
  return { balanceAfter: balance.balance };
}

/**
 * A debit outside usage (an ops adjustment) that leaves available under the account's
 * low-balance line sends credits.low_balance, once, as usage would. `defaultLine` is the
 * line of accounts without their own.
 */
export async function alertIfLow(db: Db, account: { id: string; currency: Currency }, defaultLine: number, at: Date): Promise<void> {
  const { balance, held, available } = await balanceOf(db, account.id);
  const result = (await db.execute(sql`
    with line as (select coalesce((select low_balance_threshold from credit_alerts where account_id = ${account.id}), ${defaultLine}::bigint) as v)
    insert into credit_alerts (account_id, low_balance_alerted_at, low_balance_alert_threshold, updated_at)
    select ${account.id}, ${at.toISOString()}::timestamptz, line.v, ${at.toISOString()}::timestamptz from line where ${available}::bigint < line.v
    on conflict (account_id) do update set low_balance_alerted_at = excluded.low_balance_alerted_at,
      low_balance_alert_threshold = excluded.low_balance_alert_threshold, updated_at = excluded.updated_at
      where credit_alerts.low_balance_alerted_at is null
    returning low_balance_alert_threshold`)) as unknown as { rows: Array<{ low_balance_alert_threshold: string | number }> };
  const crossed = result.rows[0];
  if (!crossed) return;
  await appendEvents(db, at, [
    {
      type: 'credits.low_balance',
      accountId: account.id,
      payload: { accountId: account.id, balance, held, available, threshold: Number(crossed.low_balance_alert_threshold), currency: account.currency },
    },
  ]);
}

/** The balance and what active holds reserve of it: available is balance - held. */
export async function balanceOf(db: Db, accountId: string): Promise<{ balance: number; held: number; available: number }> {
  const [row] = await db.select({ balance: creditBalances.balance, held: creditBalances.held }).from(creditBalances).where(eq(creditBalances.accountId, accountId));
  const balance = row?.balance ?? 0;
  const held = row?.held ?? 0;
  return { balance, held, available: balance - held };
}

export async function upsertAutoRecharge(db: Db, row: typeof autoRechargeSettings.$inferInsert): Promise<void> {
  await db.insert(autoRechargeSettings).values(row).onConflictDoUpdate({ target: autoRechargeSettings.accountId, set: row });
}

export type AutoRechargeRow = typeof autoRechargeSettings.$inferSelect;

export async function findAutoRecharge(db: Db, accountId: string, opts: { forUpdate?: boolean } = {}): Promise<AutoRechargeRow | undefined> {
  const query = db.select().from(autoRechargeSettings).where(eq(autoRechargeSettings.accountId, accountId));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  return row;
}

export async function updateAutoRecharge(
  db: Db,
  accountId: string,
  set: Partial<Pick<AutoRechargeRow, 'enabled' | 'nextAttemptAt' | 'noticeSentAt' | 'consecutiveFailures' | 'updatedAt'>>,
): Promise<void> {
  await db.update(autoRechargeSettings).set(set).where(eq(autoRechargeSettings.accountId, accountId));
}

/** One more failed recharge in a row; the settings after it. */
export async function countRechargeFailure(db: Db, accountId: string, at: Date): Promise<AutoRechargeRow> {
  const [row] = await db
    .update(autoRechargeSettings)
    .set({ consecutiveFailures: sql`${autoRechargeSettings.consecutiveFailures} + 1`, updatedAt: at })
    .where(eq(autoRechargeSettings.accountId, accountId))
    .returning();
  return row!;
}

/** Auto-recharges due at `now` on each account's own clock (its test clock's, or the real one). */
export async function listDueRecharges(db: Db, now: Date, limit: number): Promise<Array<{ accountId: string; dueAt: Date }>> {
  const at = sql`coalesce(${testClocks.frozenTime}, ${now.toISOString()}::timestamptz)`;
  const rows = await db
    .select({ accountId: autoRechargeSettings.accountId, dueAt: autoRechargeSettings.nextAttemptAt })
    .from(autoRechargeSettings)
    .innerJoin(accounts, eq(accounts.id, autoRechargeSettings.accountId))
    .leftJoin(testClocks, eq(testClocks.id, accounts.testClockId))
    .where(and(eq(autoRechargeSettings.enabled, true), isNotNull(autoRechargeSettings.nextAttemptAt), lte(autoRechargeSettings.nextAttemptAt, at)))
    .limit(limit);
  return rows.map((r) => ({ accountId: r.accountId, dueAt: r.dueAt! }));
}

/** Auto-recharge charges this method from its next charge on; a pre-debit notice sent for another does not cover it. */
export async function setAutoRechargeMethod(db: Db, accountId: string, paymentMethodId: string, at: Date): Promise<void> {
  const same = sql`${autoRechargeSettings.paymentMethodId} = ${paymentMethodId}`;
  await db
    .update(autoRechargeSettings)
    .set({ paymentMethodId, noticeSentAt: sql`case when ${same} then ${autoRechargeSettings.noticeSentAt} end`, updatedAt: at }).where(eq(autoRechargeSettings.accountId, accountId));
}
