import { z } from 'zod';
import { currencySchema, minorUnitsSchema } from '../../lib/money.js';
import { e164Schema } from '../accounts/schemas.js';
import { holdIdSchema } from '../credits/schemas.js';
import { holdReasons } from './domain.js';

const reference = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\w.:-]+$/, 'letters, digits and . _ : -')
  .meta({ description: 'The caller\'s own id for the call or message (its call id): the same reference holds once' });
const units = (what: string) => z.number().int().min(1).max(10_000).meta({ description: what });
const ttlSeconds = z.number().int().min(10).max(86_400).meta({ description: 'Seconds until the hold expires and is released, unless settled, extended or released first' });

export const holdTermsSchema = z
  .object({
    reference,
    units: units('Pulses (a call) or SMS segments to hold; 1 unless given').optional(),
    ttlSeconds: ttlSeconds.optional().meta({ description: 'Seconds until the hold expires unless settled, extended or released; HOLD_DEFAULT_TTL_SECONDS (an hour) unless given' }),
  })
  .meta({ id: 'HoldTerms', examples: [{ reference: 'call-8812', units: 2, ttlSeconds: 600 }] });

export const holdRequestSchema = z
  .object({
    action: z.enum(['outbound_call', 'outbound_sms']),
    destination: e164Schema.meta({ description: 'The number called or texted (E.164)' }),
    reference,
    units: units('Pulses (a call) or SMS segments to hold; 1 unless given').optional(),
    ttlSeconds: ttlSeconds.optional(),
  })
  .meta({ id: 'HoldRequest', examples: [{ action: 'outbound_call', destination: '+919876543210', reference: 'call-8812', units: 2, ttlSeconds: 600 }] });

export const holdSchema = z
  .object({
    id: z.string(),
    accountId: z.string(),
    reference: z.string(),
    action: z.enum(['outbound_call', 'outbound_sms']),
    destination: z.string().nullable(),
    units: z.number().int().meta({ description: 'Pulses or segments held (with extensions)' }),
    amount: minorUnitsSchema.meta({ description: 'Held while active; what was held when it ended otherwise' }),
    currency: currencySchema,
    status: z.enum(['active', 'settled', 'released', 'expired']),
    expiresAt: z.date(),
    usageEventId: z.string().nullable().meta({ description: 'The usage event that settled it' }),
    settledAmount: minorUnitsSchema.nullable().meta({ description: 'What the settling event debited' }),
    createdAt: z.date(),
  })
  .meta({
    id: 'Hold',
    examples: [
      {
        id: 'hold_01kb2m3n4p5q6r7s8t9v0w1x2y',
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        reference: 'call-8812',
        action: 'outbound_call',
        destination: '+919876543210',
        units: 2,
        amount: 120,
        currency: 'INR',
        status: 'active',
        expiresAt: '2026-11-26T10:15:00.000Z',
        usageEventId: null,
        settledAmount: null,
        createdAt: '2026-11-26T10:05:00.000Z',
      },
    ],
  });

export const holdResultSchema = z
  .object({
    granted: z.boolean(),
    reason: z.enum(holdReasons).nullable().meta({ description: 'Why not: the same codes as authorize' }),
    detail: z.string().nullable(),
    hold: holdSchema.nullable().meta({ description: 'The hold (null when refused)' }),
    duplicate: z.boolean().meta({ description: 'True when this reference held before: the first hold, as it is now' }),
  })
  .meta({
    id: 'HoldResult',
    examples: [{ granted: false, reason: 'insufficient_credits', detail: 'The available balance (balance less holds) does not cover what is asked', hold: null, duplicate: false }],
  });

export const extendRequestSchema = z
  .object({
    units: units('Pulses or segments to add'),
    ttlSeconds: ttlSeconds.optional().meta({ description: 'Expire no sooner than this many seconds from now; the hold\'s own time to live unless given' }),
  })
  .meta({ id: 'HoldExtension', examples: [{ units: 1 }] });

export const holdParamsSchema = z.object({ holdId: holdIdSchema });
