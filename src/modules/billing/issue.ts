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
}

/**
 * Issues an invoice with the next number of its financial year, in the caller's
 * transaction: the number is taken and used together, so numbers stay gapless.
 */
export async function issueInvoice(tx: Db, input: InvoiceToIssue): Promise<repo.InvoiceRow> {
  const { priced, now } = input;
  const financialYear = financialYearOf(now);
  const sequence = await repo.nextInvoiceSequence(tx, financialYear);
  return repo.insertInvoice(
    tx,
    {
      id: newId('inv', now),
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
    },
    priced.lines.map((line, position) => ({ ...line, position })),
  );
}
