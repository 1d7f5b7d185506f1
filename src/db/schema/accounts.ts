import { sql } from 'drizzle-orm';
import { check, index, jsonb, pgEnum, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import type { BillingProfile } from '../../modules/billing/tax.js';
import { currency, plans } from './catalog.js';

export const accountStatus = pgEnum('account_status', ['trial', 'pending_payment', 'active', 'past_due', 'limited']);
export const kycStatus = pgEnum('kyc_status', ['pending', 'submitted', 'approved', 'rejected']);

/** Stripe-style test clocks: frozen time that a caller advances to watch renewals happen. */
export const testClocks = pgTable('test_clocks', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  frozenTime: timestamp('frozen_time', { withTimezone: true }).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

export const accounts = pgTable(
  'accounts',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    email: text('email').notNull(),
    country: text('country').notNull(),
    currency: currency('currency').notNull(),
    status: accountStatus('status').notNull().default('trial'),
    kycStatus: kycStatus('kyc_status').notNull().default('pending'),
    kycReason: text('kyc_reason'),
    kycUpdatedAt: timestamp('kyc_updated_at', { withTimezone: true }),
    /** The plan version whose entitlements apply now (the trial plan until an upgrade). */
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id),
    /** DLT registration (India's SMS rules): SMS to Indian numbers need it. */
    dltEntityId: text('dlt_entity_id'),
    /** When the account became past_due; authorization allows a grace period from then. */
    pastDueSince: timestamp('past_due_since', { withTimezone: true }),
    /** Set only when test clocks are enabled: the account lives on that clock's time. */
    testClockId: text('test_clock_id').references(() => testClocks.id),
    /** Legal name, address, state and GSTIN for tax invoices; null until the customer gives them. */
    billingProfile: jsonb('billing_profile').$type<BillingProfile>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    index('accounts_email_idx').on(t.email),
    check('accounts_country_check', sql`${t.country} ~ '^[A-Z]{2}$'`),
  ],
);

export const whitelistedNumbers = pgTable(
  'whitelisted_numbers',
  {
    accountId: text('account_id')
      .notNull()
      .references(() => accounts.id),
    number: text('number').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.number] }),
    check('whitelisted_numbers_e164', sql`${t.number} ~ '^\\+[1-9][0-9]{6,14}$'`),
  ],
);
