import { sql } from 'drizzle-orm';
import { bigint, boolean, check, customType, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { Supply, TaxAmounts } from '../../modules/billing/tax.js';
import { accounts } from './accounts.js';
import { currency, plans } from './catalog.js';

const money = (name: string) => bigint(name, { mode: 'number' });

export const subscriptionStatus = pgEnum('subscription_status', ['active', 'past_due', 'cancelled']);
export const paymentMethodType = pgEnum('payment_method_type', ['card', 'upi', 'netbanking', 'wire_transfer', 'cheque']);

/** The paid plan of an account; at most one that is not cancelled. */
export const subscriptions = pgTable(
  'subscriptions',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id),
    billingCycle: text('billing_cycle', { enum: ['monthly', 'quarterly', 'annual'] }).notNull(),
    status: subscriptionStatus('status').notNull(),
    whatsappAddon: boolean('whatsapp_addon').notNull().default(false),
    /** Periods are anchored here (the upgrade instant). */
    anchorAt: timestamp('anchor_at', { withTimezone: true }).notNull(),
    currentPeriodStart: timestamp('current_period_start', { withTimezone: true }).notNull(),
    currentPeriodEnd: timestamp('current_period_end', { withTimezone: true }).notNull(),
    /** Months from the anchor to the current period end: the next end is anchor + this + cycle. */
    monthsElapsed: integer('months_elapsed').notNull(),
    paymentMethodId: text('payment_method_id').notNull(),
    /** Applied at the next renewal, then cleared. */
    scheduledPlanId: text('scheduled_plan_id'),
    scheduledBillingCycle: text('scheduled_billing_cycle', { enum: ['monthly', 'quarterly', 'annual'] }),
    cancelAtPeriodEnd: boolean('cancel_at_period_end').notNull().default(false),
    /** Pre-debit notice (Indian e-mandates): the period end it announced, and when it went out. */
    renewalNoticeFor: timestamp('renewal_notice_for', { withTimezone: true }),
    renewalNoticeAt: timestamp('renewal_notice_at', { withTimezone: true }),
    endedAt: timestamp('ended_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex('subscriptions_one_live_per_account').on(t.accountId).where(sql`${t.status} <> 'cancelled'`),
    index('subscriptions_period_end_idx').on(t.currentPeriodEnd),
  ],
);

/** Saved payment instruments: provider tokens and references, never card numbers. */
export const paymentMethods = pgTable(
  'payment_methods',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    type: paymentMethodType('type').notNull(),
    /**
     * card, UPI, net banking: the provider's reusable reference to the saved method (never a
     * card token or a full VPA); offline: null.
     */
    reference: text('reference'),
    /** Safe to show: the card brand, the masked VPA (ra***@okhdfc), the bank code. */
    label: text('label'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** Card: the last four digits the gateway reports; null for other methods. */
    last4: text('last4'),
    /** Renewals and auto-recharge charge the account's default method (one at most). */
    isDefault: boolean('is_default').notNull().default(false),
    status: text('status', { enum: ['active', 'removed'] }).notNull().default('active'),
    removedAt: timestamp('removed_at', { withTimezone: true }),
    /**
     * Indian e-mandate of a card or UPI method: the most one unattended charge may take (null:
     * the configured cap; above the cap only when the customer authenticated it) and when the
     * mandate ends (null: no end). Null on other methods.
     */
    mandateMaxAmount: bigint('mandate_max_amount', { mode: 'number' }),
    mandateValidUntil: timestamp('mandate_valid_until', { withTimezone: true }),
  },
  (t) => [
    index('payment_methods_account_idx').on(t.accountId),
    uniqueIndex('payment_methods_one_default').on(t.accountId).where(sql`${t.isDefault} and ${t.status} = 'active'`),
  ],
);

export const invoiceStatus = pgEnum('invoice_status', ['open', 'paid', 'void']);

