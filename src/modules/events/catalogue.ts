import { z } from 'zod';

const id = (prefix: string) => z.string().regex(new RegExp(`^${prefix}_`));
const accountId = id('acc');
const money = z.number().int().meta({ description: 'Minor units' });
const currency = z.enum(['INR', 'USD']);
const iso = z.string().meta({ description: 'ISO 8601 instant' });
const subscriptionRef = { accountId, subscriptionId: id('sub') };
const paymentRef = { accountId, paymentId: id('pay') };
const purpose = z.enum(['upgrade', 'renewal', 'purchase', 'recharge']).meta({ description: 'What the payment is for' });
const methodType = z.enum(['card', 'upi', 'netbanking', 'wire_transfer', 'cheque']);

/**
 * Every event the service emits, with the schema of its `data`. Events are written to the
 * outbox in the transaction of their change, listed by GET /v1/events, and sent to webhooks
 * as `{type, timestamp, data}`; the OpenAPI document's `webhooks` section is built from here.
 * Objects are open: new fields may be added, none removed or changed.
 */
export const eventCatalogue = {
  'account.created': { summary: 'A trial account was created', data: { accountId, status: z.literal('trial') } },
  'account.upgraded': {
    summary: 'The account is on a paid plan: payment received, subscription started',
    data: { ...paymentRef, subscriptionId: id('sub'), invoiceId: id('inv'), planId: z.string(), billingCycle: z.string(), from: z.string() },
  },
  'account.upgrade_pending_payment': {
    summary: 'An upgrade by wire transfer or cheque waits for the money',
    data: { ...paymentRef, invoiceId: id('inv'), planId: z.string(), methodType: z.string(), dueAt: iso },
  },
  'account.limited': { summary: 'No outbound calls or SMS: cancelled, or renewal payments exhausted', data: { ...subscriptionRef, reason: z.enum(['cancelled', 'dunning_exhausted']) } },
  'payment.succeeded': {
    summary: 'Money was taken (or, for a wire transfer or cheque, recorded by ops)',
    data: { ...paymentRef, amount: money, currency, purpose, methodType, invoiceId: id('inv').optional(), subscriptionId: id('sub').optional() },
  },
  'payment.failed': {
    summary: 'A charge was declined',
    data: { ...paymentRef, amount: money, currency, purpose, methodType, failureCode: z.string(), invoiceId: id('inv').optional(), subscriptionId: id('sub').optional() },
  },
  'payment.overpaid': {
    summary: 'Money arrived for an invoice already paid or void (a card charge that landed after a wire was recorded): refund it',
    data: { ...paymentRef, invoiceId: id('inv'), amount: money, currency, invoiceStatus: z.enum(['paid', 'void']) },
  },
  'invoice.created': {
    summary: 'An invoice was issued; `requires_action` when it waits for the customer to pay it (see invoice.requires_action)',
    data: { accountId, invoiceId: id('inv'), number: z.string(), total: money, status: z.enum(['open', 'requires_action', 'paid']) },
  },
  'invoice.paid': {
    summary: 'An invoice was paid (a renewal: the renewal is complete)',
    data: {
      accountId,
      invoiceId: id('inv'),
      number: z.string(),
      total: money,
      amountPaid: money.optional().meta({ description: 'What this payment paid: the total less any credit notes' }),
      kind: z.enum(['upgrade', 'renewal', 'credits']).optional(),
      currency: currency.optional(),
      periodStart: iso.optional(),
      periodEnd: iso.optional(),
    },
  },
  'invoice.voided': { summary: 'An open invoice was voided by ops: nothing is owed on it; its number stays used', data: { accountId, invoiceId: id('inv'), number: z.string(), total: money, currency } },
  'credit_note.created': {
    summary: 'A credit note took a taxable value (and its tax) off an invoice; settled as a refund, as credits, or as less due',
    data: {
      accountId,
      creditNoteId: id('cn'),
      number: z.string(),
      invoiceId: id('inv'),
      invoiceNumber: z.string(),
      total: money,
      currency,
      settlement: z.enum(['refund', 'credits', 'reduce_due']),
      reason: z.string(),
    },
  },
  'refund.succeeded': {
    summary: 'Money of a credit note went back to the method that paid',
    data: { accountId, refundId: id('re'), creditNoteId: id('cn'), creditNoteNumber: z.string(), paymentId: id('pay'), amount: money, currency },
  },
  'refund.failed': {
    summary: 'The gateway refused a refund: purchased credits taken back for it are returned, and the money is owed another way',
    data: { accountId, refundId: id('re'), creditNoteId: id('cn'), creditNoteNumber: z.string(), paymentId: id('pay'), amount: money, currency, failureCode: z.string(), failureMessage: z.string() },
  },
  'invoice.requires_action': {
    summary:
      'A renewal or an auto-recharge cannot be charged without the customer (above the e-mandate, the mandate ended, no method): pay it with POST /v1/invoices/{id}/pay by `payBy`',
    data: {
      accountId,
      kind: z.enum(['renewal', 'credits']).meta({ description: 'What the invoice is for: a subscription renewal, or an auto-recharge of credits' }),
      subscriptionId: id('sub').optional().meta({ description: 'The renewing subscription (renewals only)' }),
      invoiceId: id('inv'),
      number: z.string(),
      total: money,
      currency,
      reason: z.enum(['above_mandate', 'mandate_expired', 'no_method']),
      payBy: iso,
    },
  },
  'subscription.plan_change_scheduled': {
    summary: 'A plan change will apply at the next period',
    data: { ...subscriptionRef, from: z.string(), to: z.string(), effectiveAt: iso, conflicts: z.array(z.object({ code: z.string(), detail: z.string() })) },
  },
  'subscription.plan_change_withdrawn': { summary: 'A scheduled plan change was withdrawn', data: { ...subscriptionRef, planId: z.string() } },
  'subscription.plan_changed': { summary: 'The new plan applied at the renewal', data: { ...subscriptionRef, from: z.string(), to: z.string() } },
  'subscription.billing_cycle_change_scheduled': { summary: 'A billing-cycle switch will apply at the next renewal', data: { ...subscriptionRef, from: z.string(), to: z.string(), effectiveAt: iso } },
  'subscription.billing_cycle_changed': { summary: 'The billing cycle switched at the renewal', data: { ...subscriptionRef, from: z.string(), to: z.string() } },
  'subscription.cancellation_scheduled': { summary: 'The subscription ends at the period end', data: { ...subscriptionRef, endsAt: iso } },
  'subscription.resumed': { summary: 'A scheduled cancellation was withdrawn', data: subscriptionRef },
  'subscription.renewal_notice': {
    summary: 'Pre-debit notice of an unattended renewal charge (Indian e-mandates); `requiresAction` when it will need the customer instead',
    data: { ...subscriptionRef, amount: money, currency, chargeAt: iso, requiresAction: z.enum(['above_mandate', 'mandate_expired', 'no_method']).optional() },
  },
  'subscription.renewed': {
    summary: 'A new period started and was invoiced',
    data: { ...subscriptionRef, invoiceId: id('inv'), planId: z.string(), billingCycle: z.string(), periodStart: iso, periodEnd: iso },
  },
  'subscription.past_due': {
    summary: 'A renewal was not paid; retries are scheduled',
    data: { ...subscriptionRef, invoiceId: id('inv'), attempt: z.number().int(), retriesLeft: z.number().int(), nextAttemptAt: iso, failureCode: z.string() },
  },
  'subscription.recovered': {
    summary: 'A past-due renewal was paid (or settled by a credit note, or voided); the account is active again',
    data: { ...subscriptionRef, invoiceId: id('inv'), paymentId: id('pay').optional().meta({ description: 'The payment that paid it; absent when a credit note or a void settled it' }) },
  },
  'subscription.cancelled': { summary: 'The subscription ended', data: { ...subscriptionRef, reason: z.enum(['cancelled', 'dunning_exhausted']), planId: z.string() } },
  'credits.low': { summary: 'A debit or hold left the available balance under the auto-recharge threshold', data: { accountId, balance: money.meta({ description: 'The available balance (balance less holds)' }), threshold: money, currency } },
  'credits.low_balance': {
    summary: 'The available balance (balance less holds) fell under the account\'s low-balance threshold: sent once, again only after credits lift it back',
    data: { accountId, balance: money, held: money, available: money, threshold: money, currency },
  },
  'credits.depletion_forecast': {
    summary: 'At the current rate of use credits run out within the account\'s forecast horizon: sent once, again only after credits are added',
    data: {
      accountId,
      currency,
      available: money,
      spentLastHour: money,
      spentLastDay: money,
      ratePerHour: money.meta({ description: 'The faster of the last hour\'s spend and the last day\'s hourly average' }),
      hoursLeft: z.number().meta({ description: 'available / ratePerHour' }),
      runsOutAt: iso,
      horizonHours: z.number().int(),
      autoRecharge: z
        .object({
          threshold: money,
          amount: money,
          expectedAt: iso.meta({ description: 'When the available balance reaches the threshold (now, when it is under it)' }),
          noticeHours: z.number().int().meta({ description: 'Pre-debit notice an Indian e-mandate requires before the charge; 0 elsewhere' }),
          landsAt: iso.meta({ description: 'When the recharge can be charged, after the notice' }),
          landsBeforeDepletion: z.boolean(),
        })
        .nullable()
        .meta({ description: 'Auto-recharge, when it is on' }),
    },
  },
  'credits.recharged': { summary: 'Auto-recharge added credits', data: { ...paymentRef, invoiceId: id('inv'), credits: money, total: money, currency } },
  'credits.purchased': { summary: 'A top-up added credits', data: { ...paymentRef, invoiceId: id('inv'), credits: money, total: money, currency } },
  'credits.recharge_failed': {
    summary: 'An auto-recharge charge failed; `disabled` when auto-recharge switched itself off',
    data: { accountId, failureCode: z.string(), failures: z.number().int(), disabled: z.boolean(), nextAttemptAt: iso.optional() },
  },
  'credits.recharge_notice': { summary: 'Pre-debit notice of an auto-recharge charge (Indian e-mandates)', data: { accountId, amount: money, currency, chargeAt: iso } },
  'credits.adjusted': { summary: 'Ops adjusted the credits', data: { accountId, adjustmentId: id('adj'), amount: z.number().int(), reason: z.string(), by: z.string() } },
  'credits.auto_recharge_updated': { summary: 'Auto-recharge settings changed', data: { accountId, enabled: z.boolean(), threshold: money, amount: money } },
  'kyc.status_changed': {
    summary: 'The KYC status moved',
    data: { accountId, from: z.enum(['pending', 'submitted', 'approved', 'rejected']), to: z.enum(['pending', 'submitted', 'approved', 'rejected']), reason: z.string().nullable() },
  },
  'whitelist.number_added': { summary: 'A trial whitelisted a number', data: { accountId, number: z.string() } },
  'whitelist.number_removed': { summary: 'A trial removed a whitelisted number', data: { accountId, number: z.string() } },
  'exophone.purchased': { summary: 'A production ExoPhone was recorded', data: { accountId, exophoneId: id('exo'), number: z.string() } },
  'exophone.released': { summary: 'A production ExoPhone was released', data: { accountId, exophoneId: id('exo'), number: z.string() } },
  'plan.custom_offered': { summary: 'A custom Enterprise plan was offered to the account', data: { planId: z.string() } },
  'plan.version_created': { summary: 'A plan has a new version (new prices)', data: { planId: z.string(), previousPlanId: z.string() } },
  'webhook.delivery_failed': {
    summary: 'A guaranteed webhook delivery was given up on and parked (redeliverable)',
    data: { accountId, deliveryId: id('whd'), endpointId: id('we'), eventId: id('evt'), attempts: z.number().int() },
  },
} as const;

