import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { autoRechargeSettings, creditBalances, creditLedger } from '../../db/schema/index.js';
import type { Currency } from '../../lib/money.js';

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
          .returning({ balance: creditBalances.balance })
      : await db
          .insert(creditBalances)
          .values({ accountId: entry.accountId, currency: entry.currency, balance: entry.amount, updatedAt: entry.at })
          .onConflictDoUpdate({
            target: creditBalances.accountId,
            set: { balance: sql`${creditBalances.balance} + ${entry.amount}`, updatedAt: entry.at },
          })
          .returning({ balance: creditBalances.balance });
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
  return { balanceAfter: balance.balance };
}

export async function balanceOf(db: Db, accountId: string): Promise<number> {
  const [row] = await db.select({ balance: creditBalances.balance }).from(creditBalances).where(eq(creditBalances.accountId, accountId));
  return row?.balance ?? 0;
}

export async function upsertAutoRecharge(db: Db, row: typeof autoRechargeSettings.$inferInsert): Promise<void> {
  await db.insert(autoRechargeSettings).values(row).onConflictDoUpdate({ target: autoRechargeSettings.accountId, set: row });
}

export async function findAutoRecharge(db: Db, accountId: string) {
  const [row] = await db.select().from(autoRechargeSettings).where(eq(autoRechargeSettings.accountId, accountId));
  return row;
}

/** Auto-recharge charges this method from its next charge on. */
export async function setAutoRechargeMethod(db: Db, accountId: string, paymentMethodId: string, at: Date): Promise<void> {
  await db.update(autoRechargeSettings).set({ paymentMethodId, updatedAt: at }).where(eq(autoRechargeSettings.accountId, accountId));
}
