import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';
import { paymentMethodType } from './billing.js';
import { currency } from './catalog.js';

export const paymentStatus = pgEnum('payment_status', ['processing', 'unknown', 'succeeded', 'failed', 'awaiting_confirmation']);

/**
 * One attempt to take money. Its id is the provider's idempotency key, so a retry of the
 * same attempt can never charge twice. `request` keeps what the money is for (the upgrade
 * asked for), so an unknown or offline payment can complete it later.
 */
export const payments = pgTable(
  'payments',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    purpose: text('purpose', { enum: ['upgrade', 'renewal', 'purchase', 'recharge'] }).notNull(),
    status: paymentStatus('status').notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: currency('currency').notNull(),
    methodType: paymentMethodType('method_type').notNull(),
    paymentMethodId: text('payment_method_id').notNull(),
    invoiceId: text('invoice_id'),
    request: jsonb('request').$type<Record<string, unknown>>().notNull(),
    providerReference: text('provider_reference'),
    failureCode: text('failure_code'),
    failureMessage: text('failure_message'),
    offlineReference: text('offline_reference'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
    /**
     * Wall-clock time of the last change, set by Postgres. `updatedAt` is on the account's
     * clock, which a test clock freezes; how long a charge has been in flight is real time.
     */
    touchedAt: timestamp('touched_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('payments_account_idx').on(t.accountId, t.id),
    // At most one upgrade payment in flight per account, and one awaiting a wire transfer or
    // cheque: concurrent upgrades cannot both charge. (A card payment of an awaited upgrade
    // invoice may run beside the awaited one: whichever pays, the other is superseded.)
    uniqueIndex('payments_one_upgrade_in_flight')
      .on(t.accountId)
      .where(sql`${t.purpose} = 'upgrade' and ${t.status} in ('processing', 'unknown')`),
    uniqueIndex('payments_one_upgrade_awaiting')
      .on(t.accountId)
      .where(sql`${t.purpose} = 'upgrade' and ${t.status} = 'awaiting_confirmation'`),
    // At most one charge in flight per invoice: a customer paying it and a dunning retry cannot both charge.
    uniqueIndex('payments_one_in_flight_per_invoice')
      .on(t.invoiceId)
      .where(sql`${t.invoiceId} is not null and ${t.status} in ('processing', 'unknown')`),
    // At most one auto-recharge in flight per account, whatever runs it.
    uniqueIndex('payments_one_open_recharge')
      .on(t.accountId)
      .where(sql`${t.purpose} = 'recharge' and ${t.status} in ('processing', 'unknown')`),
  ],
);

/**
 * The sandbox provider's own ledger of charges: what a real gateway would hold on its side.
 * Keyed by our idempotency key, so a repeated charge returns the first result.
 */
export const sandboxCharges = pgTable('sandbox_charges', {
  idempotencyKey: text('idempotency_key').primaryKey(),
  id: text('id').notNull().unique(),
  amount: bigint('amount', { mode: 'number' }).notNull(),
  currency: text('currency').notNull(),
  method: text('method').notNull(),
  outcome: text('outcome', { enum: ['succeeded', 'failed'] }).notNull(),
  failureCode: text('failure_code'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  /** The card token, VPA or bank code charged (the sandbox's test values decide its refunds too). */
  instrument: text('instrument'),
});

/**
 * The sandbox provider's vault of saved methods: what a real gateway keeps on its side. Our
 * payment_methods hold only its reference; the card token, VPA or bank code stays here.
 */
export const sandboxPaymentMethods = pgTable('sandbox_payment_methods', {
  reference: text('reference').primaryKey(),
  /** Our payment method id: a repeated save returns the first reference. */
  idempotencyKey: text('idempotency_key').notNull().unique(),
  type: text('type', { enum: ['card', 'upi', 'netbanking'] }).notNull(),
  /** The card token, VPA or bank code as given. */
  instrument: text('instrument').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});