export type EventType = keyof typeof eventCatalogue;

export const eventSchemas = Object.fromEntries(
  Object.entries(eventCatalogue).map(([type, e]) => [type, z.looseObject(e.data as z.ZodRawShape)]),
) as Record<EventType, z.ZodObject>;

export const isEventType = (type: string): type is EventType => type in eventCatalogue;

/** The OpenAPI 3.1 `webhooks` section: one operation per event, its body the signed envelope. */
export function webhooksDocument(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(eventCatalogue).map(([type, e]) => [
      type,
      {
        post: {
          summary: e.summary,
          operationId: `webhook_${type.replace('.', '_')}`,
          tags: ['Webhooks'],
          description:
            'Sent with the Standard Webhooks headers `webhook-id` (the event id, the same on every retry), `webhook-timestamp` and ' +
            '`webhook-signature` (v1, HMAC-SHA256 of `id.timestamp.body` with the endpoint secret). Answer 2xx to acknowledge; 410 disables the endpoint.',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['type', 'timestamp', 'data'],
                  properties: {
                    type: { const: type },
                    timestamp: { type: 'string', format: 'date-time' },
                    data: z.toJSONSchema(z.looseObject({ eventId: z.string(), ...(e.data as z.ZodRawShape) }), { io: 'input', unrepresentable: 'any' }),
                  },
                },
              },
            },
          },
          responses: { '200': { description: 'Acknowledged (any 2xx)' }, '410': { description: 'Gone: the endpoint is disabled' } },
        },
      },
    ]),
  );
}
