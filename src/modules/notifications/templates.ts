import { formatMoney } from '../../lib/money.js';
import type { InvoiceDto } from '../billing/schemas.js';
import type { Entitlements } from '../catalog/entitlements.js';

/**
 * Which events email the account, and what the email says. Pure: an event in, an email
 * (or nothing) out.
 */
export interface EventForEmail {
  type: string;
  payload: Record<string, unknown>;
}

export interface AccountForEmail {
  name: string;
  email: string;
}

export interface RenderedEmail {
  template: string;
  subject: string;
  text: string;
}

const dayOf = (iso: unknown) => (typeof iso === 'string' ? iso.slice(0, 10) : 'the period end');

const money = (amount: unknown, currency: unknown) => formatMoney(Number(amount), (currency === 'USD' ? 'USD' : 'INR') as 'INR' | 'USD');

const actionReasons: Record<string, string> = {
  above_mandate: 'it is above the limit of your e-mandate for automatic charges',
  mandate_expired: 'the e-mandate of your saved method has ended',
  no_method: 'there is no saved payment method to charge',
};

/**
 * One email per subscription transition: the account always hears what changed and when.
 * A renewal is announced as renewed only once it is paid (invoice.paid of a renewal); a
 * declined or waiting one sends its own notice instead. null: this event sends nothing.
 */
