import { formatAmount, formatDate, formatDateTime, timeZoneForCountry } from '../../lib/format.js';
import type { InvoiceDto } from '../billing/schemas.js';
import type { Entitlements } from '../catalog/entitlements.js';
import { compose, type AccountForEmail, type AmountRow, type Content, type RenderedEmail } from './layout.js';
import { durationWords } from '../credits/domain.js';

export type { AccountForEmail, RenderedEmail };

/**
 * Which events email the account, and what the email says. Pure: an event (and what the
 * service looked up for it) in, an email with a text and an HTML part (or nothing) out.
 * Amounts read as the customer's currency writes them, times in the account's zone with the
 * zone named, plans by name.
 */
export interface EventForEmail {
  type: string;
  payload: Record<string, unknown>;
}


/** What an email needs from the database, looked up by the service (see emailNeeds). */
export interface EmailFacts {
  /** Plan names by id, for events that name plans by id. */
  planNames?: Readonly<Record<string, string>>;
  /** The number of the invoice an event names only by id. */
  invoiceNumber?: string;
  /** The invoice or credit note the email is about goes with it as a PDF. */
  attached?: boolean;
}

type Payload = Record<string, unknown>;

interface Reading {
  /** Minor units (paise, cents) in the event's currency, else the account's: "₹1,23,456.78". */
  money(minor: unknown, currency?: unknown): string;
  /** "2 Dec 2026" in the account's zone. */
  day(iso: unknown): string;
  /** "2 Dec 2026, 10:30 IST" in the account's zone. */
  time(iso: unknown): string;
  /** A plan's name; null when the service did not look it up. */
  plan(id: unknown): string | null;
  facts: EmailFacts;
}

function reading(account: AccountForEmail, facts: EmailFacts): Reading {
  const timeZone = timeZoneForCountry(account.country ?? '');
  const instant = (iso: unknown) => {
    const at = new Date(typeof iso === 'string' ? iso : Number.NaN);
    if (Number.isNaN(at.getTime())) throw new TypeError(`an email needs an ISO time, got ${String(iso)}`);
    return at;
  };
  return {
    money: (minor, currency) => formatAmount(Number(minor), currency === 'INR' || currency === 'USD' ? currency : (account.currency ?? 'INR')),
    day: (iso) => formatDate(instant(iso), timeZone),
    time: (iso) => formatDateTime(instant(iso), timeZone),
    plan: (id) => (typeof id === 'string' ? (facts.planNames?.[id] ?? null) : null),
    facts,
  };
}

const actionReasons: Record<string, string> = {
  above_mandate: 'it is above the limit of your e-mandate for automatic charges',
  mandate_expired: 'the e-mandate of your saved method has ended',
  no_method: 'there is no saved payment method to charge',
};

/** Gateway decline codes as a customer reads them. */
const declines: Record<string, string> = {
  card_declined: 'the card was declined',
  insufficient_funds: 'the card has insufficient funds',
  expired_card: 'the card has expired',
  upi_declined: 'the UPI payment was declined',
  upi_vpa_not_found: 'the UPI ID could not be found',
  bank_declined: 'the bank declined the payment',
  invalid_card_token: 'the card could not be used',
  payment_method_not_found: 'the saved payment method could not be found',
};
const declined = (code: unknown) => declines[String(code)] ?? 'the payment was declined';

const refundFailures: Record<string, string> = {
  refund_declined: 'the bank or card issuer declined the refund',
};

const cycleWords: Record<string, string> = { monthly: 'monthly', quarterly: 'quarterly', annual: 'annually' };

/** "Duplicate charge" as given; a code such as "service_outage" as words. */
const reasonWords = (reason: unknown) => (typeof reason === 'string' && /^[a-z_]+$/.test(reason) ? reason.replace(/_/g, ' ') : String(reason));

const invoiceDocument = (r: Reading) =>
  r.facts.attached ? 'The invoice is attached as a PDF; it is also in your billing history.' : 'The invoice is in your billing history.';
const creditNoteDocument = (r: Reading) =>
  r.facts.attached ? 'The credit note is attached as a PDF; it is also in your billing history.' : 'The credit note is in your billing history.';

/** The invoice's number, as the event gives it or as the service looked it up. */
const invoiceOf = (p: Payload, r: Reading): string | null => (typeof p.number === 'string' ? p.number : (r.facts.invoiceNumber ?? null));

// ---------------------------------------------------------------------------------------
// The emails.