export const invoices = pgTable(
  'invoices',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    subscriptionId: text('subscription_id'),
    /** Consecutive and gapless per financial year: INV/2627/0000001 (INV-2026-27-000001 before GST Rule 46's 16 characters). */
    number: text('number').notNull().unique(),
    financialYear: text('financial_year').notNull(),
    sequence: integer('sequence').notNull(),
    status: invoiceStatus('status').notNull(),
    currency: currency('currency').notNull(),
    subtotal: money('subtotal').notNull(),
    discountTotal: money('discount_total').notNull(),
    taxLabel: text('tax_label').notNull(),
    taxRateBps: integer('tax_rate_bps').notNull(),
    taxAmount: money('tax_amount').notNull(),
    total: money('total').notNull(),
    planId: text('plan_id').notNull(),
    billingCycle: text('billing_cycle', { enum: ['monthly', 'quarterly', 'annual'] }).notNull(),
    periodStart: timestamp('period_start', { withTimezone: true }).notNull(),
    periodEnd: timestamp('period_end', { withTimezone: true }).notNull(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    paidAt: timestamp('paid_at', { withTimezone: true }),
    kind: text('kind', { enum: ['upgrade', 'renewal', 'credits'] }).notNull().default('upgrade'),
    /** Dunning: charge attempts made and when the next one is due (null: none planned). */
    attemptCount: integer('attempt_count').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }),
    /**
     * An open renewal invoice that cannot be charged without the customer: why (above the
     * e-mandate, the mandate expired, no method). It waits for POST /v1/invoices/{id}/pay
     * under the dunning schedule; null once paid or charged.
     */
    actionRequired: text('action_required', { enum: ['above_mandate', 'mandate_expired', 'no_method'] }),
    /** What credit notes took off this invoice, tax included: an open invoice is due `total - credited_total`. */
    creditedTotal: money('credited_total').notNull().default(0),
    /** The tax split (CGST + SGST, IGST, ...), each rounded per line; null on invoices from before it was kept. */
    taxComponents: jsonb('tax_components').$type<TaxAmounts['components']>(),
    /** The tax invoice's parties, place of supply and terms as they were when it was issued. */
    supply: jsonb('supply').$type<Supply>(),
  },
  (t) => [
    uniqueIndex('invoices_fy_sequence_key').on(t.financialYear, t.sequence),
    // One invoice per subscription and period: a renewal that runs twice cannot bill twice.
    uniqueIndex('invoices_subscription_period_key').on(t.subscriptionId, t.periodStart),
    index('invoices_next_attempt_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'open' and ${t.nextAttemptAt} is not null`),
    index('invoices_account_idx').on(t.accountId, t.id),
    check('invoices_total_check', sql`${t.total} = ${t.subtotal} + ${t.taxAmount} and ${t.total} >= 0`),
  ],
);

export const invoiceLines = pgTable(
  'invoice_lines',
  {
    invoiceId: text('invoice_id')
      .notNull()
      .references(() => invoices.id),
    position: integer('position').notNull(),
    kind: text('kind', { enum: ['plan_fee', 'whatsapp_addon', 'credits'] }).notNull(),
    description: text('description').notNull(),
    quantity: integer('quantity').notNull(),
    unitAmount: money('unit_amount').notNull(),
    grossAmount: money('gross_amount').notNull(),
    discountAmount: money('discount_amount').notNull(),
    amount: money('amount').notNull(),
  },
  (t) => [uniqueIndex('invoice_lines_position_key').on(t.invoiceId, t.position)],
);

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * The PDF of a document (an invoice, a credit note), rendered once and kept: every download
 * returns these bytes, whatever changes later in the code, the fonts or the account.
 */
export const documents = pgTable('documents', {
  /** The invoice's or credit note's id. */
  id: text('id').primaryKey(),
  pdf: bytea('pdf').notNull(),
  /** Hex SHA-256 of the bytes: the ETag. */
  sha256: text('sha256').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

/** One row per financial year; incremented inside the invoice's transaction, so gapless. */
export const invoiceNumberSequences = pgTable('invoice_number_sequences', {
  financialYear: text('financial_year').primaryKey(),
  lastSequence: integer('last_sequence').notNull(),
});
