import { bigint, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { Supply, TaxAmounts } from '../../modules/billing/tax.js';
import { accounts } from './accounts.js';
import { invoices } from './billing.js';
import { currency } from './catalog.js';
import { payments } from './payments.js';

const money = (name: string) => bigint(name, { mode: 'number' });

/**
 * Credit notes (CGST Act s.34): a reduction of an issued invoice, with its own gapless series
 * per financial year (CN/2627/0000001) and the invoice's tax reversed in proportion.
 */
export const creditNotes = pgTable(
  'credit_notes',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    invoiceId: text('invoice_id')
      .notNull()
      .references(() => invoices.id),
    number: text('number').notNull().unique(),
    financialYear: text('financial_year').notNull(),
    sequence: integer('sequence').notNull(),
    reason: text('reason').notNull(),
    /** How it is settled: money back to the original method, credits in the ledger, or less due on an open invoice. */
    settlement: text('settlement', { enum: ['refund', 'credits', 'reduce_due'] }).notNull(),
    currency: currency('currency').notNull(),
    /** Taxable value credited. */
    subtotal: money('subtotal').notNull(),
    taxAmount: money('tax_amount').notNull(),
    taxComponents: jsonb('tax_components').$type<TaxAmounts['components']>().notNull(),
    total: money('total').notNull(),
    /** The invoice lines credited: their position on the invoice, and the taxable value taken off each. */
    lines: jsonb('lines').$type<Array<{ position: number; kind: string; description: string; amount: number }>>().notNull(),
    /** The invoice's parties and place of supply, as on the invoice. */
    supply: jsonb('supply').$type<Supply>(),
    /** `apiKeyId:Idempotency-Key` of the request that issued it: a retry finds it instead of issuing another. */
    requestKey: text('request_key').unique(),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('credit_notes_fy_sequence_key').on(t.financialYear, t.sequence), index('credit_notes_invoice_idx').on(t.invoiceId)],
);

/**
 * Money returned to the method that paid (through the gateway, under the refund's id as its
 * idempotency key): processing until the gateway answers, unknown when the answer was lost.
 */
export const refunds = pgTable(
  'refunds',
  {
    id: text('id').primaryKey(),
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    creditNoteId: text('credit_note_id')
      .notNull()
      .references(() => creditNotes.id),
    paymentId: text('payment_id')
      .notNull()
      .references(() => payments.id),
    amount: money('amount').notNull(),
    currency: currency('currency').notNull(),
    status: text('status', { enum: ['processing', 'succeeded', 'failed', 'unknown'] }).notNull(),
    providerReference: text('provider_reference'),
    failureCode: text('failure_code'),
    failureMessage: text('failure_message'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
    /** Real time of the last change: the reconciliation sweep looks at refunds untouched for a while. */
    touchedAt: timestamp('touched_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('refunds_one_per_credit_note').on(t.creditNoteId), index('refunds_unresolved_idx').on(t.touchedAt)],
);

/** The sandbox gateway's refunds, keyed by our refund id: a repeated refund answers the first result. */
export const sandboxRefunds = pgTable('sandbox_refunds', {
  idempotencyKey: text('idempotency_key').primaryKey(),
  id: text('id').notNull().unique(),
  chargeId: text('charge_id').notNull(),
  amount: money('amount').notNull(),
  outcome: text('outcome', { enum: ['succeeded', 'failed'] }).notNull(),
  failureCode: text('failure_code'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});
