import { z } from 'zod';
import { amountInputSchema, currencySchema, minorUnitsSchema } from '../../lib/money.js';

export const creditAlertsSchema = z
  .object({
    lowBalanceThreshold: minorUnitsSchema.meta({ description: 'Available balance under which credits.low_balance is sent once (the account\'s own, or the default for its currency)' }),
    forecastHorizonHours: z.number().int().meta({ description: 'credits.depletion_forecast is sent once when credits would run out within this many hours at the current rate' }),
    lowBalanceAlerted: z.boolean().meta({ description: 'The low-balance alert is out; credits that lift available back above the threshold arm it again' }),
    forecastAlerted: z.boolean().meta({ description: 'The depletion forecast is out; the next purchase or recharge arms it again' }),
  })
  .meta({ id: 'CreditAlerts', examples: [{ lowBalanceThreshold: 50000, forecastHorizonHours: 168, lowBalanceAlerted: false, forecastAlerted: false }] });

export const creditAlertSettingsSchema = z
  .object({
    lowBalanceThreshold: amountInputSchema.nullable().meta({ description: 'Minor units; null: the default for the account\'s currency' }),
    forecastHorizonHours: z.number().int().min(1).max(24 * 90).nullable().meta({ description: 'Hours; null: the default' }),
  })
  .meta({ id: 'CreditAlertSettings', examples: [{ lowBalanceThreshold: 100000, forecastHorizonHours: 72 }] });

export const creditsSchema = z
  .object({
    accountId: z.string(),
    currency: currencySchema,
    balance: minorUnitsSchema,
    held: minorUnitsSchema.meta({ description: 'Reserved by active holds (calls and messages in progress)' }),
    available: minorUnitsSchema.meta({ description: 'balance - held: what new calls, holds and auto-recharge\'s threshold go by' }),
    autoRecharge: z
      .object({ enabled: z.boolean(), threshold: minorUnitsSchema, amount: minorUnitsSchema })
      .nullable(),
    alerts: creditAlertsSchema,
  })
  .meta({
    id: 'Credits',
    examples: [
      {
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        currency: 'INR',
        balance: 199940,
        held: 1200,
        available: 198740,
        autoRecharge: { enabled: true, threshold: 50000, amount: 200000 },
        alerts: { lowBalanceThreshold: 50000, forecastHorizonHours: 168, lowBalanceAlerted: false, forecastAlerted: false },
      },
    ],
  });

export const ledgerEntrySchema = z
  .object({
    id: z.number().int(),
    kind: z.enum(['upgrade', 'purchase', 'recharge', 'usage', 'adjustment', 'credit_note', 'refund']),
    amount: z.number().int().meta({ description: 'Signed, in minor units: credits positive, debits negative' }),
    currency: currencySchema,
    balanceAfter: minorUnitsSchema,
    sourceKey: z.string().meta({ description: 'What caused it (payment:<id>, usage:<event id>, adjustment:<id>); unique over the months of history kept' }),
    description: z.string(),
    createdAt: z.date(),
  })
  .meta({ id: 'LedgerEntry' });

export const ledgerPageSchema = z
  .object({ data: z.array(ledgerEntrySchema), nextCursor: z.string().nullable() })
  .meta({
    id: 'LedgerPage',
    examples: [
      {
        data: [
          { id: 2, kind: 'usage', amount: -60, currency: 'INR', balanceAfter: 199940, sourceKey: 'usage:call-8812', description: 'voice_call, 1 pulse', createdAt: '2026-11-26T10:05:00.000Z' },
          { id: 1, kind: 'upgrade', amount: 200000, currency: 'INR', balanceAfter: 200000, sourceKey: 'payment:pay_01kb2m3n4p5q6r7s8t9v0w1x2y', description: 'Initial credits, invoice INV/2627/0000001', createdAt: '2026-11-26T10:00:00.000Z' },
        ],
        nextCursor: null,
      },
    ],
  });