const lifecycle: Record<string, (p: Record<string, unknown>) => { subject: string; body: string } | null> = {
  'invoice.paid': (p) =>
    p.kind === 'renewal'
      ? {
          subject: 'Your subscription renewed',
          body: `Your subscription renewed for ${dayOf(p.periodStart)} to ${dayOf(p.periodEnd)}: ${money(p.total, p.currency)} paid, invoice ${String(p.number)}. The invoice is in your billing history.`,
        }
      : null,
  'invoice.requires_action': (p) =>
    p.kind === 'credits'
      ? {
          subject: 'Action needed: pay your credits auto-recharge',
          body:
            `Your auto-recharge invoice ${String(p.number)} for ${money(p.total, p.currency)} was not charged automatically because ${actionReasons[String(p.reason)] ?? 'it needs your approval'}. ` +
            `Please pay it from your billing console by ${dayOf(p.payBy)} to add the credits; auto-recharge asks again only once it is paid or that day has passed.`,
        }
      : {
          subject: 'Action needed: pay your subscription renewal',
          body:
            `Your renewal invoice ${String(p.number)} for ${money(p.total, p.currency)} was not charged automatically because ${actionReasons[String(p.reason)] ?? 'it needs your approval'}. ` +
            `Please pay it from your billing console by ${dayOf(p.payBy)} to keep your subscription active; you can also save a new payment method there.`,
        },
  'subscription.past_due': (p) =>
    typeof p.failureCode === 'string' && p.failureCode in actionReasons
      ? {
          subject: 'Your renewal is still unpaid',
          body:
            `Your renewal invoice is not paid yet (reminder ${String(p.attempt)}): it cannot be charged automatically because ${actionReasons[p.failureCode]}. ` +
            `Please pay it from your billing console before ${dayOf(p.nextAttemptAt)} to avoid interruption.`,
        }
      : p.failureCode === 'invoice_overdue'
      ? {
          subject: 'Your invoice is overdue',
          body: `Your renewal invoice is past its due date (reminder ${String(p.attempt)}). Please pay it before ${dayOf(p.nextAttemptAt)} to avoid interruption.`,
        }
      : {
          subject: 'We could not take your renewal payment',
          body:
            `Charging your saved payment method failed (attempt ${String(p.attempt)}, ${String(p.failureCode)}). ` +
            `We will try again on ${dayOf(p.nextAttemptAt)}. Update your payment method to avoid interruption.`,
        },
  'subscription.recovered': () => ({
    subject: 'Payment received: your account is active again',
    body: 'Your renewal payment went through and your account is active again.',
  }),
  'subscription.cancelled': (p) => ({
    subject: 'Your subscription has ended',
    body:
      (p.reason === 'dunning_exhausted'
        ? 'We could not take your renewal payment after several attempts, so your subscription has ended. '
        : 'Your subscription has ended as you asked. ') +
      'Your account is now limited: no outbound calls or SMS. Your data and credits are kept; subscribe again to use them.',
  }),
  'subscription.cancellation_scheduled': (p) => ({
    subject: 'Your subscription will end',
    body: `Your subscription stays active until ${dayOf(p.endsAt)} and ends then. You can resume it until that date.`,
  }),
  'subscription.resumed': () => ({ subject: 'Your subscription continues', body: 'The cancellation is withdrawn; your subscription renews as usual.' }),
  'subscription.plan_change_scheduled': (p) => ({
    subject: 'Your plan change is scheduled',
    body: `Your plan changes to ${String(p.to)} on ${dayOf(p.effectiveAt)}, the start of your next billing period.`,
  }),
  'subscription.renewal_notice': (p) =>
    p.requiresAction
      ? {
          subject: 'Your subscription renewal will need your approval',
          body:
            `Your subscription renews on ${dayOf(p.chargeAt)} for ${money(p.amount, p.currency)}. It cannot be charged automatically because ` +
            `${actionReasons[String(p.requiresAction)] ?? 'it needs your approval'}: we will send you the invoice to pay then.`,
        }
      : {
          subject: 'Upcoming charge for your subscription',
          body: `As your e-mandate requires, this is notice that your saved payment method will be charged ${money(p.amount, p.currency)} on ${String(p.chargeAt).slice(0, 16).replace('T', ' ')} UTC for your subscription renewal.`,
        },
  'credits.recharge_notice': (p) => ({
    subject: 'Upcoming auto-recharge charge',
    body: `As your e-mandate requires, this is notice that your saved payment method will be charged ${money(p.amount, p.currency)} on ${String(p.chargeAt).slice(0, 16).replace('T', ' ')} UTC to recharge your credits.`,
  }),
  'credits.recharged': (p) => ({
    subject: 'Receipt: your credits were recharged',
    body: `Your balance was below your threshold, so we added ${money(p.credits, p.currency)} of credits, charging ${money(p.total, p.currency)} to your saved method.`,
  }),
  'credits.purchased': (p) => ({
    subject: 'Receipt: credits purchased',
    body: `We added ${money(p.credits, p.currency)} of credits for ${money(p.total, p.currency)}.`,
  }),
  'credits.recharge_failed': (p) => ({
    subject: p.disabled ? 'Auto-recharge is switched off' : 'Your auto-recharge failed',
    body: p.disabled
      ? `Charging your saved method failed ${String(p.failures)} times in a row (${String(p.failureCode)}), so auto-recharge is now off. Top up or update your method to avoid interruption.`
      : `Charging your saved method failed (${String(p.failureCode)}). We will try again on ${String(p.nextAttemptAt).slice(0, 16).replace('T', ' ')} UTC.`,
  }),
  'subscription.billing_cycle_change_scheduled': (p) => ({
    subject: 'Your billing cycle change is scheduled',
    body: `From ${dayOf(p.effectiveAt)} you will be billed ${String(p.to)}.`,
  }),
};

/**
 * The event types that may email the account (renderEmail, and the upgrade confirmation):
 * the relay queues a job only for these, and Postgres remembers until each job has finished.
 */
export const emailingEventTypes: ReadonlySet<string> = new Set([...Object.keys(lifecycle), 'kyc.status_changed', 'account.upgraded']);

