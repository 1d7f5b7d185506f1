import type { Db } from '../../db/client.js';
import type { invoices } from '../../db/schema/index.js';
import { newId } from '../../lib/ids.js';
import { financialYearOf, invoiceNumber, type PricedInvoice } from './domain.js';
import * as repo from './repo.js';

export interface InvoiceToIssue {
  accountId: string;
  subscriptionId: string | null;
  kind: (typeof invoices.$inferInsert)['kind'];
  status: 'open' | 'paid';
  priced: PricedInvoice;
  planId: string;
  billingCycle: 'monthly' | 'quarterly' | 'annual';
  period: { start: Date; end: Date };
  now: Date;
  dueAt: Date;
  attemptCount?: number;
  nextAttemptAt?: Date | null;
  /** Waits for the customer rather than a charge (see invoices.action_required). */
  actionRequired?: 'above_mandate' | 'mandate_expired' | 'no_method' | null;
  /** Given when the caller needs the id before the invoice exists (a batch's payments and events). */
  id?: string;
}

/**
 * Issues an invoice with the next number of its financial year, in the caller's
 * transaction: the number is taken and used together, so numbers stay gapless.
 */
export async function issueInvoice(tx: Db, input: InvoiceToIssue): Promise<repo.InvoiceRow> {
  const financialYear = financialYearOf(input.now);
  const sequence = await repo.nextInvoiceSequence(tx, financialYear);
  const { invoice, lines } = invoiceRow(input, financialYear, sequence);
  return repo.insertInvoice(tx, invoice, lines);
}

/** An event to write with a batch's invoice; its payload gets the invoice's number. */
export interface InvoiceEvent {
  outboxId: number;
  eventId: string;
  type: string;
  accountId: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/**
 * Issues many invoices dated the same instant, with one statement: it takes their
 * consecutive numbers (in the order given) with one counter update, inserts them and their
 * lines, and writes `created[i]` (if given) with invoice i's number. Make it the last
 * statement before the commit: the year's counter row stays locked until then, and every
 * batch of the year waits for it.
 */
export async function issueInvoices(tx: Db, inputs: Array<InvoiceToIssue & { id: string }>, created: InvoiceEvent[] = []): Promise<Array<{ id: string; number: string }>> {
  if (inputs.length === 0) return [];
  const financialYear = financialYearOf(inputs[0]!.now);
  if (inputs.some((i) => financialYearOf(i.now) !== financialYear)) throw new Error('a batch of invoices must fall in one financial year');
  // Numbered by the statement itself: the sequence and number given here are replaced.
  const rows = inputs.map((input) => invoiceRow(input, financialYear, 0));
  return repo.insertNumberedInvoices(tx, financialYear, rows, created);
}

function invoiceRow(input: InvoiceToIssue, financialYear: string, sequence: number) {
  const { priced, now } = input;
  return {
    invoice: {
      id: input.id ?? newId('inv', now),
      accountId: input.accountId,
      subscriptionId: input.subscriptionId,
      number: invoiceNumber(financialYear, sequence),
      financialYear,
      sequence,
      status: input.status,
      kind: input.kind,
      currency: priced.currency,
      subtotal: priced.subtotal,
      discountTotal: priced.discountTotal,
      taxLabel: priced.tax.label,
      taxRateBps: priced.tax.rateBps,
      taxAmount: priced.tax.amount,
      total: priced.total,
      planId: input.planId,
      billingCycle: input.billingCycle,
      periodStart: input.period.start,
      periodEnd: input.period.end,
      issuedAt: now,
      dueAt: input.dueAt,
      paidAt: input.status === 'paid' ? now : null,
      attemptCount: input.attemptCount ?? 0,
      nextAttemptAt: input.nextAttemptAt ?? null,
      actionRequired: input.actionRequired ?? null,
      taxComponents: priced.tax.components,
      supply: priced.supply,
    } satisfies typeof invoices.$inferInsert,
    lines: priced.lines.map((line, position) => ({ ...line, position })),
  };
}
