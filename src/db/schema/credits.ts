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
    /** The sum of the account's active holds: available = balance - held, never below zero. */
    held: money('held').notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [check('credit_balances_non_negative', sql`${t.balance} >= 0`), check('credit_balances_held_within_balance', sql`${t.held} >= 0 and ${t.held} <= ${t.balance}`)],
);

/**
 * Credits reserved for a call or message while it runs. Granted only from available balance;
 * settled by the usage event that names it (the actual amount debited once, the rest freed),
 * released by the caller, or expired by the workers. The caller's reference (its call id)
 * makes a hold idempotent per account.
 */
export const creditHolds = pgTable(
  'credit_holds',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    reference: text('reference').notNull(),
    action: text('action', { enum: ['outbound_call', 'outbound_sms'] }).notNull(),
    destination: text('destination'),
    /** Pulses (a call) or SMS segments held so far. */
    units: integer('units').notNull(),
    /** The price of one unit when the hold was granted; extensions hold at the same price. */
    unitAmount: money('unit_amount').notNull(),
    /** Minor units held while active; what was held when it ended otherwise. */
    amount: money('amount').notNull(),
    currency: currency('currency').notNull(),
    status: text('status', { enum: ['active', 'settled', 'released', 'expired'] }).notNull(),
    ttlSeconds: integer('ttl_seconds').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** The usage event that settled it, and what that event debited. */
    usageEventId: text('usage_event_id'),
    settledAmount: money('settled_amount'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex('credit_holds_reference_key').on(t.accountId, t.reference),
    index('credit_holds_expiry_idx').on(t.expiresAt).where(sql`${t.status} = 'active'`),
    check('credit_holds_amount', sql`${t.amount} >= 0 and ${t.units} >= 0`),
  ],
);

/**
 * Low-balance and depletion alerts: the account's own thresholds (null: the configured
 * defaults) and whether each alert is out. An alert goes out once when the available balance
 * crosses below its line and is armed again only by credits that lift it back above.
 */
export const creditAlerts = pgTable('credit_alerts', {
  accountId: text('account_id')
    .primaryKey()
    .references(() => accounts.id),
  lowBalanceThreshold: money('low_balance_threshold'),
  forecastHorizonHours: integer('forecast_horizon_hours'),
  lowBalanceAlertedAt: timestamp('low_balance_alerted_at', { withTimezone: true }),
  /** The threshold the alert crossed: credits that lift available back to it arm the alert again. */
  lowBalanceAlertThreshold: money('low_balance_alert_threshold'),
  forecastAlertedAt: timestamp('forecast_alerted_at', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
});

/**
 * Append-only: every change of a balance, with a unique source key so nothing applies twice.
 * Partitioned by month of `created_at` (migration 0026, src/db/history.ts): keys carry the
 * month, and a trigger keeps a non-usage source key unique across months (usage entries are
 * unique through usage_events, checked under the account's lock).
 */
export const creditLedger = pgTable(
  'credit_ledger',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    kind: text('kind', { enum: ['upgrade', 'purchase', 'recharge', 'usage', 'adjustment', 'credit_note', 'refund'] }).notNull(),
    amount: money('amount').notNull(),
    currency: currency('currency').notNull(),
    balanceAfter: money('balance_after').notNull(),
    sourceKey: text('source_key').notNull(),
    description: text('description').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.id, t.createdAt] }),
    uniqueIndex('credit_ledger_source_key_month').on(t.sourceKey, t.createdAt),
    index('credit_ledger_account_idx').on(t.accountId, t.id),
    check('credit_ledger_balance_after', sql`${t.balanceAfter} >= 0`),
  ],
);

/**
 * What retention dropped of an account's ledger: the sum and count of its entries in the
 * dropped months, so balance = carried + the entries kept still holds.
 */
export const creditLedgerCarried = pgTable('credit_ledger_carried', {
  accountId: text('account_id')
    .primaryKey()
    .references(() => accounts.id),
  /** Entries before this instant are summed here, not kept. */
  through: timestamp('through', { withTimezone: true }).notNull(),
  amount: money('amount').notNull(),
  entries: bigint('entries', { mode: 'number' }).notNull(),
});

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
 * Every usage event rated within retention, by the caller's event id: a retried event finds
 * its first result here instead of debiting again. Partitioned by month of `created_at`; the
 * committer looks ids up in every kept month under the account's lock.
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
    /** The hold it settled, if any. */
    holdId: text('hold_id'),
    /** What a settled call cost beyond its hold and the balance: not debited, as nothing was left. */
    shortfall: money('shortfall').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.id, t.createdAt] }), index('usage_events_account_idx').on(t.accountId, t.createdAt)],
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
