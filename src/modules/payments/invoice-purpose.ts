import type { Db } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import type { InvoiceRow } from '../billing/repo.js';
import * as repo from './repo.js';

/** What a payment of an open invoice is for, and what its purpose needs to know. */
export interface InvoicePurpose {
  purpose: 'renewal' | 'upgrade' | 'recharge';
  request: Record<string, unknown>;
}

/**
 * What paying this open invoice (by the customer, or money ops record) is for. A renewal
 * invoice: the renewal's (paid, `active` again, dunning over). An auto-recharge that waited
 * for the customer: the recharge's (the invoice paid, the credits added). An upgrade invoice
 * awaiting a wire transfer or cheque, paid by card instead: the upgrade's, with what the
 * awaited payment was for. Anything else is not paid this way.
 */
export async function invoicePurpose(tx: Db, invoice: InvoiceRow): Promise<InvoicePurpose> {
  if (invoice.status !== 'open') throw new AppError('invoice_not_payable', `Invoice ${invoice.number} is ${invoice.status}`);
  if (invoice.kind === 'renewal') return { purpose: 'renewal', request: {} };
  if (invoice.kind === 'credits' && invoice.actionRequired) {
    return { purpose: 'recharge', request: { credits: invoice.subtotal, tax: { label: invoice.taxLabel, rateBps: invoice.taxRateBps, amount: invoice.taxAmount } } };
  }
  const awaited = invoice.kind === 'upgrade' ? await repo.findAwaitingForInvoice(tx, invoice.id) : undefined;
  if (!awaited) throw new AppError('invoice_not_payable', `Invoice ${invoice.number} is a ${invoice.kind} invoice that is not paid this way`);
  return { purpose: 'upgrade', request: awaited.request as Record<string, unknown> };
}