/**
 * One email per subscription transition: the account always hears what changed and when.
 * A renewal is announced as renewed only once it is paid (invoice.paid of a renewal); a
 * declined or waiting one sends its own notice instead. null: this event sends nothing.
 */
const templates: Record<string, (p: Payload, r: Reading) => Content | null> = {
  'invoice.paid': (p, r) =>
    p.kind === 'renewal'
      ? {
          subject: `Your subscription renewed: invoice ${String(p.number)}`,
          heading: 'Your subscription renewed',
          blocks: [
            `Your subscription renewed for ${r.day(p.periodStart)} to ${r.day(p.periodEnd)}: ${r.money(p.amountPaid ?? p.total, p.currency)} paid, invoice ${String(p.number)}.`,
            {
              rows: [
                { label: 'Invoice', value: String(p.number) },
                { label: 'Service period', value: `${r.day(p.periodStart)} to ${r.day(p.periodEnd)}` },
                ...(p.amountPaid !== undefined && p.amountPaid !== p.total ? [{ label: 'Invoice total, less credit notes', value: r.money(p.total, p.currency) }] : []),
                { label: 'Amount paid', value: r.money(p.amountPaid ?? p.total, p.currency), strong: true },
              ],
            },
            invoiceDocument(r),
          ],
        }
      : null,
  'invoice.requires_action': (p, r) => {
    const credits = p.kind === 'credits';
    const why = actionReasons[String(p.reason)] ?? 'it needs your approval';
    return {
      subject: credits ? 'Action needed: pay your credits auto-recharge' : 'Action needed: pay your subscription renewal',
      blocks: [
        credits
          ? `Your auto-recharge invoice ${String(p.number)} for ${r.money(p.total, p.currency)} was not charged automatically because ${why}. ` +
            `Please pay it from your billing console by ${r.time(p.payBy)} to add the credits; auto-recharge asks again only once it is paid or that day has passed.`
          : `Your renewal invoice ${String(p.number)} for ${r.money(p.total, p.currency)} was not charged automatically because ${why}. ` +
            `Please pay it from your billing console by ${r.time(p.payBy)} to keep your subscription active; you can also save a new payment method there.`,
        { rows: [{ label: 'Invoice', value: String(p.number) }, { label: 'Pay by', value: r.time(p.payBy) }, { label: 'Amount due', value: r.money(p.total, p.currency), strong: true }] },
        invoiceDocument(r),
      ],
    };
  },
  'subscription.past_due': (p, r) => {
    const invoice = invoiceOf(p, r);
    const yourInvoice = invoice ? `Your renewal invoice ${invoice}` : 'Your renewal invoice';
    if (typeof p.failureCode === 'string' && p.failureCode in actionReasons) {
      return {
        subject: 'Your renewal is still unpaid',
        blocks: [
          `${yourInvoice} is not paid yet (reminder ${String(p.attempt)}): it cannot be charged automatically because ${actionReasons[p.failureCode]}.`,
          `Please pay it from your billing console before ${r.time(p.nextAttemptAt)} to avoid interruption.`,
        ],
      };
    }
    if (p.failureCode === 'invoice_overdue') {
      return {
        subject: 'Your invoice is overdue',
        blocks: [`${yourInvoice} is past its due date (reminder ${String(p.attempt)}). Please pay it before ${r.time(p.nextAttemptAt)} to avoid interruption.`],
      };
    }
    return {
      subject: 'We could not take your renewal payment',
      blocks: [
        `We tried to charge your saved payment method for ${invoice ? `renewal invoice ${invoice}` : 'your renewal'}, but ${declined(p.failureCode)} (attempt ${String(p.attempt)}).`,
        `We will try again on ${r.time(p.nextAttemptAt)}. Update your payment method to avoid interruption.`,
      ],
    };
  },
  // Without a payment, a credit note or a void settled the renewal.
  'subscription.recovered': (p) =>
    p.paymentId
      ? { subject: 'Payment received: your account is active again', blocks: ['Your renewal payment went through and your account is active again.'] }
      : { subject: 'Your account is active again', blocks: ['Nothing is owed on your renewal invoice any more, so your account is active again.'] },
  'subscription.cancelled': (p) => ({
    subject: 'Your subscription has ended',
    blocks: [
      (p.reason === 'dunning_exhausted'
        ? 'We could not take your renewal payment after several attempts, so your subscription has ended. '
        : 'Your subscription has ended as you asked. ') + 'Your account is now limited: no outbound calls or SMS.',
      'Your data and credits are kept; subscribe again to use them.',
    ],
  }),
  'subscription.cancellation_scheduled': (p, r) => ({
    subject: 'Your subscription will end',
    blocks: [`Your subscription stays active until ${r.time(p.endsAt)} and ends then. You can resume it until that time.`],
  }),
  'subscription.resumed': () => ({ subject: 'Your subscription continues', blocks: ['The cancellation is withdrawn; your subscription renews as usual.'] }),
  'subscription.plan_change_scheduled': (p, r) => {
    const from = r.plan(p.from);
    const to = r.plan(p.to);
    return {
      subject: to ? `Your change to the ${to} plan is scheduled` : 'Your plan change is scheduled',
      blocks: [`Your plan changes${from ? ` from ${from}` : ''} to ${to ?? 'your new plan'} on ${r.time(p.effectiveAt)}, the start of your next billing period.`],
    };
  },
  'subscription.renewal_notice': (p, r) =>
    p.requiresAction
      ? {
          subject: 'Your subscription renewal will need your approval',
          blocks: [
            `Your subscription renews on ${r.time(p.chargeAt)} for ${r.money(p.amount, p.currency)}. It cannot be charged automatically because ` +
              `${actionReasons[String(p.requiresAction)] ?? 'it needs your approval'}: we will send you the invoice to pay then.`,
          ],
        }
      : {
          subject: 'Upcoming charge for your subscription',
          blocks: [
            `As your e-mandate requires, this is notice that your saved payment method will be charged ${r.money(p.amount, p.currency)} on ${r.time(p.chargeAt)} for your subscription renewal.`,
          ],
        },
  'credits.recharge_notice': (p, r) => ({
    subject: 'Upcoming auto-recharge charge',
    blocks: [`As your e-mandate requires, this is notice that your saved payment method will be charged ${r.money(p.amount, p.currency)} on ${r.time(p.chargeAt)} to recharge your credits.`],
  }),
  'credits.low_balance': (p, r) => ({
    subject: `Your credits are running low: ${r.money(p.available, p.currency)} left`,
    heading: 'Your credits are running low',
    blocks: [
      `Your available credits fell to ${r.money(p.available, p.currency)}, under your alert threshold of ${r.money(p.threshold, p.currency)}. ` +
        'When they run out, outbound calls and SMS stop. Top up from your billing console, or turn on auto-recharge, to avoid interruption.',
      {
        rows: [
          { label: 'Balance', value: r.money(p.balance, p.currency) },
          ...(Number(p.held) > 0 ? [{ label: 'Reserved by calls in progress', value: r.money(p.held, p.currency) }] : []),
          { label: 'Available', value: r.money(p.available, p.currency), strong: true },
        ],
      },
    ],
  }),
  'credits.depletion_forecast': (p, r) => {
    const ar = p.autoRecharge as { amount: number; landsAt: string; noticeHours: number; landsBeforeDepletion: boolean } | null;
    const lasts = durationWords(Number(p.hoursLeft));
    return {
      subject: `At your current usage, your credits last ${lasts}`,
      heading: `Your credits last ${lasts}`,
      blocks: [
        `At your current rate of use (about ${r.money(p.ratePerHour, p.currency)} an hour), your ${r.money(p.available, p.currency)} of credits last ${lasts}, until about ${r.time(p.runsOutAt)}.`,
        ar
          ? ar.landsBeforeDepletion
            ? `Your auto-recharge of ${r.money(ar.amount, p.currency)} should be charged around ${r.time(ar.landsAt)}${ar.noticeHours > 0 ? `, after the ${ar.noticeHours}-hour pre-debit notice your e-mandate requires` : ''}, before they run out.`
            : `Your auto-recharge of ${r.money(ar.amount, p.currency)} can only be charged around ${r.time(ar.landsAt)}${ar.noticeHours > 0 ? `, after the ${ar.noticeHours}-hour pre-debit notice your e-mandate requires` : ''}: that is after your credits run out. Top up now to avoid interruption.`
          : 'Top up from your billing console, or turn on auto-recharge, to avoid interruption.',
        {
          rows: [
            { label: 'Available credits', value: r.money(p.available, p.currency) },
            { label: 'Used in the last hour', value: r.money(p.spentLastHour, p.currency) },
            { label: 'Used in the last day', value: r.money(p.spentLastDay, p.currency) },
            { label: 'Expected to run out', value: r.time(p.runsOutAt), strong: true },
          ],
        },
      ],
    };
  },
  'credits.recharged': (p, r) => creditsReceipt(p, r, 'Receipt: your credits were recharged', `Your balance was below your threshold, so we added ${r.money(p.credits, p.currency)} of credits, charging ${r.money(p.total, p.currency)} to your saved method.`),
  'credits.purchased': (p, r) => creditsReceipt(p, r, 'Receipt: credits purchased', `We added ${r.money(p.credits, p.currency)} of credits for ${r.money(p.total, p.currency)}.`),
  'credits.recharge_failed': (p, r) =>
    p.disabled
      ? {
          subject: 'Auto-recharge is switched off',
          blocks: [`Charging your saved method failed ${String(p.failures)} times in a row (the last time ${declined(p.failureCode)}), so auto-recharge is now off. Top up or update your method to avoid interruption.`],
        }
      : {
          subject: 'Your auto-recharge failed',
          blocks: [`Charging your saved method failed: ${declined(p.failureCode)}. We will try again on ${r.time(p.nextAttemptAt)}.`],
        },
  'subscription.billing_cycle_change_scheduled': (p, r) => ({
    subject: 'Your billing cycle change is scheduled',
    blocks: [`From ${r.time(p.effectiveAt)}, you will be billed ${cycleWords[String(p.to)] ?? 'on your new billing cycle'}.`],
  }),
  'credit_note.created': (p, r) => {
    const amount = r.money(p.total, p.currency);
    const settled =
      p.settlement === 'refund'
        ? 'it is being refunded to the card or account you paid with; we will email you when the refund is done'
        : p.settlement === 'credits'
          ? 'it is added to your prepaid credits'
          : 'it reduces what you owe on that invoice';
    return {
      subject: `Credit note ${String(p.number)} for invoice ${String(p.invoiceNumber)}`,
      heading: `Credit note ${String(p.number)}`,
      blocks: [
        `We issued credit note ${String(p.number)} for ${amount} against invoice ${String(p.invoiceNumber)}: ${settled}.`,
        {
          rows: [
            { label: 'Credit note', value: String(p.number) },
            { label: 'Against invoice', value: String(p.invoiceNumber) },
            { label: 'Reason', value: reasonWords(p.reason) },
            { label: 'Amount credited', value: amount, strong: true },
          ],
        },
        creditNoteDocument(r),
      ],
    };
  },
  'refund.succeeded': (p, r) => ({
    subject: `Receipt: your refund for credit note ${String(p.creditNoteNumber)}`,
    heading: 'Your refund is on its way',
    blocks: [
      `We refunded ${r.money(p.amount, p.currency)} to the card or account you paid with, for credit note ${String(p.creditNoteNumber)}. ` +
        'Banks usually take a few working days to show it on your statement.',
      { rows: [{ label: 'Credit note', value: String(p.creditNoteNumber) }, { label: 'Amount refunded', value: r.money(p.amount, p.currency), strong: true }] },
      creditNoteDocument(r),
    ],
  }),
  'refund.failed': (p, r) => ({
    subject: `We could not complete your refund for credit note ${String(p.creditNoteNumber)}`,
    blocks: [
      `We could not refund ${r.money(p.amount, p.currency)} for credit note ${String(p.creditNoteNumber)} to the card or account you paid with: ` +
        `${refundFailures[String(p.failureCode)] ?? 'the payment provider could not return the money to it'}.`,
      'Our billing team will contact you to pay it back another way, such as a bank transfer. If you prefer, ask them to add it to your prepaid credits instead.',
      creditNoteDocument(r),
    ],
  }),
  'invoice.voided': (p, r) => ({
    subject: `Invoice ${String(p.number)} is cancelled`,
    blocks: [`We cancelled invoice ${String(p.number)} for ${r.money(p.total, p.currency)}. Nothing is due on it: you do not need to pay it, and we will not charge it.`],
  }),
  'kyc.status_changed': (p) =>
    p.to === 'approved'
      ? {
          template: 'kyc_approved',
          subject: 'Your KYC is approved',
          blocks: ['Your KYC verification is approved. You can now upgrade to a paid plan and purchase production ExoPhones.'],
        }
      : p.to === 'rejected'
        ? {
            template: 'kyc_rejected',
            subject: 'Your KYC needs another look',
            blocks: [`Your KYC verification was not approved: ${String(p.reason ?? 'no reason given')}.`, 'Please correct the documents and submit them again.'],
          }
        : null,
};

