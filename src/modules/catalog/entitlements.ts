import { z } from 'zod';

/**
 * What an account may do, one field per row of the brief's plan table. Stored on each plan
 * version as data, so a custom Enterprise plan is the same shape with other values.
 */
export const entitlementsSchema = z
  .object({
    exophones: z.object({
      limit: z.number().int().min(0).nullable().meta({ description: 'Production ExoPhones allowed; null means unlimited' }),
      trialNumbers: z.number().int().min(0).meta({ description: 'Shared trial numbers provided' }),
    }),
    numberWhitelisting: z.object({
      required: z.boolean().meta({ description: 'Outbound calls and SMS only to whitelisted numbers' }),
    }),
    voiceApi: z.enum(['whitelisted_only', 'full']),
    smsApi: z.enum(['whitelisted_only', 'full']),
    smsDltRequiredForIndia: z.boolean().meta({ description: 'SMS to Indian numbers needs DLT registration' }),
    whatsapp: z.enum(['not_available', 'add_on', 'included']),
    campaigns: z.enum(['not_available', 'basic', 'advanced', 'full_suite']),
    contactCenter: z.enum(['not_available', 'basic', 'full']),
    callRecording: z.object({
      retentionDays: z.number().int().min(0).max(3650),
      custom: z.boolean(),
    }),
    analytics: z.enum(['standard', 'advanced', 'custom_dashboards']),
    support: z.object({
      tier: z.enum(['email_only', 'email_chat', 'priority', 'dedicated_account_manager']),
      channels: z.array(z.enum(['email', 'chat', 'phone'])),
    }),
    sla: z.object({
      uptimePercent: z.number().min(0).max(100).nullable().meta({ description: 'null: no SLA' }),
      custom: z.boolean(),
    }),
    apiRateLimit: z.object({
      tier: z.enum(['standard', 'higher', 'custom']),
      requestsPerMinute: z.number().int().min(1),
    }),
    webhooks: z.enum(['standard', 'priority', 'guaranteed']),
  })
  .meta({ id: 'Entitlements' });

export type Entitlements = z.infer<typeof entitlementsSchema>;

/** The trial's entitlements, as seeded: used as the documentation example. */
export const trialEntitlementsExample: Entitlements = {
  exophones: { limit: 0, trialNumbers: 1 },
  numberWhitelisting: { required: true },
  voiceApi: 'whitelisted_only',
  smsApi: 'whitelisted_only',
  smsDltRequiredForIndia: true,
  whatsapp: 'not_available',
  campaigns: 'not_available',
  contactCenter: 'not_available',
  callRecording: { retentionDays: 7, custom: false },
  analytics: 'standard',
  support: { tier: 'email_only', channels: ['email'] },
  sla: { uptimePercent: null, custom: false },
  apiRateLimit: { tier: 'standard', requestsPerMinute: 200 },
  webhooks: 'standard',
};

/** Starter's entitlements, as seeded: the example of a paid plan. */
export const starterEntitlementsExample: Entitlements = {
  exophones: { limit: 5, trialNumbers: 0 },
  numberWhitelisting: { required: false },
  voiceApi: 'full',
  smsApi: 'full',
  smsDltRequiredForIndia: true,
  whatsapp: 'add_on',
  campaigns: 'basic',
  contactCenter: 'not_available',
  callRecording: { retentionDays: 30, custom: false },
  analytics: 'standard',
  support: { tier: 'email_chat', channels: ['email', 'chat'] },
  sla: { uptimePercent: 99.5, custom: false },
  apiRateLimit: { tier: 'standard', requestsPerMinute: 200 },
  webhooks: 'standard',
};
