import { z } from 'zod';
import { isKnownCountry } from '../../lib/phone.js';
import { currencySchema } from '../../lib/money.js';
import { entitlementsSchema, trialEntitlementsExample } from '../catalog/entitlements.js';

export const accountIdSchema = z
  .string()
  .regex(/^acc_[0-9a-z]{26}$/, 'not an account id')
  .meta({ description: 'Account id', examples: ['acc_01kb2m3n4p5q6r7s8t9v0w1x2y'] });

export const accountParamsSchema = z.object({ accountId: accountIdSchema });

export const kycStatusSchema = z.enum(['pending', 'submitted', 'approved', 'rejected']);
export const accountStatusSchema = z
  .enum(['trial', 'pending_payment', 'active', 'past_due', 'limited'])
  .meta({ description: 'trial -> pending_payment (offline payment) -> active -> past_due -> limited' });

export const createAccountBodySchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    email: z.email().max(254),
    country: z
      .string()
      .trim()
      .toUpperCase()
      .refine(isKnownCountry, 'must be an ISO 3166-1 alpha-2 country code')
      .meta({ description: 'ISO 3166-1 alpha-2; India (IN) bills in INR, every other country in USD' }),
    testClockId: z
      .string()
      .regex(/^clk_[0-9a-z]{26}$/, 'not a test clock id')
      .optional()
      .meta({ description: 'Only with TEST_CLOCKS_ENABLED: the account lives on this test clock\'s time' }),
  })
  .meta({ id: 'CreateAccount', examples: [{ name: 'Acme Telecom', email: 'billing@acme.example', country: 'IN' }] });