export const adjustmentBodySchema = z
  .object({
    amount: z
      .number()
      .int()
      .min(-1_000_000_000_000)
      .max(1_000_000_000_000)
      .refine((n) => n !== 0, 'must not be zero')
      .meta({ description: 'Signed minor units: positive credits, negative debits' }),
    reason: z.string().trim().min(3).max(500),
  })
  .meta({ id: 'CreditAdjustment', examples: [{ amount: 50000, reason: 'Goodwill credit for the 26 Nov outage' }] });

const eventId = z.string().min(1).max(100).regex(/^[\w.:-]+$/, 'letters, digits and . _ : -');
const accountId = z.string().regex(/^acc_[0-9a-z]{26}$/, 'not an account id');

export const holdIdSchema = z.string().regex(/^hold_[0-9a-z]{26}$/, 'not a hold id');
const holdId = holdIdSchema.optional().meta({ description: 'The hold taken when the call or message started: settled by this event (debited once, the rest freed)' });

export const usageEventSchema = z.discriminatedUnion('type', [
  z.object({ id: eventId, accountId, type: z.literal('voice_call'), durationSeconds: z.number().int().min(0).max(86_400), holdId }),
  z.object({ id: eventId, accountId, type: z.literal('sms'), segments: z.number().int().min(1).max(100), holdId }),
]);

export const usageBatchSchema = z
  .object({
    events: z
      .array(usageEventSchema)
      .min(1)
      .max(1000)
      .refine((events) => new Set(events.map((e) => e.id)).size === events.length, 'event ids must be unique within a batch'),
  })
  .meta({
    id: 'UsageBatch',
    examples: [
      {
        events: [
          { id: 'call-8812', accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', type: 'voice_call', durationSeconds: 61, holdId: 'hold_01kb2m3n4p5q6r7s8t9v0w1x2y' },
          { id: 'sms-4410', accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', type: 'sms', segments: 2 },
        ],
      },
    ],
  });

export type UsageBatch = z.infer<typeof usageBatchSchema>;

export const usageResultSchema = z
  .object({
    results: z.array(
      z.object({
        id: z.string(),
        accountId: z.string(),
        status: z.enum(['debited', 'rejected']),
        units: z.number().int().meta({ description: 'Pulses or SMS segments' }),
        amount: minorUnitsSchema,
        reason: z.enum(['insufficient_credits', 'account_limited', 'not_billable', 'account_not_found']).nullable(),
        holdId: z.string().nullable().meta({ description: 'The hold this event settled (or released, when rejected)' }),
        shortfall: minorUnitsSchema.meta({ description: 'A held call that outran its hold and the balance: the part of its price not covered (amount is what was debited)' }),
        duplicate: z.boolean().meta({ description: 'True when this id was rated before: the original result, nothing debited now' }),
      }),
    ),
    balances: z.array(z.object({ accountId: z.string(), currency: currencySchema, balance: minorUnitsSchema, held: minorUnitsSchema, available: minorUnitsSchema })),
  })
  .meta({
    id: 'UsageResult',
    examples: [
      {
        results: [
          { id: 'call-8812', accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', status: 'debited', units: 2, amount: 120, reason: null, holdId: 'hold_01kb2m3n4p5q6r7s8t9v0w1x2y', shortfall: 0, duplicate: false },
          { id: 'sms-4410', accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', status: 'debited', units: 2, amount: 50, reason: null, holdId: null, shortfall: 0, duplicate: false },
        ],
        balances: [{ accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y', currency: 'INR', balance: 199830, held: 0, available: 199830 }],
      },
    ],
  });

export type UsageResult = z.infer<typeof usageResultSchema>;

export const invariantReportSchema = z
  .object({
    accountsChecked: z.number().int(),
    violations: z.array(z.object({ accountId: z.string(), rule: z.string(), detail: z.string() })),
  })
  .meta({ id: 'InvariantReport', examples: [{ accountsChecked: 1200, violations: [] }] });

export { amountInputSchema };