export function renderEmail(event: EventForEmail, account: AccountForEmail): RenderedEmail | null {
  const transition = lifecycle[event.type];
  if (transition) {
    const rendered = transition(event.payload);
    if (!rendered) return null;
    return { template: event.type, subject: rendered.subject, text: `Hello ${account.name},\n\n${rendered.body}\n` };
  }
  if (event.type === 'kyc.status_changed') {
    if (event.payload.to === 'approved') {
      return {
        template: 'kyc_approved',
        subject: 'Your KYC is approved',
        text:
          `Hello ${account.name},\n\nYour KYC verification is approved. You can now upgrade to a paid plan ` +
          'and purchase production ExoPhones.\n',
      };
    }
    if (event.payload.to === 'rejected') {
      return {
        template: 'kyc_rejected',
        subject: 'Your KYC needs another look',
        text:
          `Hello ${account.name},\n\nYour KYC verification was not approved: ${String(event.payload.reason ?? 'no reason given')}.\n` +
          'Please correct the documents and submit them again.\n',
      };
    }
  }
  return null;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const day = (d: Date) => d.toISOString().slice(0, 10);

export interface UpgradeConfirmationData {
  account: AccountForEmail;
  plan: { name: string };
  entitlements: Entitlements;
  invoice: InvoiceDto;
}

/** What the plan includes, in the brief's words, for the confirmation email. */
export function includedFeatures(e: Entitlements): string[] {
  const words = (s: string) => s.replace(/_/g, ' ');
  return [
    `ExoPhones: ${e.exophones.limit === null ? 'unlimited' : `up to ${e.exophones.limit}`}`,
    `Outbound calls and SMS to any number${e.smsDltRequiredForIndia ? ' (DLT registration required for SMS in India)' : ''}`,
    `WhatsApp: ${words(e.whatsapp)}`,
    `Campaigns: ${words(e.campaigns)}`,
    `Contact center: ${words(e.contactCenter)}`,
    `Call recording retention: ${e.callRecording.retentionDays} days`,
    `Analytics: ${words(e.analytics)}`,
    `Support: ${e.support.channels.join(', ')}${e.support.tier === 'dedicated_account_manager' ? ', dedicated account manager' : ''}`,
    `SLA: ${e.sla.uptimePercent === null ? 'none' : `${e.sla.uptimePercent}% uptime`}`,
    `API rate limit: ${e.apiRateLimit.requestsPerMinute} requests per minute`,
    `Webhooks: ${e.webhooks} delivery`,
  ];
}

export function renderUpgradeConfirmation(data: UpgradeConfirmationData): RenderedEmail & { html: string } {
  const { account, plan, invoice } = data;
  const money = (n: number) => formatMoney(n, invoice.currency);
  const rows: Array<[string, string]> = [];
  for (const line of invoice.lines) {
    rows.push([line.description, money(line.grossAmount)]);
    if (line.discountAmount > 0) rows.push(['  Billing-cycle discount', `-${money(line.discountAmount)}`]);
  }
  rows.push(['Subtotal', money(invoice.subtotal)], [invoice.tax.label, money(invoice.tax.amount)], ['Total', money(invoice.total)]);
  const features = includedFeatures(data.entitlements);
  const period = `${day(invoice.period.start)} to ${day(invoice.period.end)}`;

  const text = [
    `Hello ${account.name},`,
    '',
    `Your account is upgraded to the ${plan.name} plan (${invoice.billingCycle} billing). Trial limitations are removed and you can now purchase production ExoPhones.`,
    '',
    `Invoice ${invoice.number} (${invoice.status}), period ${period}:`,
    ...rows.map(([label, amount]) => `  ${label.padEnd(48)} ${amount}`),
    '',
    `Your ${plan.name} plan includes:`,
    ...features.map((f) => `  - ${f}`),
    '',
    'The invoice is attached as a PDF. Your call flows, API credentials, team members and settings carry over unchanged.',
    '',
  ].join('\n');

  const html = `<!doctype html><html><body style="font-family:sans-serif">
<p>Hello ${escapeHtml(account.name)},</p>
<p>Your account is upgraded to the <strong>${escapeHtml(plan.name)}</strong> plan (${invoice.billingCycle} billing). Trial limitations are removed and you can now purchase production ExoPhones.</p>
<h3>Invoice ${escapeHtml(invoice.number)}</h3>
<p>Period ${period}</p>
<table cellpadding="4">${rows.map(([label, amount]) => `<tr><td>${escapeHtml(label)}</td><td align="right">${amount}</td></tr>`).join('')}</table>
<h3>Your ${escapeHtml(plan.name)} plan includes</h3>
<ul>${features.map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul>
<p>The invoice is attached as a PDF. Your call flows, API credentials, team members and settings carry over unchanged.</p>
</body></html>`;

  return { template: 'upgrade_confirmation', subject: `Welcome to ${plan.name}: invoice ${invoice.number}`, text, html };
}