export const accountSchema = z
  .object({
    id: accountIdSchema,
    name: z.string(),
    email: z.string(),
    country: z.string(),
    currency: currencySchema,
    status: accountStatusSchema,
    kyc: z.object({
      status: kycStatusSchema,
      reason: z.string().nullable(),
      updatedAt: z.date().nullable(),
    }),
    planId: z.string().meta({ description: 'The plan version whose entitlements apply now' }),
    testClockId: z.string().nullable(),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({
    id: 'Account',
    examples: [
      {
        id: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        name: 'Acme Telecom',
        email: 'billing@acme.example',
        country: 'IN',
        currency: 'INR',
        status: 'trial',
        kyc: { status: 'pending', reason: null, updatedAt: null },
        planId: 'plan_trial_v1',
        testClockId: null,
        createdAt: '2026-11-26T10:00:00.000Z',
        updatedAt: '2026-11-26T10:00:00.000Z',
      },
    ],
  });

export type AccountDto = z.infer<typeof accountSchema>;

export const accountListSchema = z
  .object({ data: z.array(accountSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'AccountList' });

export const setKycBodySchema = z
  .object({
    status: z.enum(['submitted', 'approved', 'rejected']),
    reason: z.string().trim().min(1).max(1000).optional().meta({ description: 'Required when rejecting' }),
  })
  .refine((b) => b.status !== 'rejected' || b.reason, { message: 'a rejection needs a reason', path: ['reason'] })
  .meta({ id: 'SetKycStatus', examples: [{ status: 'approved' }, { status: 'rejected', reason: 'PAN card unreadable' }] });

export const e164Schema = z
  .string()
  .trim()
  .max(16)
  .meta({ description: 'Phone number in E.164 form', examples: ['+919876543210'] });

export const whitelistedNumberSchema = z
  .object({ number: z.string(), createdAt: z.date() })
  .meta({ id: 'WhitelistedNumber', examples: [{ number: '+919876543210', createdAt: '2026-11-26T10:05:00.000Z' }] });

export const whitelistedNumberListSchema = z
  .object({ data: z.array(whitelistedNumberSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'WhitelistedNumberList' });

export const effectiveEntitlementsSchema = z
  .object({
    accountId: accountIdSchema,
    status: accountStatusSchema,
    plan: z.object({ id: z.string(), code: z.string(), version: z.number().int(), name: z.string() }),
    outbound: z
      .enum(['whitelisted_only', 'any', 'blocked'])
      .meta({ description: 'Where outbound calls and SMS may go now; blocked for a limited account' }),
    entitlements: entitlementsSchema,
    addOns: z.object({ whatsapp: z.boolean().meta({ description: 'The WhatsApp add-on is bought (plans where WhatsApp is an add-on)' }) }),
    whitelist: z.object({
      required: z.boolean(),
      limit: z.number().int().meta({ description: 'How many numbers a trial may whitelist' }),
      used: z.number().int(),
    }),
  })
  .meta({
    id: 'EffectiveEntitlements',
    examples: [
      {
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        status: 'trial',
        plan: { id: 'plan_trial_v1', code: 'trial', version: 1, name: 'Trial' },
        outbound: 'whitelisted_only',
        entitlements: trialEntitlementsExample,
        addOns: { whatsapp: false },
        whitelist: { required: true, limit: 5, used: 1 },
      },
    ],
  });

const line = (max: number) => z.string().trim().min(1).max(max);

export const billingProfileBodySchema = z
  .object({
    legalName: line(200).meta({ description: 'The registered legal name printed on tax invoices' }),
    address: z.object({
      line1: line(200),
      line2: line(200).nullish(),
      city: line(100),
      postalCode: line(12).meta({ description: 'India: the 6-digit PIN code' }),
    }),
    state: line(100).nullish().meta({
      description: 'India (required): the GST state code, e.g. `29` (Karnataka), `27` (Maharashtra); it decides the place of supply. Elsewhere: the state or region, if any',
    }),
    gstin: z.string().trim().max(20).nullish().meta({
      description: 'Indian businesses registered for GST: their 15-character GSTIN (its first two digits are the `state`); checked by format and check character',
    }),
  })
  .meta({
    id: 'SetBillingProfile',
    examples: [
      { legalName: 'Bharat Telecom Private Limited', address: { line1: '12, Nariman Point', city: 'Mumbai', postalCode: '400021' }, state: '27', gstin: '27AAJCP8025A1ZL' },
    ],
  });

export const billingProfileSchema = z
  .object({
    accountId: z.string(),
    legalName: z.string(),
    address: z.object({ line1: z.string(), line2: z.string().nullable(), city: z.string(), postalCode: z.string() }),
    state: z.object({ code: z.string(), name: z.string() }).nullable(),
    gstin: z.string().nullable(),
    taxTreatment: z
      .object({
        supplyType: z.enum(['intra_state', 'inter_state', 'export', 'foreign']).meta({
          description: '`intra_state`: the seller\'s state, CGST + SGST; `inter_state`: IGST; `export`: export of services at zero rate; `foreign`: the rate configured for the country',
        }),
        placeOfSupply: z.object({ code: z.string(), name: z.string() }),
        label: z.string().meta({ examples: ['CGST 9% + SGST 9%', 'IGST 18%'] }),
      })
      .meta({ description: 'How this account\'s invoices will be taxed from now on' }),
    updatedAt: z.date(),
  })
  .meta({
    id: 'BillingProfile',
    examples: [
      {
        accountId: 'acc_01kb2m3n4p5q6r7s8t9v0w1x2y',
        legalName: 'Bharat Telecom Private Limited',
        address: { line1: '12, Nariman Point', line2: null, city: 'Mumbai', postalCode: '400021' },
        state: { code: '27', name: 'Maharashtra' },
        gstin: '27AAJCP8025A1ZL',
        taxTreatment: { supplyType: 'inter_state', placeOfSupply: { code: '27', name: 'Maharashtra' }, label: 'IGST 18%' },
        updatedAt: '2026-12-02T10:00:00.000Z',
      },
    ],
  });

export type BillingProfileDto = z.infer<typeof billingProfileSchema>;
