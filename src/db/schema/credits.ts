import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';
import { currency } from './catalog.js';

const money = (name: string) => bigint(name, { mode: 'number' });

/** The balance of an account's credits; equals the sum of its ledger entries, never negative. */
export const creditBalances = pgTable(
  'credit_balances',
  {
    accountId: text('account_id')
      .primaryKey()
      .references(() => accounts.id),
    currency: currency('currency').notNull(),
    balance: money('balance').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [check('credit_balances_non_negative', sql`${t.balance} >= 0`)],
);

/** Append-only: every change of a balance, with a unique source key so nothing applies twice. */
export const creditLedger = pgTable(
  'credit_ledger',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    kind: text('kind', { enum: ['upgrade', 'purchase', 'recharge', 'usage', 'adjustment', 'credit_note', 'refund'] }).notNull(),
    amount: money('amount').notNull(),
    currency: currency('currency').notNull(),
    balanceAfter: money('balance_after').notNull(),
    sourceKey: text('source_key').notNull().unique(),
    description: text('description').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('credit_ledger_account_idx').on(t.accountId, t.id), check('credit_ledger_balance_after', sql`${t.balanceAfter} >= 0`)],
);

export const autoRechargeSettings = pgTable(
  'auto_recharge_settings',
  {
    accountId: text('account_id')
      .primaryKey()
      .references(() => accounts.id),
    enabled: boolean('enabled').notNull(),
    threshold: money('threshold').notNull(),
    amount: money('amount').notNull(),
    paymentMethodId: text('payment_method_id').notNull(),
    /** Failed recharges in a row; at the configured limit auto-recharge switches itself off. */
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    /** When the next recharge should run: set by a debit that crosses the threshold, or a retry. */
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
    /** Pre-debit notice (Indian e-mandates) for the recharge about to run. */
    noticeSentAt: timestamp('notice_sent_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [check('auto_recharge_threshold_below_amount', sql`${t.threshold} < ${t.amount} and ${t.threshold} >= 0`)],
);

/**
 * Every usage event ever rated, by the caller's event id: a retried event finds its first
 * result here instead of debiting again.
 */
export const usageEvents = pgTable(
  'usage_events',
  {
    /** The caller's event id; unique per account, so one account cannot claim another's ids. */
    id: text('id').notNull(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    type: text('type', { enum: ['voice_call', 'sms'] }).notNull(),
    /** Pulses for a call, segments for an SMS. */
    units: integer('units').notNull(),
    amount: money('amount').notNull(),
    status: text('status', { enum: ['debited', 'rejected'] }).notNull(),
    reason: text('reason'),
    balanceAfter: money('balance_after'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.id] }), index('usage_events_account_idx').on(t.accountId, t.createdAt)],
);

/** Production numbers an account bought; a number belongs to one account at a time. */
export const exophones = pgTable(
  'exophones',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    number: text('number').notNull(),
    purchasedAt: timestamp('purchased_at', { withTimezone: true }).notNull(),
    releasedAt: timestamp('released_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('exophones_live_number_key').on(t.number).where(sql`${t.releasedAt} is null`),
    index('exophones_account_idx').on(t.accountId),
  ],
);
