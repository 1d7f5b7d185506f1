import { sql } from 'drizzle-orm';
import { bigint, check, integer, jsonb, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import type { Entitlements } from '../../modules/catalog/entitlements.js';

export const planKind = pgEnum('plan_kind', ['trial', 'standard', 'custom']);
export const planTier = pgEnum('plan_tier', ['trial', 'starter', 'growth', 'enterprise']);
export const currency = pgEnum('currency', ['INR', 'USD']);

/**
 * One row per plan version. A price or entitlement change inserts a new version and marks
 * the old one superseded; subscribers keep pointing at the version they bought.
 */
export const plans = pgTable(
  'plans',
  {
    id: text('id').primaryKey(),
    code: text('code').notNull(),
    version: integer('version').notNull(),
    kind: planKind('kind').notNull(),
    tier: planTier('tier').notNull(),
    name: text('name').notNull(),
    description: text('description').notNull().default(''),
    commitment: text('commitment', { enum: ['none', 'low', 'medium', 'custom'] }).notNull(),
    entitlements: jsonb('entitlements').$type<Entitlements>().notNull(),
    offeredToAccountId: text('offered_to_account_id'),
    supersededAt: timestamp('superseded_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('plans_code_version_key').on(t.code, t.version),
    uniqueIndex('plans_current_code_key').on(t.code).where(sql`${t.supersededAt} is null`),
    check('plans_custom_offer_check', sql`(${t.kind} = 'custom') = (${t.offeredToAccountId} is not null)`),
  ],
);

const money = (name: string) => bigint(name, { mode: 'number' });

export const planPrices = pgTable(
  'plan_prices',
  {
    planId: text('plan_id')
      .notNull()
      .references(() => plans.id),
    currency: currency('currency').notNull(),
    monthlyMinimum: money('monthly_minimum').notNull(),
    minInitialCredits: money('min_initial_credits').notNull(),
    pulseSeconds: integer('pulse_seconds').notNull(),
    perPulseRate: money('per_pulse_rate').notNull(),
    perSmsRate: money('per_sms_rate').notNull(),
    whatsappAddonMonthly: money('whatsapp_addon_monthly'),
  },
  (t) => [
    primaryKey({ columns: [t.planId, t.currency] }),
    check(
      'plan_prices_non_negative',
      sql`${t.monthlyMinimum} >= 0 and ${t.minInitialCredits} >= 0 and ${t.pulseSeconds} > 0 and ${t.perPulseRate} >= 0 and ${t.perSmsRate} >= 0 and coalesce(${t.whatsappAddonMonthly}, 0) >= 0`,
    ),
  ],
);

export const billingCycles = pgTable(
  'billing_cycles',
  {
    code: text('code', { enum: ['monthly', 'quarterly', 'annual'] }).primaryKey(),
    name: text('name').notNull(),
    months: integer('months').notNull(),
    discountBps: integer('discount_bps').notNull(),
    position: integer('position').notNull(),
  },
  (t) => [check('billing_cycles_discount_range', sql`${t.discountBps} between 0 and 10000 and ${t.months} > 0`)],
);