function creditsReceipt(p: Payload, r: Reading, subject: string, sentence: string): Content {
  const invoice = invoiceOf(p, r);
  return {
    subject: invoice ? `${subject}, invoice ${invoice}` : subject,
    blocks: [
      sentence,
      {
        rows: [
          ...(invoice ? [{ label: 'Invoice', value: invoice }] : []),
          { label: 'Credits added', value: r.money(p.credits, p.currency) },
          { label: 'Amount charged, with tax', value: r.money(p.total, p.currency), strong: true },
        ],
      },
      invoiceDocument(r),
    ],
  };
}

/**
 * The event types that may email the account (renderEmail, and the upgrade confirmation):
 * the relay queues a job only for these, and Postgres remembers until each job has finished.
 */
export const emailingEventTypes: ReadonlySet<string> = new Set([...Object.keys(templates), 'account.upgraded']);

export function renderEmail(event: EventForEmail, account: AccountForEmail, facts: EmailFacts = {}): RenderedEmail | null {
  const template = templates[event.type];
  const content = template ? template(event.payload, reading(account, facts)) : null;
  return content ? compose(event.type, account, content) : null;
}

/** What the service looks up before rendering an event's email (see EmailFacts). */
export interface EmailNeeds {
  planIds: string[];
  /** An invoice the email names by number; attached as its PDF when `attach` is 'invoice'. */
  invoiceId: string | null;
  /** A credit note whose PDF goes with the email. */
  creditNoteId: string | null;
  attach: 'invoice' | 'credit_note' | null;
}

const attachesInvoice = new Set(['invoice.paid', 'invoice.requires_action', 'credits.purchased', 'credits.recharged']);
const attachesCreditNote = new Set(['credit_note.created', 'refund.succeeded', 'refund.failed']);
const plansNamed: Record<string, string[]> = { 'subscription.plan_change_scheduled': ['from', 'to'] };

export function emailNeeds(event: EventForEmail): EmailNeeds {
  const p = event.payload;
  const id = (v: unknown) => (typeof v === 'string' ? v : null);
  const planIds = (plansNamed[event.type] ?? []).map((field) => id(p[field])).filter((v): v is string => v !== null);
  if (attachesInvoice.has(event.type)) return { planIds, invoiceId: id(p.invoiceId), creditNoteId: null, attach: 'invoice' };
  if (attachesCreditNote.has(event.type)) return { planIds, invoiceId: null, creditNoteId: id(p.creditNoteId), attach: 'credit_note' };
  return { planIds, invoiceId: event.type === 'subscription.past_due' ? id(p.invoiceId) : null, creditNoteId: null, attach: null };
}

// ---------------------------------------------------------------------------------------
// The upgrade confirmation: its own template, with the invoice and what the plan includes.

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

export function renderUpgradeConfirmation(data: UpgradeConfirmationData): RenderedEmail {
  const { account, plan, invoice } = data;
  const money = (n: number) => formatAmount(n, invoice.currency);
  const timeZone = timeZoneForCountry(account.country ?? '');
  const rows: AmountRow[] = [];
  for (const line of invoice.lines) {
    rows.push({ label: line.description, value: money(line.grossAmount) });
    if (line.discountAmount > 0) rows.push({ label: 'Billing-cycle discount', value: `-${money(line.discountAmount)}`, indent: true });
  }
  rows.push({ label: 'Subtotal', value: money(invoice.subtotal) }, { label: invoice.tax.label, value: money(invoice.tax.amount) }, { label: 'Total', value: money(invoice.total), strong: true });
  const period = `${formatDate(invoice.period.start, timeZone)} to ${formatDate(invoice.period.end, timeZone)}`;

  return compose('upgrade_confirmation', account, {
    subject: `Welcome to ${plan.name}: invoice ${invoice.number}`,
    heading: `Welcome to ${plan.name}`,
    blocks: [
      `Your account is upgraded to the ${plan.name} plan (${invoice.billingCycle} billing). Trial limitations are removed and you can now purchase production ExoPhones.`,
      { heading: `Invoice ${invoice.number} (${invoice.status.replace(/_/g, ' ')}), period ${period}` },
      { rows },
      { heading: `Your ${plan.name} plan includes` },
      { list: includedFeatures(data.entitlements) },
      'The invoice is attached as a PDF. Your call flows, API credentials, team members and settings carry over unchanged.',
    ],
  });
}
